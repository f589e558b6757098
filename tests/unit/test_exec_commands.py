"""The argv pattern matcher of pods/exec rules: examples, attacks and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.policy.commands import (
    any_command_matches,
    argv_matches,
    element_matches,
    pattern_problem,
    render_argv,
)

CAT_APP = ["cat", "/etc/app/*"]


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["cat", "/etc/app/config.yaml"], True),
        (["cat", "/etc/app/"], True),  # * matches the empty run
        (["cat", "/etc/app/sub/x"], False),  # * does not cross /
        (["cat", "/etc/app/../shadow"], False),  # traversal
        (["cat", "/etc/app/x/../../shadow"], False),
        (["cat", "/etc/app/x", "/etc/shadow"], False),  # one argument per element
        (["cat"], False),
        (["/bin/cat", "/etc/app/config.yaml"], False),  # the program is literal
        (["CAT", "/etc/app/config.yaml"], False),
        (["cat", "/etc/app/a\nb"], True),  # odd but harmless: still under /etc/app
        ([], False),
    ],
)
def test_cat_app(argv: list[str], allowed: bool) -> None:
    assert any_command_matches([CAT_APP], argv) is allowed


def test_double_star_spans_any_arguments() -> None:
    assert argv_matches(["ls", "**"], ["ls"])
    assert argv_matches(["ls", "**"], ["ls", "-la", "/etc/../root"])
    assert argv_matches(["sh", "-c", "**"], ["sh", "-c", "exit 3"])
    assert not argv_matches(["ls", "**"], ["lsof"])
    assert argv_matches(
        ["kubectl", "**", "--dry-run=server"], ["kubectl", "apply", "-f", "x", "--dry-run=server"]
    )
    assert not argv_matches(
        ["kubectl", "**", "--dry-run=server"], ["kubectl", "apply", "--dry-run=server", "-f"]
    )


def test_literal_dot_dot_is_allowed_only_when_spelled_out() -> None:
    assert element_matches("../x", "../x")
    assert not element_matches("*", "..")
    assert not element_matches("/a/*", "/a/..")


def test_question_mark() -> None:
    assert element_matches("exit ?", "exit 3")
    assert not element_matches("exit ?", "exit 33")
    assert not element_matches("a?b", "a/b")


def test_regex_characters_are_literal() -> None:
    assert not element_matches("a.c*", "abc")
    assert element_matches("a.c*", "a.cd")
    assert not element_matches("[ab]*", "a")


def test_pattern_problems() -> None:
    assert pattern_problem([]) is not None
    assert pattern_problem(["**"]) is not None
    assert pattern_problem(["c*t", "x"]) is not None
    assert pattern_problem(["cat", "**"]) is None


def test_render_argv_quotes() -> None:
    assert render_argv(["sh", "-c", "echo $HOME; rm -rf /"]) == "sh -c 'echo $HOME; rm -rf /'"


words = st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=12)


@given(st.lists(words, min_size=1, max_size=6))
def test_literal_pattern_matches_only_itself(argv: list[str]) -> None:
    literal = [a.replace("*", "x").replace("?", "x") for a in argv]
    assert argv_matches(literal, literal)
    assert not argv_matches(literal, literal + ["extra"])
    assert not argv_matches(literal, literal[:-1])


@given(st.lists(words, max_size=8))
def test_double_star_alone_matches_everything(argv: list[str]) -> None:
    assert argv_matches(["**"], argv)


@given(st.text(max_size=10), st.text(max_size=20))
def test_single_star_never_crosses_a_slash_or_dot_dot(prefix: str, argument: str) -> None:
    element = prefix.replace("*", "").replace("?", "") + "*"
    if element_matches(element, argument) and element != argument:
        assert argument.count("/") == element.count("/")
        assert ".." not in argument.split("/")


@given(st.lists(words, min_size=1, max_size=5), st.lists(words, max_size=5))
def test_pattern_with_trailing_double_star_is_a_prefix_match(
    head: list[str], tail: list[str]
) -> None:
    literal = [a.replace("*", "x").replace("?", "x") for a in head]
    assert argv_matches([*literal, "**"], literal + tail)
