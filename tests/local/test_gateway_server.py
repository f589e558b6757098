"""The local gateway over loopback answers as the deployed HTTP API does: its own 404 for a
request no route takes, and header names lower-cased on their way to the app."""

from __future__ import annotations

import http.client
import json

import pytest
from chalice import Chalice
from eksgate_local.gateway_server import LocalApiGateway

import app as app_module


def send(gateway, method, target, headers=()):
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, target)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("front_door", "status", "body"),
    [
        ("http", 404, b'{"message":"Not Found"}'),
        ("rest", 403, b'{"message":"Missing Authentication Token"}'),
    ],
)
def test_a_request_no_route_takes_gets_the_api_gateway_answer(front_door, status, body):
    # /{proxy+} needs at least one segment, so the root is no route's, in either API.
    with LocalApiGateway(app_module.app, front_door=front_door) as gateway:
        assert send(gateway, "GET", "/") == (status, body)
        assert gateway.answers()[-1]["status"] == status


def test_header_names_reach_the_app_lower_cased():
    echo = Chalice(app_name="echo")

    @echo.route("/echo", methods=["GET"])
    def headers_seen():
        event = echo.current_request.to_original_event()
        return {"headers": event["headers"], "multi": event["multiValueHeaders"]}

    headers = [("X-Custom-Thing", "a"), ("X-Repeat", "1"), ("x-REPEAT", "2"), ("Accept", "*/*")]
    with LocalApiGateway(echo) as gateway:
        status, data = send(gateway, "GET", "/echo", headers)
    seen = json.loads(data)
    assert status == 200
    assert all(name == name.lower() for name in seen["headers"])
    assert seen["headers"]["x-custom-thing"] == "a" and seen["headers"]["accept"] == "*/*"
    assert seen["multi"]["x-repeat"] == ["1", "2"]


def test_an_unknown_front_door_is_refused():
    with pytest.raises(ValueError, match="front_door"):
        LocalApiGateway(app_module.app, front_door="websocket")
