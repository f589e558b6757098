"""The REST API definition that ``chalice deploy`` and ``chalice package`` give API Gateway.

Chalice 1.34 generates a Swagger 2.0 definition that is incomplete in two ways:

- the greedy route ``/k8s/{cluster}/{proxy+}`` declares ``cluster`` as a path parameter but
  not ``proxy`` (Chalice only recognises ``{name}``);
- ``info`` has no ``description``.

:func:`complete_definition` declares every path parameter the path template names (a greedy
one by its name without the ``+``, as API Gateway's own exports do), adds the description and
states the definition as OpenAPI 3.0, which API Gateway imports like Swagger 2.0 and which
moto (our stand-in for AWS, ``tests/integration/test_chalice_deploy.py``) requires.

Chalice has no setting or hook for the definition it generates, so
:func:`use_complete_definitions` wraps ``SwaggerGenerator.generate_swagger``, the one method
every generator (deploy, package, generate-models) inherits. app.py calls it only when the
Chalice CLI has loaded that module; the Lambda never imports it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

DESCRIPTION = "eksgate: approval and credential broker for Amazon EKS"
OPENAPI_VERSION = "3.0.1"
# `{cluster}` or the greedy `{proxy+}`.
_PATH_PARAMETER = re.compile(r"\{(\w+)\+?\}")
_SWAGGER_REF = "#/definitions/"
_OPENAPI_REF = "#/components/schemas/"
# What Chalice 1.34 puts in a definition. Anything else is refused rather than dropped, so a
# Chalice upgrade that adds a feature cannot silently lose it from the deployed API.
_COPIED_KEYS = {"info", "paths", "definitions", "securityDefinitions"}
_DROPPED_KEYS = {"swagger", "schemes"}
_OPERATION_KEYS = {
    "consumes",
    "produces",
    "responses",
    "parameters",
    "summary",
    "description",
    "security",
}


class UnsupportedDefinition(ValueError):
    """Chalice generated something this module does not know how to state in OpenAPI 3."""


def complete_definition(
    swagger: Mapping[str, Any], description: str = DESCRIPTION
) -> dict[str, Any]:
    """The OpenAPI 3.0 form of Chalice's Swagger 2.0 ``swagger``, every path parameter declared.

    Integration objects are kept as they are (the deployer fills placeholders in them later).
    Raises UnsupportedDefinition for a key it would otherwise have to drop.
    """
    if swagger.get("swagger") != "2.0":
        raise UnsupportedDefinition(f"expected a Swagger 2.0 definition, got {swagger!r:.80}")
    unknown = {
        key
        for key in swagger
        if key not in _COPIED_KEYS | _DROPPED_KEYS and not key.startswith("x-amazon-")
    }
    if unknown:
        raise UnsupportedDefinition(f"unsupported top-level keys: {sorted(unknown)}")
    definition: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {**swagger["info"], "description": description},
        "paths": {
            path: _path_item(path, operations) for path, operations in swagger["paths"].items()
        },
        "components": _components(swagger),
    }
    definition.update({key: value for key, value in swagger.items() if key.startswith("x-amazon-")})
    return definition


def path_parameters(path: str) -> list[str]:
    """The parameter names a path template declares: ``/k8s/{cluster}/{proxy+}`` gives both."""
    return _PATH_PARAMETER.findall(path)


def use_complete_definitions() -> None:
    """Make every Chalice definition generator in this process return complete_definition()."""
    from chalice.deploy.swagger import SwaggerGenerator

    generate = SwaggerGenerator.generate_swagger
    if getattr(generate, "completes_definition", False):
        return

    @functools.wraps(generate)  # keeps Chalice's own as __wrapped__
    def generate_complete(self: SwaggerGenerator, app: Any, rest_api: Any = None) -> Any:
        return complete_definition(generate(self, app, rest_api))

    generate_complete.completes_definition = True  # type: ignore[attr-defined]
    SwaggerGenerator.generate_swagger = generate_complete  # type: ignore[method-assign]


def _components(swagger: Mapping[str, Any]) -> dict[str, Any]:
    components: dict[str, Any] = {"schemas": _openapi_refs(swagger.get("definitions", {}))}
    if "securityDefinitions" in swagger:
        # Chalice's schemes are apiKey ones (API keys, authorizers), which read the same in 3.0.
        components["securitySchemes"] = swagger["securityDefinitions"]
    return components


def _path_item(path: str, operations: Mapping[str, Any]) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_parameters(path)
    ]
    return {
        method: _operation(path, method, operation, parameters)
        for method, operation in operations.items()
    }


def _operation(
    path: str, method: str, operation: Mapping[str, Any], parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    unknown = {
        key for key in operation if key not in _OPERATION_KEYS and not key.startswith("x-amazon-")
    }
    if unknown:
        raise UnsupportedDefinition(f"{method.upper()} {path}: unsupported keys {sorted(unknown)}")
    declared = {p["name"] for p in operation.get("parameters", [])}
    if not declared <= set(path_parameters(path)):
        raise UnsupportedDefinition(
            f"{method.upper()} {path}: parameters {sorted(declared)} are not all in the path"
        )
    converted: dict[str, Any] = {
        key: value
        for key, value in operation.items()
        if key in {"summary", "description", "security"} or key.startswith("x-amazon-")
    }
    if parameters:
        converted["parameters"] = [dict(p) for p in parameters]
    # `consumes` only feeds request models, which Lambda proxy integrations do not use.
    media_types = operation.get("produces", ["application/json"])
    converted["responses"] = {
        status: _response(response, media_types)
        for status, response in operation.get("responses", {}).items()
    }
    return converted


def _response(response: Mapping[str, Any], media_types: list[str]) -> dict[str, Any]:
    converted: dict[str, Any] = {"description": response.get("description", "")}
    if "schema" in response:
        schema = _openapi_refs(response["schema"])
        converted["content"] = {media_type: {"schema": schema} for media_type in media_types}
    if "headers" in response:
        converted["headers"] = {
            name: {"schema": _openapi_refs(header)} for name, header in response["headers"].items()
        }
    return converted


def _openapi_refs(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: (
                _OPENAPI_REF + item[len(_SWAGGER_REF) :]
                if key == "$ref" and isinstance(item, str) and item.startswith(_SWAGGER_REF)
                else _openapi_refs(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_openapi_refs(item) for item in value]
    return value
