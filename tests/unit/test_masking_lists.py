"""A list answer masked item by item (chalicelib.masking.lists) gives the very bytes masking the
whole document gives, whatever the list holds, and whatever it cannot split goes the whole
way round: the streamed path adds memory savings, never a different decision."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.masking import DEFAULT_SETTINGS, MASK, mask_json
from chalicelib.masking import lists as lists_module
from chalicelib.masking.documents import make_context, mask_value
from chalicelib.masking.jsoncodec import dumps, loads
from chalicelib.masking.lists import mask_list_answer

RESOURCE_KINDS = ["", "Secret", "ConfigMap", "Pod", "TokenRequest"]


def _whole(body: bytes, resource_kind: str) -> bytes:
    doc = loads(body)
    ctx = make_context(DEFAULT_SETTINGS, body, doc, resource_kind)
    return dumps(mask_value(doc, ctx, resource_kind))


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from(
        [
            "password=hunter2",
            "AKIAIOSFODNN7EXAMPLE",
            "token: abc.def.ghi",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "plain",
            "c2VjcmV0",
            "",
        ]
    ),
    st.text(max_size=12),
)
_keys = st.sampled_from(
    [
        "kind",
        "apiVersion",
        "metadata",
        "data",
        "stringData",
        "binaryData",
        "items",
        "type",
        "object",
        "password",
        "env",
        "name",
        "value",
        "annotations",
        "kubectl.kubernetes.io/last-applied-configuration",
        "spec",
        "status",
        "token",
    ]
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=20,
)
_list_kinds = st.sampled_from(
    ["SecretList", "ConfigMapList", "PodList", "List", "PartialObjectMetadataList", "", None, 7]
)
_item_kinds = st.sampled_from(["Secret", "ConfigMap", "Pod", "secret", "Status", "Table", None])


@st.composite
def _items(draw: Any) -> Any:
    item = draw(st.dictionaries(_keys, _values, max_size=6))
    kind = draw(_item_kinds)
    if kind is not None:
        item["kind"] = kind
    return item


@st.composite
def list_answers(draw: Any) -> dict[str, Any]:
    answer = draw(st.dictionaries(_keys.filter(lambda k: k != "items"), _values, max_size=4))
    kind = draw(_list_kinds)
    if kind is not None:
        answer["kind"] = kind
    answer["items"] = draw(st.one_of(st.lists(st.one_of(_items(), _values), max_size=5), _values))
    return answer


@settings(max_examples=400, deadline=None)
@given(answer=list_answers(), resource_kind=st.sampled_from(RESOURCE_KINDS))
def test_item_by_item_masking_gives_the_whole_document_masking(
    answer: dict[str, Any], resource_kind: str
) -> None:
    body = json.dumps(answer).encode()
    assert mask_json(body, resource_kind=resource_kind) == _whole(body, resource_kind)


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"SecretList","items":null}',
        b'{"kind":"SecretList","items":{"a":"b"}}',
        b'{"kind":"Table","items":[]}',
        b'{"kind":"Status","items":[]}',
        b'{"type":"ADDED","object":{"kind":"Secret","data":{"a":"YQ=="}},"items":[]}',
        b"[1,2]",
        b'"text"',
        # msgspec refuses a lone surrogate escape; the whole-document path takes it.
        b'{"kind":"List","items":[{"kind":"Secret","data":{"a":"\\ud800"}}]}',
    ],
)
def test_what_is_not_a_splittable_list_goes_the_whole_way(body: bytes) -> None:
    assert mask_list_answer(body, DEFAULT_SETTINGS, "") is None
    assert mask_json(body) == _whole(body, "")


def test_duplicate_items_keys_mask_the_items_every_json_reader_keeps() -> None:
    """The last ``items`` wins, in the splitter as in the decoder; a reader that keeps the first
    sees no unmasked Secret either, because only the masked last one is written out."""
    body = (
        b'{"kind":"SecretList","items":[{"data":{"a":"Zmlyc3Q="}}],'
        b'"items":[{"data":{"a":"bGFzdA=="}}]}'
    )
    out = mask_json(body)
    assert out.count(b'"items"') == 1
    assert b"Zmlyc3Q=" not in out and b"bGFzdA==" not in out
    assert out == _whole(body, "")


def test_a_secret_list_answer_is_masked_item_by_item_with_numbers_kept_exact() -> None:
    body = (
        b'{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"123456789012345'
        b'678901234"},"items":[{"kind":"Secret","metadata":{"name":"a","generation":'
        b'123456789012345678901234567890},"data":{"password":"aHVudGVyMg=="}}]}'
    )
    out = mask_list_answer(body, DEFAULT_SETTINGS, "")
    assert out is not None
    decoded = json.loads(out)
    assert decoded["items"][0]["metadata"]["generation"] == 123456789012345678901234567890
    assert b"aHVudGVyMg==" not in out
    assert MASK not in decoded["items"][0]["metadata"]["name"]


def test_only_one_item_is_decoded_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the path: an item's decoded objects are gone before the next is decoded."""
    live: list[int] = []
    peak = [0]
    real_loads = lists_module.loads

    class Tracked(dict):  # type: ignore[type-arg]
        def __del__(self) -> None:
            live.pop()

    def tracking_loads(raw: bytes, **options: Any) -> Any:
        value = real_loads(raw, **options)
        if isinstance(value, dict) and "metadata" in value:
            value = Tracked(value)
            live.append(1)
            peak[0] = max(peak[0], len(live))
        return value

    monkeypatch.setattr(lists_module, "loads", tracking_loads)
    items = [{"kind": "Pod", "metadata": {"name": f"p{i}"}} for i in range(50)]
    body = json.dumps({"kind": "PodList", "items": items}).encode()
    assert mask_list_answer(body, DEFAULT_SETTINGS, "Pod") is not None
    assert peak[0] == 1
