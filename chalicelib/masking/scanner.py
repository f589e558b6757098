"""One scanner per set of enabled pattern families: finds credentials in text in one pass.

Two stages keep multi-megabyte answers cheap. A multi-string search (Aho-Corasick, in native
code) finds the few places that hold a trigger word; the combined regular expression, which
holds every enabled rule as one alternation, is tried only there. Text without a trigger is
returned as it is, at the cost of one native pass. A usual log (ASCII, no mark a leading rule
needs, no tool named) is masked in place; otherwise the lines around the triggers are masked
as windows.

PEM private keys are also recognised without their BEGIN line (a log window that starts
inside a key): base64 lines before an END line, and base64 lines at the very start of a text.
"""

from __future__ import annotations

import bisect
import functools
import re
import string
from collections.abc import Callable, Iterable

from chalicelib.masking.vocabulary import (
    LEADING_RULES,
    RULES,
    TOOL_FLAG_RULES,
    TRIGGERS,
)

_SURROGATES = re.compile("[\ud800-\udfff]")

MASK = "***MASKED***"

# Texts up to this size go through the regular expression whole; larger ones in windows.
_WHOLE_TEXT_LIMIT = 4096

_TIMESTAMP = r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,}+(?:Z|[+-][0-9:]{5})[ \t]++)?"
# One line of a PEM body (optionally behind a kubectl logs --timestamps prefix).
_PEM_BODY_LINE = re.compile(rf"{_TIMESTAMP}[A-Za-z0-9+/=]++[ \t]*+\r?", re.ASCII)
# A line that can only be the start of a key cut off by a log window: long, pure base64.
_PEM_LEADING_LINE = re.compile(rf"{_TIMESTAMP}[A-Za-z0-9+/]{{40,}}+=*+[ \t]*+\r?", re.ASCII)
# What a text opening with a leading key line starts with (checked before splitting lines).
_PEM_LEADING_START = re.compile(rf"{_TIMESTAMP}[A-Za-z0-9+/]{{40}}", re.ASCII)
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----")
_YAML_BLOCK_LINE = re.compile(rb":[ \t]*+[|>][-+0-9]{0,2}+[ \t]*+(?:#[^\n]*+)?\r?\n?$")
_INDENT = re.compile(rb"[ \t]*+")
_OPEN_TAG_LINE = re.compile(rb"<[^<>/]*+>[^<]*+$")


class Scanner:
    """Masks the credentials of the given families in text. Build one with ``scanner_for``."""

    def __init__(self, families: frozenset[str]) -> None:
        import ahocorasick_rs  # native; imported on first use so cold imports stay light

        self.families = families
        self._anchored = _compile(_ordered_rules(families))
        self._leading = _compile([r for f in sorted(families) for r in LEADING_RULES.get(f, ())])
        self._tool_flags = (
            [(tools, re.compile(rule, re.ASCII)) for tools, rule in TOOL_FLAG_RULES]
            if "password-assignment" in families
            else []
        )
        # Every tool a flag rule is for (most texts name none).
        self._tools = tuple(tool for tools, _ in TOOL_FLAG_RULES for tool in tools)
        self._pem = "private-key" in families
        triggers = sorted({t for f in families for t in TRIGGERS[f]})
        self._has_triggers = bool(triggers)
        # Over whole texts the tools that flag rules are for are searched along with the
        # triggers (a tool found is not a trigger: no rule is tried where it starts), and so
        # are the marks that send a text off the usual routes (``_LEADING_MARKS``).
        tools_only = sorted(set(self._tools) - set(triggers)) if self._tool_flags else []
        text_patterns = [*triggers, *tools_only, *(m.decode() for m in _LEADING_MARKS)]
        self._text_automaton = ahocorasick_rs.BytesAhoCorasick(
            [t.encode() for t in text_patterns or ["\x00never"]],
            implementation=ahocorasick_rs.Implementation.DFA,
        )
        self._tool_patterns = frozenset(
            index for index, pattern in enumerate(text_patterns) if pattern in self._tools
        )
        self._trigger_count = len(triggers)
        self._first_mark = len(triggers) + len(tools_only)
        # Triggers that name no tool: a text whose hits are all of these is a usual one.
        self._plain_triggers = frozenset(range(len(triggers))) - self._tool_patterns
        self._str_automaton = ahocorasick_rs.AhoCorasick(
            triggers or ["\x00never"], implementation=ahocorasick_rs.Implementation.DFA
        )
        # In serialized JSON a trigger could hide behind an escape (pass\u0077ord, :\/\/).
        self._json_automaton = ahocorasick_rs.BytesAhoCorasick(
            [t.encode() for t in [*triggers, "\\u", "\\/"]],
            implementation=ahocorasick_rs.Implementation.DFA,
        )

    # -- text -----------------------------------------------------------------------------

    def mask(self, text: str, *, at_start: bool = True) -> str:
        """``text`` with every credential of the enabled families replaced by ``MASK``.

        ``at_start``: the text is the start of what the reader sees (a log window), so base64
        key lines at its very start are masked as the tail of a key cut off by the window.
        """
        if not self.families or not text:
            return text
        if len(text) <= _WHOLE_TEXT_LIMIT:
            return self._mask_window(text, at_start)
        return self._mask_in_windows(text, at_start)

    def _mask_window(self, text: str, at_start: bool) -> str:
        plain_lower = text.lower()
        # A few non-ASCII letters lower to two characters; the rules need index for index.
        same_length = len(plain_lower) == len(text)
        out = self._mask_rules(text, plain_lower if same_length else text.translate(_ASCII_LOWER))
        # Every tool flag rule starts with a dash and needs its tool named.
        if self._tool_flags and "-" in out:
            tool_text = plain_lower if out is text else out.lower()
            named = any(tool in tool_text for tool in self._tools)
            for tools, flag in self._tool_flags if named else ():
                if any(tool in tool_text for tool in tools):
                    out = flag.sub(_mask_secret_groups, out)
        # A key fragment ends with an END line or (at the start) opens with a long base64 run.
        if self._pem and ("-----END" in out or (at_start and _PEM_LEADING_START.match(out))):
            out = _mask_pem_fragments(out, at_start)
        return out

    def _mask_rules(self, text: str, lowered: str) -> str:
        """Apply the rules as one leftmost-first alternation would, trying the anchored rules
        only where a trigger starts (the rest of the text cannot start one of their matches).
        ``lowered`` is ``text`` in lower case, index for index."""
        leading: list[re.Match[str]] = []
        if self._leading is not None and _has_leading_mark(text):
            leading = list(self._leading.finditer(text))
        hits: list[int] = []
        if self._anchored is not None:
            try:
                found_hits = self._str_automaton.find_matches_as_indexes(lowered, overlapping=True)
            except UnicodeEncodeError:
                # Bytes decoded with surrogateescape (exec output): search a copy whose lone
                # surrogates are NULs, one code point each, so every index stays the same.
                lowered = _SURROGATES.sub("\x00", lowered)
                found_hits = self._str_automaton.find_matches_as_indexes(lowered, overlapping=True)
            hits = sorted({start for _, start, _ in found_hits})
        if not leading and not hits:
            return text
        # Leftmost first, as one alternation would; at one position a leading rule wins (it
        # holds the key in full). A position inside an accepted match is never tried, which
        # keeps a line of a million triggers linear.
        matches: list[re.Match[str]] = []
        match_at = self._anchored.match if self._anchored is not None else None
        cursor = 0
        if not leading and match_at is not None:  # the usual case, without the merge below
            for position in hits:
                if position >= cursor:
                    found = match_at(text, position)
                    if found is not None:
                        matches.append(found)
                        cursor = found.end()
            return _masked_matches(text, matches)
        next_leading = 0
        for position in [*hits, len(text) + 1]:
            while next_leading < len(leading) and leading[next_leading].start() <= position:
                candidate = leading[next_leading]
                next_leading += 1
                if candidate.start() >= cursor:
                    matches.append(candidate)
                    cursor = candidate.end()
            if position < cursor or position > len(text) or match_at is None:
                continue
            found = match_at(text, position)
            if found is not None:
                matches.append(found)
                cursor = found.end()
        return _masked_matches(text, matches)

    def _mask_in_windows(self, text: str, at_start: bool) -> str:
        raw = text.encode("utf-8", "surrogatepass")
        lowered = raw.lower()
        hits, marks = self._hits_and_marks(lowered)
        if text.isascii() and self._anchored is not None:
            in_place = self._mask_in_place(text, raw, hits, marks, at_start)
            if in_place is not None:
                return in_place
        windows = self._windows(raw, lowered, at_start, hits)
        if not windows:
            return text
        if text.isascii() and self._anchored is not None:
            # Byte offsets are character offsets: the windows are slices of the text itself.
            return self._mask_ascii_windows(text, windows, hits, at_start)
        pieces: list[str] = []
        cursor = 0
        for start, end in windows:
            pieces.append(raw[cursor:start].decode("utf-8", "surrogatepass"))
            window = raw[start:end].decode("utf-8", "surrogatepass")
            pieces.append(self._mask_window(window, at_start and start == 0))
            cursor = end
        pieces.append(raw[cursor:].decode("utf-8", "surrogatepass"))
        return "".join(pieces)

    def _hits_and_marks(self, lowered: bytes) -> tuple[list[tuple[int, int, int]], list[int]]:
        """One search of a lower-cased text: every trigger and tool, overlapping ones too, in
        the order they end (so line by line), and where the marks start, in order."""
        found = self._text_automaton.find_matches_as_indexes(lowered, overlapping=True)
        first_mark = self._first_mark
        hits = [hit for hit in found if hit[0] < first_mark]
        if len(hits) == len(found):
            return hits, []
        return hits, sorted(start for index, start, _ in found if index >= first_mark)

    def _mask_in_place(
        self,
        text: str,
        raw: bytes,
        hits: list[tuple[int, int, int]],
        marks: list[int],
        at_start: bool,
    ) -> str | None:
        """The usual log, masked as ``_mask_window`` masks the whole text; None when it is not
        one. Usual: all ASCII, no tool named, no key fragment opening the text, and no mark
        (``--``, ``<``, ``|``, ``>``; ``marks``: where they start) on a line holding a trigger.

        Then ``_mask_window`` of the whole text is the anchored rules tried at the triggers'
        starts and nothing else. A leading rule's match holds its mark and its keyword (a
        trigger) on one line, so none can match; no tool flag applies; and every PEM END line
        is a trigger line ("-----") holding a mark. The triggers were found once over the
        whole text, and the rules run on it in place: no windows."""
        if at_start and self._pem and _PEM_LEADING_START.match(text):
            return None  # the text may open with the rest of a key (a window of its own)
        plain = self._plain_triggers
        if not all(index in plain for index, _, _ in hits):
            return None  # a tool named: its flags need the window route
        starts = sorted({start for _, start, _ in hits})
        if not starts:
            return text
        if marks and _mark_on_a_line_of(raw, marks, starts):
            return None  # a leading rule may match there: the window routes
        match_at = self._anchored.match  # type: ignore[union-attr]
        starts.append(len(text) + 1)  # the sentinel ``_anchored_matches`` needs
        matches, _ = _anchored_matches(match_at, text, 0, starts, 0)
        return _masked_matches(text, matches)

    def _mask_ascii_windows(
        self,
        text: str,
        windows: list[tuple[int, int]],
        hits: list[tuple[int, int, int]],
        at_start: bool,
    ) -> str:
        """``_mask_window`` of each window, the usual ones with the triggers already found.

        A usual window (no leading-rule mark, no tool flag, no PEM line, not opening the text)
        only needs the anchored rules at its triggers' starts, and those are known from the
        search over the whole text: no second search per window.
        """
        triggers = self._trigger_count
        beyond = len(text) + 1  # a sentinel after the last of each list: no bounds checks
        starts = sorted({start for index, start, _ in hits if index < triggers})
        starts.append(beyond)
        tools = sorted(start for index, start, _ in hits if index in self._tool_patterns)
        tools.append(beyond)
        match_at = self._anchored.match  # type: ignore[union-attr]
        leading, pem = self._leading is not None, self._pem
        pieces: list[str] = []
        cursor = 0
        next_start = next_tool = 0
        for start, end in windows:
            pieces.append(text[cursor:start])
            cursor = end
            while starts[next_start] < start:
                next_start += 1
            while tools[next_tool] < start:
                next_tool += 1
            window = text[start:end]
            opening = at_start and start == 0
            if (
                opening
                or tools[next_tool] < end  # names a tool: its flags need the window
                or (leading and _has_leading_mark(window))
                or (pem and "-----" in window)
            ):
                pieces.append(self._mask_window(window, opening))
                continue
            matches, next_start = _anchored_matches(match_at, window, start, starts, next_start)
            pieces.append(_masked_matches(window, matches) if matches else window)
        pieces.append(text[cursor:])
        return "".join(pieces)

    def _windows(
        self, raw: bytes, lowered: bytes, at_start: bool, hits: list[tuple[int, int, int]]
    ) -> list[tuple[int, int]]:
        """Byte ranges (whole lines) that may hold a credential, merged, in order; ``hits``
        are the triggers in ``lowered``, in the order they end."""
        spans: list[tuple[int, int]] = []
        if self._pem and at_start:
            leading_end = _leading_key_lines_end(raw)
            if leading_end:
                spans.append((0, leading_end))
        line_done = 0
        reach = _Reach(raw, lowered)
        in_order = True
        rfind, find, size = raw.rfind, raw.find, len(raw)
        window_start, window_end = spans[0] if spans else (-1, -1)
        for _, hit_start, _ in hits:
            if hit_start < line_done:
                continue  # another trigger on a line already taken
            start = rfind(b"\n", 0, hit_start) + 1
            end = find(b"\n", hit_start) + 1 or size
            line_done = end
            line = lowered[start:end]
            # Only a PEM, XML or YAML block line grows its window (see ``_extend``).
            if b"-----" in line or b"<" in line or b"|" in line or b">" in line:
                grown_start, end = self._extend(reach, start, end)
                in_order = in_order and grown_start == start
                start = grown_start
            end = _through_next_line(raw, end)
            if start <= window_end:  # lines come in order: merge them as they come
                window_start, window_end = min(window_start, start), max(window_end, end)
                spans[-1] = (window_start, window_end)
            else:
                window_start, window_end = start, end
                spans.append((start, end))
        if in_order:
            return spans
        spans.sort()  # a PEM END line's window reached back over earlier ones
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def _extend(self, reach: _Reach, start: int, end: int) -> tuple[int, int]:
        """Grow a line's window over what a rule on that line needs to see."""
        raw = reach.raw
        line = reach.lowered[start:end]
        if self._pem and b"-----" in line and b"-----begin" in line:
            end = max(end, reach.line_holding(b"-----end", end))
        if self._pem and b"-----" in line and b"-----end" in line:
            while start > 0:
                previous = raw.rfind(b"\n", 0, start - 1) + 1
                text = raw[previous : start - 1].decode("utf-8", "replace")
                if not _PEM_BODY_LINE.fullmatch(text):
                    break
                start = previous
        if b"<" in line and _OPEN_TAG_LINE.search(line):
            # An XML element whose value starts on the next line: take it up to its end tag.
            end = max(end, reach.line_holding(b"</", end))
        if (
            start >= reach.yaml_until
            and (b"|" in line or b">" in line)
            and _YAML_BLOCK_LINE.search(line)
        ):
            # (A block inside an earlier block ends no later than it: nothing to add.)
            indent = len(_INDENT.match(line).group(0))  # type: ignore[union-attr]
            block_end = end
            while block_end < len(raw):
                following = raw[block_end : _end_of_line(raw, block_end)]
                if following.strip() and len(_INDENT.match(following).group(0)) <= indent:  # type: ignore[union-attr]
                    break
                block_end += len(following)
            reach.yaml_until = block_end
            end = max(end, block_end)
        return start, end

    # -- JSON -----------------------------------------------------------------------------

    def suspects_in_json(self, raw: bytes) -> set[str]:
        """The decoded JSON strings (keys and values) of ``raw`` that hold a trigger.

        Every other string of the document is free of credentials for these families, so
        the walk over the decoded document looks only at these. Values of last-applied
        annotations are left out: the walk parses and masks each of them as a document.
        """
        from chalicelib.masking.jsoncodec import loads

        suspects: set[str] = set()
        literals: set[bytes] = set()
        rfind, string_rest = raw.rfind, _STRING_REST.match
        annotations = _annotation_spans(raw)
        next_annotation = annotations.pop() if annotations else (len(raw) + 1, len(raw) + 1)
        string_end = -1
        # The same strings come back in every object of a list (an image, an env name): a hit
        # whose surroundings were seen before has its string where it was then, relative to
        # the hit. Only kept when both quotes lay inside those surroundings and the opening
        # one was plainly unescaped, so the same bytes around give the same string.
        seen_around: dict[bytes, tuple[int, int]] = {}
        reach = _SEEN_AROUND_REACH
        for _, hit_start, hit_end in self._json_automaton.find_matches_as_indexes(raw.lower()):
            if hit_start < string_end:
                continue
            while hit_start >= next_annotation[1] and annotations:
                next_annotation = annotations.pop()
            if next_annotation[0] <= hit_start < next_annotation[1]:
                string_end = next_annotation[1]
                continue
            around_start = hit_start - reach
            around = raw[around_start : hit_end + reach] if around_start >= 0 else b""
            known = seen_around.get(around) if around else None
            if known is not None:
                opening, string_end = around_start + known[0], around_start + known[1]
                continue  # its literal was taken when these surroundings were first seen
            # Triggers never hold a quote, and JSON has no text outside strings that could
            # hold one, so the hit is inside a string: find its unescaped quotes.
            opening = first = rfind(b'"', 0, hit_start)
            while opening > 0 and raw[opening - 1] == 0x5C and _escaped(raw, opening):
                opening = rfind(b'"', 0, opening)
            rest = string_rest(raw, hit_start)
            if opening == -1 or rest is None:
                raise ValueError("not JSON: a string without its quotes")
            string_end = rest.end()
            if (
                around
                and opening == first
                and opening > around_start
                and raw[opening - 1] != 0x5C
                and string_end <= hit_end + reach
            ):
                seen_around[around] = (opening - around_start, string_end - around_start)
            literal = raw[opening:string_end]
            if literal not in literals:
                literals.add(literal)
                value = loads(literal)
                if isinstance(value, str):
                    suspects.add(value)
        return suspects

    def has_trigger(self, text: str) -> bool:
        """Whether ``text`` holds a trigger word of these families (so may hold a credential)."""
        return self._has_triggers and bool(
            self._json_automaton.find_matches_as_indexes(
                text.encode("utf-8", "surrogatepass").lower()
            )
        )


# How far around a trigger ``suspects_in_json`` compares bytes to recognise a string it has
# seen: most keys and values of Kubernetes objects are shorter.
_SEEN_AROUND_REACH = 48

# The rest of a JSON string from inside it: up to and including its closing quote.
_STRING_REST = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_ANNOTATION_START = b'"kubectl.kubernetes.io/last-applied-configuration":"'


def _annotation_spans(raw: bytes) -> list[tuple[int, int]]:
    """Where last-applied annotation values are in compact JSON, last first."""
    spans = []
    position = raw.find(_ANNOTATION_START)
    while position != -1:
        start = position + len(_ANNOTATION_START)
        if _escaped(raw, position):  # inside a key that only ends like the annotation's
            position = raw.find(_ANNOTATION_START, start)
            continue
        rest = _STRING_REST.match(raw, start)
        if rest is None:
            break
        spans.append((start, rest.end()))
        position = raw.find(_ANNOTATION_START, rest.end())
    spans.reverse()
    return spans


@functools.lru_cache(maxsize=64)
def scanner_for(families: frozenset[str]) -> Scanner:
    """The (cached) scanner for a set of enabled pattern families."""
    return Scanner(families)


def _ordered_rules(families: Iterable[str]) -> list[str]:
    enabled = set(families)
    # A PEM block is masked whole before narrower rules look inside it.
    rules = list(RULES["private-key"]) if "private-key" in enabled else []
    for family in sorted(enabled - {"private-key"}):
        rules.extend(RULES[family])
    return rules


def _compile(rules: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{r})" for r in rules), re.ASCII) if rules else None


# What sends a line holding a trigger off the in-place route: a leading rule's mark or a mark
# that grows its window (``_extend``: PEM, XML, YAML block lines; "-----" holds "--").
_LEADING_MARKS = (b"--", b"<", b"|", b">")


def _mark_on_a_line_of(raw: bytes, marks: list[int], starts: list[int]) -> bool:
    """Whether a mark lies on a line where a trigger starts (both lists sorted). Only marks on
    the next line holding a trigger are looked at after each miss, so the work is bounded by
    the fewer of marks and trigger lines."""
    at = 0
    while at < len(marks):
        mark = marks[at]
        line_start = raw.rfind(b"\n", 0, mark) + 1
        line_end = raw.find(b"\n", mark)
        trigger = bisect.bisect_left(starts, line_start)
        if trigger == len(starts):
            return False  # no trigger from this line on
        if line_end == -1 or starts[trigger] < line_end:
            return True
        next_trigger_line = raw.rfind(b"\n", 0, starts[trigger]) + 1
        at = bisect.bisect_left(marks, next_trigger_line, at + 1)
    return False


def _has_leading_mark(text: str) -> bool:
    """Whether ``text`` holds what a leading rule's match starts with (or needs): a YAML block
    indicator, "<", "--". (Four substring tests are several times faster than one regex.)"""
    return "|" in text or ">" in text or "<" in text or "--" in text


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class _Reach:
    """Forward searches over one text, remembered: lines are visited in order, so each search
    continues where the last one ended and the whole scan stays linear."""

    def __init__(self, raw: bytes, lowered: bytes) -> None:
        self.raw = raw
        self.lowered = lowered
        self.yaml_until = 0
        self._found: dict[bytes, int] = {}

    def line_holding(self, marker: bytes, position: int) -> int:
        """The end of the first line at or after ``position`` holding ``marker`` (or the
        end of the text)."""
        found = self._found.get(marker, -1)
        if found < position and found != len(self.raw):
            at = self.lowered.find(marker, position)
            found = len(self.raw) if at == -1 else _end_of_line(self.raw, at)
            self._found[marker] = found
        return found


def _through_next_line(raw: bytes, end: int) -> int:
    """A window ending at ``end`` (a line's end) grown over the next line that holds anything
    but blanks: a rule may look past a line break (``Bearer`` ending one line, its token
    opening the next), as it would in the text masked whole."""
    size = len(raw)
    while end < size:
        following = raw.find(b"\n", end) + 1 or size
        if not raw[end:following].isspace():
            return following
        end = following
    return end


def _end_of_line(raw: bytes, position: int) -> int:
    newline = raw.find(b"\n", position)
    return len(raw) if newline == -1 else newline + 1


def _escaped(raw: bytes, quote: int) -> bool:
    backslashes = 0
    position = quote - 1
    while position >= 0 and raw[position] == 0x5C:
        backslashes += 1
        position -= 1
    return backslashes % 2 == 1


def _anchored_matches(
    match_at: Callable[[str, int], re.Match[str] | None],
    window: str,
    window_start: int,
    starts: list[int],
    next_start: int,
) -> tuple[list[re.Match[str]], int]:
    """The anchored rules tried at the window's trigger starts, as ``_mask_rules`` tries them
    (leftmost first, never inside an accepted match): the matches, and the index of the first
    start past the window (``starts`` is sorted and ends with a sentinel past the text)."""
    window_end = window_start + len(window)
    matches: list[re.Match[str]] = []
    matched_to = 0
    while starts[next_start] < window_end:
        position = starts[next_start] - window_start
        next_start += 1
        if position >= matched_to:
            found = match_at(window, position)
            if found is not None:
                matches.append(found)
                matched_to = found.end()
    return matches, next_start


def _masked_matches(text: str, matches: list[re.Match[str]]) -> str:
    """``text`` with the secret groups of these (ordered, disjoint) matches masked."""
    if not matches:
        return text
    pieces: list[str] = []
    cursor = 0
    for found in matches:
        pieces.append(text[cursor : found.start()])
        pieces.append(_mask_secret_groups(found))
        cursor = found.end()
    pieces.append(text[cursor:])
    return "".join(pieces)


def _mask_secret_groups(match: re.Match[str]) -> str:
    """Replace the participating ``secret*`` groups of a match, keep the rest of it."""
    text = match.group(0)
    base = match.start()
    spans = sorted(
        match.span(group)
        for group, value in match.groupdict().items()
        if value is not None and group.startswith("secret")
    )
    pieces = []
    cursor = 0
    for start, end in spans:
        pieces.append(text[cursor : start - base])
        pieces.append(MASK)
        cursor = end - base
    pieces.append(text[cursor:])
    return "".join(pieces)


def _leading_key_lines_end(raw: bytes) -> int:
    """Where the run of key lines opening ``raw`` ends (0: it does not open with one)."""
    end = 0
    while end < len(raw):
        line_end = _end_of_line(raw, end)
        line = raw[end:line_end].rstrip(b"\n").decode("utf-8", "replace")
        if not _PEM_LEADING_LINE.fullmatch(line):
            break
        end = line_end
    return end


def _mask_pem_fragments(text: str, at_start: bool) -> str:
    """Key lines without their BEGIN line: before an END line, or opening a log window."""
    if at_start:
        lines = text.split("\n")
        taken = 0
        while taken < len(lines) and _PEM_LEADING_LINE.fullmatch(lines[taken]):
            taken += 1
        if taken:
            text = "\n".join([MASK, *lines[taken:]])
    if "-----END" not in text:
        return text
    pieces: list[str] = []
    cursor = 0
    for end_line in _PEM_END.finditer(text):
        if text.endswith(MASK, 0, end_line.start()):
            continue  # masked whole, with its BEGIN line
        line_start = text.rfind("\n", 0, end_line.start()) + 1
        body_start = line_start
        while body_start > cursor:
            previous = text.rfind("\n", 0, body_start - 1) + 1
            if previous < cursor or not _PEM_BODY_LINE.fullmatch(text[previous : body_start - 1]):
                break
            body_start = previous
        if body_start < line_start:
            pieces.append(text[cursor:body_start])
            pieces.append(MASK + "\n")
            cursor = line_start
    pieces.append(text[cursor:])
    return "".join(pieces)
