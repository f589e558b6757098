"""The HTTP API front door that ``eksgate infra render`` merges into ``chalice package``."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from app import app
from eksgate.access_entries.stages import PROJECT_DIR
from eksgate.http_api import RouteError, app_routes, http_api_resources
from eksgate.infra_render import InfraRenderError, cmd_render, render_merge_template


def _of_type(resources: dict, kind: str) -> dict:
    return {k: v for k, v in resources.items() if v.get("Type") == kind}


def test_every_route_and_method_of_the_app_and_nothing_else_is_routed_to_the_function():
    template = render_merge_template("prod")
    routes = _of_type(template["Resources"], "AWS::ApiGatewayV2::Route")
    keys = sorted(route["Properties"]["RouteKey"] for route in routes.values())
    declared = sorted(
        f"{method} {path}" for path, entries in app.routes.items() for method in entries
    )
    assert keys == declared
    assert "GET /k8s/{cluster}/{proxy+}" in keys and "POST /slack/interactions" in keys
    assert all("ANY" not in key and "$default" not in key for key in keys)
    for route in routes.values():
        assert route["Properties"]["Target"] == {"Fn::Sub": "integrations/${HttpApiIntegration}"}


def test_the_integration_hands_the_function_the_rest_proxy_event_chalice_reads():
    resources = render_merge_template("prod")["Resources"]
    integration = resources["HttpApiIntegration"]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "1.0"
    assert integration["IntegrationUri"] == {"Fn::GetAtt": ["APIHandler", "Arn"]}
    stage = resources["HttpApiDefaultStage"]["Properties"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True


def test_only_this_api_may_invoke_the_function_and_the_rest_endpoint_is_off():
    template = render_merge_template("prod")
    permission = template["Resources"]["HttpApiInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "APIHandler"}
    assert permission["SourceArn"]["Fn::Sub"].endswith(":${HttpApi}/*")
    # Merged into Chalice's RestAPI: one door, not two.
    assert template["Resources"]["RestAPI"] == {"Properties": {"DisableExecuteApiEndpoint": True}}
    assert "${HttpApi}" in template["Outputs"]["EndpointURL"]["Value"]["Fn::Sub"]


def test_api_rest_keeps_chalices_rest_api_as_it_is():
    template = render_merge_template("prod", api="rest")
    assert not [k for k in template["Resources"] if k.startswith("HttpApi")]
    assert "RestAPI" not in template["Resources"] and "Outputs" not in template
    with pytest.raises(InfraRenderError, match="'http' or 'rest'"):
        render_merge_template("prod", api="websocket")


def test_cmd_render_says_which_front_door_it_wrote(tmp_path, capsys):
    output = tmp_path / "merge.json"
    assert cmd_render(argparse.Namespace(stage="prod", output=str(output), api="http")) == 0
    assert "an HTTP API with 29 routes" in capsys.readouterr().err
    assert cmd_render(argparse.Namespace(stage="prod", output=str(output), api="rest")) == 0
    assert "REST API (--api rest)" in capsys.readouterr().err
    assert "HttpApi" not in json.loads(output.read_text())["Resources"]


def test_a_template_resource_with_the_apis_name_is_refused_not_overwritten(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / ".chalice", project / ".chalice")
    shutil.copytree(PROJECT_DIR / "infra", project / "infra")
    shutil.copy(PROJECT_DIR / "app.py", project / "app.py")
    template = project / "infra" / "template.yaml"
    template.write_text(
        template.read_text()
        + "  HttpApiIntegration:\n    Type: AWS::SNS::Topic\n    Properties: {}\n"
    )
    with pytest.raises(InfraRenderError, match="HttpApiIntegration"):
        render_merge_template("prod", project, policy_dir=PROJECT_DIR / "chalicelib" / "policies")


def test_routes_are_read_from_the_app_and_an_app_without_routes_is_refused(tmp_path):
    assert ("GET", "/healthz") in app_routes(PROJECT_DIR)
    with pytest.raises(RouteError, match="no app.py"):
        app_routes(tmp_path)
    with pytest.raises(RouteError, match="no routes"):
        http_api_resources("prod", [])
