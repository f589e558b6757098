"""The trigger search over a JSON answer (``Scanner.suspects_in_json``) remembers strings by the
bytes around their triggers; it must find exactly the strings the search without that memory
finds, and every string that holds a trigger, whatever escapes and quotes surround them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.masking import DEFAULT_SETTINGS
from chalicelib.masking import scanner as scanner_module
from chalicelib.masking.scanner import scanner_for

PIECES = st.sampled_from(
    [
        "password",
        "DB_PASSWORD",
        "secretKeyRef",
        "token",
        "postgres://shop@db",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1.42.0",
        "plain",
        'a "quoted" token',
        "back\\slash",
        "ends with a backslash \\",
        '\\"secret\\"',
        "pass\u0077ord",
        "caf\u00e9 auth",
        "",
        "x" * 60,
    ]
)
TEXTS = st.lists(PIECES, min_size=1, max_size=3).map(" ".join)
OBJECTS = st.dictionaries(TEXTS, st.one_of(TEXTS, st.lists(TEXTS, max_size=3)), max_size=4)


def strings_of(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings_of(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_of(item)


@settings(max_examples=200, deadline=None)
@given(st.lists(OBJECTS, min_size=1, max_size=30), st.booleans())
def test_remembered_strings_are_the_strings_found_without_memory(objects, ascii_only):
    # Lists of objects repeat their strings, which is what the memory is for.
    raw = json.dumps({"kind": "List", "items": objects * 3}, ensure_ascii=ascii_only).encode()
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    found = scanner.suspects_in_json(raw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scanner_module, "_SEEN_AROUND_REACH", 0)  # nothing fits: no memory
        assert found == scanner.suspects_in_json(raw)
    for text in strings_of(objects):
        if scanner.has_trigger(text):
            assert text in found


def test_a_string_longer_than_the_bytes_compared_is_never_remembered():
    """Two strings alike for as far as the search compares, then different: the second is
    shorter, and a string holding a trigger follows it. Remembering the first one's end would
    skip the trigger that follows the second."""
    filler = {"f": "z" * 60}
    longer = {"k": "token" + "x" * 50 + "y" * 50}
    shorter = {"k": "token" + "x" * 50, "p": "password"}
    raw = json.dumps([filler, longer, filler, shorter], separators=(",", ":")).encode()
    found = scanner_for(DEFAULT_SETTINGS.families).suspects_in_json(raw)
    assert "password" in found
    assert {"token" + "x" * 50 + "y" * 50, "token" + "x" * 50} <= found


def test_a_string_whose_quote_may_be_escaped_is_never_remembered():
    r"""An opening quote behind a backslash depends on what lies before it; such a string is
    found again each time."""
    first = {"k": 'a\\"token" inside'}
    second = {"k": 'b\\"token" inside', "p": "password"}
    raw = json.dumps([first, second, first, second], separators=(",", ":")).encode()
    found = scanner_for(DEFAULT_SETTINGS.families).suspects_in_json(raw)
    assert {'a\\"token" inside', 'b\\"token" inside', "password"} <= found
