"""A fast yes/no check that a document satisfies the policy JSON Schema.

jsonschema explains what is wrong, but walking 200 policies with it costs a cold start most of a
second. Valid documents are the common case, so the loader asks this compiled check first and
runs jsonschema only when the answer is no, to name each problem. The check implements exactly
the keywords the policy schema uses, with jsonschema's semantics; a schema that uses any other
keyword cannot be compiled, and the loader then always asks jsonschema (never a weaker check).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]


class UnsupportedSchema(ValueError):
    """The schema uses a keyword this check does not implement."""


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """jsonschema's equality for enum members: ``True`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def compile_schema(schema: Any) -> Check:
    """A function telling whether an instance is valid under ``schema``."""
    if schema is True:
        return _ANYTHING
    if schema is False:
        return lambda value: False
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"schema {schema!r} is not an object")
    checks = [_keyword(keyword, argument, schema) for keyword, argument in schema.items()]
    checks = [check for check in checks if check is not _ANYTHING]
    if not checks:
        return _ANYTHING
    if len(checks) == 1:
        return checks[0]
    return _every(checks)


# Loops rather than all() over generators: a cold start without a policy snapshot runs these
# checks about a hundred thousand times for 200 policies.


def _every(checks: list[Check]) -> Check:
    def check_all(value: Any) -> bool:
        for check in checks:
            if not check(value):
                return False
        return True

    return check_all


def _ANYTHING(value: Any) -> bool:  # noqa: N802 - a constant that is a function
    return True


def _all_items(each: Check) -> Check:
    def check_items(value: Any) -> bool:
        if not isinstance(value, list):
            return True
        for item in value:
            if not each(item):
                return False
        return True

    return check_items


def _properties(known: dict[str, Check]) -> Check:
    def check_properties(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for key, item in value.items():
            check = known.get(key)
            if check is not None and not check(item):
                return False
        return True

    return check_properties


def _keyword(keyword: str, argument: Any, schema: dict) -> Check:  # noqa: C901 - one table
    if keyword == "type":
        names = argument if isinstance(argument, list) else [argument]
        tests = [_TYPES[name] for name in names]
        if len(tests) == 1:
            return tests[0]
        return lambda v: any(test(v) for test in tests)
    if keyword == "enum":
        members = list(argument)
        if all(type(m) is str for m in members):
            # Only a string equals a string member (True is never "True"): one set lookup.
            strings = frozenset(members)
            return lambda v: isinstance(v, str) and v in strings
        return lambda v: any(_same(v, m) for m in members)
    if keyword == "required":
        names = list(argument)
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)
    if keyword == "properties":
        return _properties({name: compile_schema(sub) for name, sub in argument.items()})
    if keyword == "additionalProperties":
        named = set(schema.get("properties", {}))
        if "patternProperties" in schema:
            raise UnsupportedSchema("patternProperties")
        if argument is False:  # no other key at all
            return lambda v: not isinstance(v, dict) or named.issuperset(v)
        extra = compile_schema(argument)
        return lambda v: (
            not isinstance(v, dict) or all(extra(item) for k, item in v.items() if k not in named)
        )
    if keyword == "items":
        return _all_items(compile_schema(argument))
    if keyword == "minItems":
        return lambda v: not isinstance(v, list) or len(v) >= argument
    if keyword == "minLength":
        return lambda v: not isinstance(v, str) or len(v) >= argument
    if keyword == "pattern":
        search = re.compile(argument).search
        return lambda v: not isinstance(v, str) or search(v) is not None
    if keyword == "minimum":
        return lambda v: not _is_number(v) or v >= argument
    if keyword == "maximum":
        return lambda v: not _is_number(v) or v <= argument
    if keyword == "oneOf":
        options = [compile_schema(sub) for sub in argument]
        return lambda v: sum(1 for option in options if option(v)) == 1
    if keyword in ("description", "title", "$comment"):
        return _ANYTHING
    raise UnsupportedSchema(f"keyword {keyword!r}")
