"""Which commands a ``pods/exec`` rule names: argv patterns, matched element by element.

A pattern is a list with one element per argument. ``**`` alone stands for any number of
arguments (zero or more) of any content. Any other element matches one argument: ``*``
any run of characters except ``/``, ``?`` one character except ``/``, everything else
itself. So ``["cat", "/etc/app/*"]`` allows ``cat /etc/app/config.yaml`` and not
``cat /etc/app/x /etc/shadow``, ``cat /etc/app/sub/x`` or ``cat /etc/app/../shadow``:
an argument with a ``..`` path segment only ever matches an element spelled exactly like it.
Matching is exact and case-sensitive; the program is ``argv[0]`` as given (``/bin/cat`` is
not ``cat``). Pure functions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from functools import lru_cache

ANY_ARGUMENTS = "**"


@lru_cache(maxsize=1024)
def _element_regex(element: str) -> re.Pattern[str]:
    parts = []
    for char in element:
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _has_dot_dot(argument: str) -> bool:
    return ".." in argument.split("/")


def element_matches(element: str, argument: str) -> bool:
    """Does one pattern element (not ``**``) match one argument?"""
    if element == argument:
        return True
    if "*" not in element and "?" not in element:
        return False
    if _has_dot_dot(argument) or "\0" in argument:
        return False
    return _element_regex(element).fullmatch(argument) is not None


def argv_matches(pattern: Sequence[str], argv: Sequence[str]) -> bool:
    """Does ``argv`` match ``pattern`` (``**`` spanning zero or more arguments)?"""
    pattern, argv = tuple(pattern), tuple(argv)
    # Positions in argv reachable after each pattern element (no exponential backtracking).
    reachable = {0}
    for element in pattern:
        if element == ANY_ARGUMENTS:
            reachable = set(range(min(reachable), len(argv) + 1)) if reachable else set()
        else:
            reachable = {
                i + 1 for i in reachable if i < len(argv) and element_matches(element, argv[i])
            }
        if not reachable:
            return False
    return len(argv) in reachable


def any_command_matches(patterns: Sequence[Sequence[str]], argv: Sequence[str]) -> bool:
    """True when some pattern matches; an empty argv never matches."""
    return bool(argv) and any(argv_matches(p, argv) for p in patterns)


def pattern_problem(pattern: Sequence[str]) -> str | None:
    """Why a pattern cannot be used, or None."""
    if not pattern:
        return "a command pattern needs at least the program"
    if pattern[0] == ANY_ARGUMENTS or "*" in pattern[0] or "?" in pattern[0]:
        return "the program (first element) must be spelled out, without wildcards"
    return None


def render_argv(argv: Sequence[str]) -> str:
    """argv as one shell-quoted line, for messages, Slack and replay (never executed)."""
    return " ".join(shlex.quote(a) for a in argv)
