"""The local stack's bad input: a port in use, a missing dependency, a component that dies."""

from __future__ import annotations

import socket

import pytest
from eksgate_local import stack as stack_module
from eksgate_local.stack import ComponentError, LocalStack, check_dependencies, responds


def test_a_port_in_use_names_the_component_and_stops_the_others():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        local = LocalStack(gateway_port=port)
        with pytest.raises(ComponentError) as err:
            local.start()
    assert err.value.component.startswith("gateway")
    assert "Address already in use" in str(err.value)
    # Everything started before the gateway was stopped again.
    assert not responds(local.aws.endpoint_url)
    assert not responds(local.oidc.base_url)
    assert local.kube is not None and not responds(local.kube.url)


def test_a_missing_dependency_is_named_with_how_to_install_it(monkeypatch):
    monkeypatch.setitem(stack_module.REQUIRED_MODULES, "surely_not_installed_xyz", "xyz-package")
    with pytest.raises(ComponentError, match="xyz-package is not installed; run ./scripts/demo"):
        check_dependencies()


def test_a_component_that_dies_is_named():
    with LocalStack() as local:
        assert local.first_dead_component() is None
        assert local.kube is not None
        local.kube.stop()
        assert local.first_dead_component() == "Kubernetes API emulator"


def test_stopping_removes_the_folder_holding_the_demo_tokens():
    with LocalStack() as local:
        token_file = local.write_token_file("ci-agent")
        assert token_file.read_text().count(".") == 2  # a JWT, valid for an hour
        assert local.workdir.name.startswith("eksgate-local-")
    assert not token_file.exists()
    assert not local.workdir.exists()


def test_a_stack_that_fails_to_start_leaves_no_folder_behind():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        local = LocalStack(gateway_port=taken.getsockname()[1])
        with pytest.raises(ComponentError):
            local.start()
    assert not local.workdir.exists()
