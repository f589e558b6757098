"""An approval is bound to the exact request (once) or to the requester's rule (grant)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.approvals.fingerprint import (
    grant_match_key,
    once_match_key,
    request_fingerprint,
    rule_identity,
)
from chalicelib.policy.model import ApprovalSettings
from tests.approvals.conftest import patch_rule

PATH = "/apis/apps/v1/namespaces/shop/deployments/web"


def test_the_same_request_gives_the_same_fingerprint() -> None:
    assert request_fingerprint("PATCH", PATH, "a=1", b"{}") == request_fingerprint(
        "PATCH", PATH, "a=1", b"{}"
    )


def test_any_change_to_method_path_query_or_body_changes_the_fingerprint() -> None:
    base = request_fingerprint("PATCH", PATH, "a=1", b'{"replicas":5}')
    assert request_fingerprint("PUT", PATH, "a=1", b'{"replicas":5}') != base
    assert request_fingerprint("PATCH", PATH + "x", "a=1", b'{"replicas":5}') != base
    assert request_fingerprint("PATCH", PATH, "a=2", b'{"replicas":5}') != base
    assert request_fingerprint("PATCH", PATH, "a=1", b'{"replicas":50}') != base


def test_no_body_and_an_empty_body_are_the_same_request() -> None:
    assert request_fingerprint("DELETE", PATH, "", None) == request_fingerprint(
        "DELETE", PATH, "", b""
    )


def _split(text: str, cuts: tuple[int, int]) -> tuple[str, str, str]:
    return text[: cuts[0]], text[cuts[0] : cuts[1]], text[cuts[1] :]


@st.composite
def one_text_split_two_ways(draw: st.DrawFn) -> tuple[tuple[str, str, str], ...]:
    """The same characters cut into (method, path, query) at two different places."""
    text = draw(st.text(min_size=1, max_size=24))
    cuts = [(i, j) for i in range(len(text) + 1) for j in range(i, len(text) + 1)]
    first = draw(st.sampled_from(cuts))
    second = draw(st.sampled_from([other for other in cuts if other != first]))
    return _split(text, first), _split(text, second)


@given(one_text_split_two_ways(), st.binary(max_size=8))
def test_moving_characters_across_part_boundaries_changes_the_fingerprint(
    parts: tuple[tuple[str, str, str], ...], body: bytes
) -> None:
    (method, path, query), (method2, path2, query2) = parts
    assert method + path + query == method2 + path2 + query2  # the same characters...
    assert (method, path, query) != (method2, path2, query2)  # ...cut differently
    assert request_fingerprint(method, path, query, body) != request_fingerprint(
        method2, path2, query2, body
    )


def test_once_keys_bind_requester_issuer_and_cluster() -> None:
    fp = request_fingerprint("PATCH", PATH, "", b"{}")
    key = once_match_key("alice", fp, issuer="https://idp", cluster="prod")
    assert key.startswith("once:")
    assert once_match_key("bob", fp, issuer="https://idp", cluster="prod") != key
    assert once_match_key("alice", fp, issuer="https://other", cluster="prod") != key
    assert once_match_key("alice", fp, issuer="https://idp", cluster="dev") != key


def test_grant_keys_bind_requester_cluster_policy_and_rule() -> None:
    key = grant_match_key("alice", "prod", "engineers", "debug#1", issuer="https://idp")
    assert key.startswith("grant:")
    assert grant_match_key("alice", "prod", "engineers", "debug#2", issuer="https://idp") != key
    assert grant_match_key("alice", "prod", "readers", "debug#1", issuer="https://idp") != key
    assert grant_match_key("alice", "dev", "engineers", "debug#1", issuer="https://idp") != key


def test_editing_a_rule_changes_its_identity_but_moving_it_in_the_file_does_not() -> None:
    rule = patch_rule(mode="grant")
    assert rule_identity(rule).startswith("change-workloads#")
    assert rule_identity(replace(rule, line=99)) == rule_identity(rule)
    assert rule_identity(replace(rule, verbs=("*",))) != rule_identity(rule)
    wider = replace(rule, approval=ApprovalSettings(mode="grant", window_seconds=86400))
    assert rule_identity(wider) != rule_identity(rule)
