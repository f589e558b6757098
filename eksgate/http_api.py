"""The HTTP API front door, merged into ``chalice package``'s template by ``eksgate infra render``.

Chalice packages a REST API. An HTTP API (API Gateway v2) in front of the same function costs
$1.00 per million requests instead of $3.50, and with payload format 1.0 it hands the function
the same proxy event a REST API does, so the app runs unchanged (``requestContext.resourcePath``
is the route's path, which Chalice dispatches on). The merge:

- adds the HTTP API with one route per route and method the app declares (``app.routes``, read
  from the app itself so the two can never disagree), each a Lambda proxy integration of the
  app's function, and a ``$default`` stage deployed automatically (no stage in the URL);
- lets only that API invoke the function through it (a Lambda permission for its ARN);
- turns off the REST API's execute-api endpoint (``DisableExecuteApiEndpoint``), so the stack
  has one door, and points the ``EndpointURL`` output at the HTTP API.

``eksgate infra render --api rest`` leaves the REST API as Chalice makes it and adds none of this.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

# The logical ids ``chalice package`` gives the app's function and its REST API.
API_HANDLER = "APIHandler"
REST_API = "RestAPI"
HTTP_API = "HttpApi"
# API Gateway waits at most 30 s for an HTTP API integration; the function's timeout is 29 s.
INTEGRATION_TIMEOUT_MS = 30000


class RouteError(Exception):
    """The app's routes cannot be read or cannot be an HTTP API's routes."""


def app_routes(project_dir: Path) -> list[tuple[str, str]]:
    """(method, path) of every route the project's ``app.py`` declares, sorted."""
    app_file = Path(project_dir) / "app.py"
    spec = importlib.util.spec_from_file_location("_eksgate_app_for_routes", app_file)
    if spec is None or spec.loader is None or not app_file.is_file():
        raise RouteError(f"no app.py in {project_dir}")
    module = importlib.util.module_from_spec(spec)
    project = str(Path(project_dir).resolve())
    added = project not in sys.path
    if added:
        sys.path.insert(0, project)  # app.py imports chalicelib from its own folder
    try:
        spec.loader.exec_module(module)
    finally:
        if added:
            sys.path.remove(project)
    return sorted(
        (method, path) for path, entries in module.app.routes.items() for method in entries
    )


def _logical_name(method: str, path: str) -> str:
    """``GET /k8s/{cluster}/{proxy+}`` -> ``HttpApiRouteGetK8sClusterProxy``."""
    words = re.split(r"[^A-Za-z0-9]+", f"{method} {path}")
    name = "".join(word[:1].upper() + word[1:].lower() for word in words if word)
    return f"{HTTP_API}Route{name or 'Root'}"


def http_api_resources(stage: str, routes: list[tuple[str, str]]) -> dict[str, Any]:
    """``Resources`` and ``Outputs`` to merge: the HTTP API, its routes, integration, stage and
    invoke permission, the REST API's endpoint turned off, ``EndpointURL`` set to the HTTP API."""
    if not routes:
        raise RouteError("the app declares no routes: there is nothing to put behind an API")
    resources: dict[str, Any] = {
        HTTP_API: {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": f"eksgate-{stage}",
                "ProtocolType": "HTTP",
                "Description": f"eksgate gateway (stage {stage}): the Kubernetes API proxy, "
                "tokens, approvals and Slack interactions",
            },
        },
        f"{HTTP_API}Integration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": HTTP_API},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": [API_HANDLER, "Arn"]},
                # 1.0: the REST API's proxy event, which the app (Chalice) reads.
                "PayloadFormatVersion": "1.0",
                "TimeoutInMillis": INTEGRATION_TIMEOUT_MS,
            },
        },
        f"{HTTP_API}DefaultStage": {
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {"ApiId": {"Ref": HTTP_API}, "StageName": "$default", "AutoDeploy": True},
        },
        f"{HTTP_API}InvokePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": {"Ref": API_HANDLER},
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                    f"${{AWS::AccountId}}:${{{HTTP_API}}}/*"
                },
            },
        },
        # Merged into Chalice's RestAPI: it stays in the stack but cannot be called.
        REST_API: {"Properties": {"DisableExecuteApiEndpoint": True}},
    }
    for method, path in routes:
        logical_id = _logical_name(method, path)
        if logical_id in resources:
            raise RouteError(f"routes {method} {path} and another would share {logical_id}")
        resources[logical_id] = {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": HTTP_API},
                "RouteKey": f"{method} {path}",
                "Target": {"Fn::Sub": f"integrations/${{{HTTP_API}Integration}}"},
            },
        }
    return {
        "Resources": resources,
        "Outputs": {
            "EndpointURL": {
                "Description": "the eksgate gateway (HTTP API): kubeconfig server is "
                "<EndpointURL>k8s/<cluster>, Slack's request URL <EndpointURL>slack/interactions",
                "Value": {
                    "Fn::Sub": f"https://${{{HTTP_API}}}.execute-api.${{AWS::Region}}."
                    "${AWS::URLSuffix}/"
                },
            },
            "HttpApiId": {"Value": {"Ref": HTTP_API}},
        },
    }
