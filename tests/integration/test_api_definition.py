"""The API definition Chalice's generators emit once app.py is loaded by the Chalice CLI."""

from __future__ import annotations

import copy

import pytest
from chalice.deploy.swagger import SwaggerGenerator

from eksgate.api_definition import (
    DESCRIPTION,
    UnsupportedDefinition,
    complete_definition,
    path_parameters,
    use_complete_definitions,
)

HANDLER = "arn:aws:lambda:us-east-1:123456789012:function:eksgate-dev"
PROXY_METHODS = {"get", "head", "post", "put", "patch", "delete", "options"}


@pytest.fixture(scope="module")
def chalice_swagger():
    """What Chalice itself generates for app.py, before completion."""
    use_complete_definitions()  # app.py does this too when chalice.deploy is loaded
    import app

    raw_generate = SwaggerGenerator.generate_swagger.__wrapped__
    return raw_generate(SwaggerGenerator("us-east-1", {"api_handler_arn": HANDLER}), app.app)


@pytest.fixture(scope="module")
def definition(chalice_swagger):
    import app

    return SwaggerGenerator("us-east-1", {"api_handler_arn": HANDLER}).generate_swagger(app.app)


def test_chalice_alone_leaves_the_greedy_parameter_undeclared(chalice_swagger):
    """The reason this module exists; if Chalice fixes it, this test says so."""
    declared = {
        p["name"] for p in chalice_swagger["paths"]["/k8s/{cluster}/{proxy+}"]["get"]["parameters"]
    }
    assert declared == {"cluster"}
    assert "description" not in chalice_swagger["info"]


def test_every_method_of_the_greedy_route_declares_cluster_and_proxy(definition):
    operations = definition["paths"]["/k8s/{cluster}/{proxy+}"]
    assert set(operations) == PROXY_METHODS
    for operation in operations.values():
        assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
            ("cluster", "path", True),
            ("proxy", "path", True),
        ]
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"


def test_the_definition_is_openapi_3_with_a_description(definition):
    assert definition["openapi"] == "3.0.1" and "swagger" not in definition
    assert definition["info"] == {"title": "eksgate", "version": "1.0", "description": DESCRIPTION}
    assert definition["components"]["schemas"]["Empty"]["type"] == "object"
    ok = definition["paths"]["/v1/token"]["post"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Empty"}
    assert "application/octet-stream" in definition["x-amazon-apigateway-binary-media-types"]


def test_every_path_declares_exactly_its_template_parameters(definition):
    for path, operations in definition["paths"].items():
        for operation in operations.values():
            names = [p["name"] for p in operation.get("parameters", [])]
            assert names == path_parameters(path), path


def test_installing_twice_wraps_once():
    use_complete_definitions()
    first = SwaggerGenerator.generate_swagger
    use_complete_definitions()
    assert SwaggerGenerator.generate_swagger is first


def test_a_key_it_does_not_know_is_refused_not_dropped(chalice_swagger):
    """A Chalice upgrade that adds, say, request validation must not vanish from the API."""
    with_validator = copy.deepcopy(chalice_swagger)
    with_validator["x-amazon-apigateway-request-validators"] = {}  # extensions are kept
    assert "x-amazon-apigateway-request-validators" in complete_definition(with_validator)
    top = copy.deepcopy(chalice_swagger)
    top["securityDefinitionsV2"] = {}
    with pytest.raises(UnsupportedDefinition, match="securityDefinitionsV2"):
        complete_definition(top)
    operation = copy.deepcopy(chalice_swagger)
    operation["paths"]["/healthz"]["get"]["requestBody"] = {}
    with pytest.raises(UnsupportedDefinition, match="GET /healthz"):
        complete_definition(operation)


def test_a_parameter_outside_the_path_is_refused(chalice_swagger):
    bad = copy.deepcopy(chalice_swagger)
    bad["paths"]["/healthz"]["get"]["parameters"] = [{"name": "x", "in": "path"}]
    with pytest.raises(UnsupportedDefinition, match="not all in the path"):
        complete_definition(bad)


def test_only_swagger_2_is_accepted():
    with pytest.raises(UnsupportedDefinition):
        complete_definition({"openapi": "3.0.1", "info": {}, "paths": {}})


def test_path_parameters_reads_plain_and_greedy_names():
    assert path_parameters("/k8s/{cluster}/{proxy+}") == ["cluster", "proxy"]
    assert path_parameters("/healthz") == []
