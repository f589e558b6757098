"""Large texts are masked in windows around their triggers. An all-ASCII text takes a quicker
route through those windows (the triggers found once, the usual windows matched without a
second search), and a usual log (no mark, no tool) is masked in place with no windows at all;
every route must mask exactly as the whole text masked at once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.masking import DEFAULT_SETTINGS, mask_text
from chalicelib.masking.scanner import scanner_for

LINES = st.sampled_from(
    [
        "2026-11-28T10:00:01Z INFO request id=7 path=/api/cart status=200",
        "2026-11-28T10:00:02Z INFO token refreshed for client web-3",
        "2026-11-28T10:00:03Z ERROR db connect failed password=Pl4ntValue1 host=db",
        "2026-11-28T10:00:04Z INFO using key AKIAIOSFODNN7EXAMPLE for s3",
        "mysql -u root -pPl4ntValue2 shop",
        "sshpass -p Pl4ntValue3 ssh host",
        "curl -u admin:Pl4ntValue4 https://x",
        "redis-cli -a Pl4ntValue5 ping",
        "<password>Pl4ntValue6</password>",
        "<password>",
        "Pl4ntValue7",
        "</password>",
        "  client_secret: |",
        "    Pl4ntValue8",
        "a -> b | c > d",
        "Authorization: Bearer Pl4ntValue9abcdefghij",
        "GET https://user:Pl4ntValueA@host/",
        "export DB_PASSWORD='Pl4ntValueB'",
        "--password Pl4ntValueC --verbose",
        "-----BEGIN PRIVATE KEY-----",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
        "-----END PRIVATE KEY-----",
        "plain line with nothing in it at all, just words " * 2,
        "",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(LINES, min_size=60, max_size=300), st.booleans())
def test_the_ascii_route_masks_as_the_general_route_and_the_whole_text(lines, at_start):
    text = "\n".join(lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    assert text.isascii()
    ascii_route = scanner._mask_in_windows(text, at_start)
    assert ascii_route == scanner._mask_window(text, at_start)


@settings(max_examples=60, deadline=None)
@given(st.lists(LINES, min_size=60, max_size=300), st.booleans())
def test_the_general_route_masks_as_the_whole_text(lines, at_start):
    text = "\n".join(line.replace("INFO", "INF\u00d8") for line in lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    assert not text.isascii()
    assert scanner._mask_in_windows(text, at_start) == scanner._mask_window(text, at_start)


PLAIN_LINES = st.sampled_from(
    [
        "2026-11-28T10:00:01Z INFO request id=7 path=/api/cart status=200",
        "2026-11-28T10:00:02Z INFO token refreshed for client web-3",
        "2026-11-28T10:00:03Z ERROR db connect failed password=Pl4ntValue1 host=db",
        "2026-11-28T10:00:04Z INFO using key AKIAIOSFODNN7EXAMPLE for s3",
        "Authorization: Bearer Pl4ntValue9abcdefghij",
        "GET https://user:Pl4ntValueA@host/",
        "export DB_PASSWORD='Pl4ntValueB'",
        'config {"password": "Pl4ntValueC", "user": "app"}',
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
        "plain line with nothing in it at all, just words",
        # A line ending in a keyword whose value a rule looks for past the line break.
        "2026-11-28T10:00:05Z DEBUG sent with Bearer",
        "",
    ]
)


def _in_place(scanner, text: str, at_start: bool):
    raw = text.encode()
    hits, marks = scanner._hits_and_marks(raw.lower())
    return scanner._mask_in_place(text, raw, hits, marks, at_start)


@settings(max_examples=150, deadline=None)
@given(st.lists(PLAIN_LINES, min_size=60, max_size=300), st.booleans())
def test_a_log_without_marks_is_masked_in_place_as_the_whole_text(lines, at_start):
    """Logs without a mark or a tool anywhere are masked in place, without windows."""
    text = "\n".join(lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    in_place = _in_place(scanner, text, at_start)
    # PLAIN_LINES name no tool, hold no mark, and none is a key line that could open a text.
    assert in_place is not None
    assert in_place == scanner._mask_window(text, at_start)
    assert scanner._mask_in_windows(text, at_start) == in_place


# Lines with marks, a tool, or a mark beside a trigger (where a leading rule could match, or
# not: "--password V" is one only a leading rule masks).
MARKED_LINES = st.sampled_from(
    [
        "a -> b | c > d",
        "see <http://example.com/> for more",
        "run with --verbose --dry-run",
        "mysql -u root shop",
        "step a -> b failed password=Pl4ntValueD",
        "--password Pl4ntValueE --verbose",
        "<token>Pl4ntValueF</token>",
        "  client_secret: |",
        "    Pl4ntValueG",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(PLAIN_LINES, PLAIN_LINES, MARKED_LINES), min_size=60, max_size=300),
    st.booleans(),
)
def test_a_log_with_marks_away_from_its_triggers_is_masked_in_place_as_the_whole_text(
    lines, at_start
):
    """Marks and tools on lines without a trigger leave a log on the in-place route; a mark
    on a line with a trigger (or a tool anywhere) sends it to the windows. Either way it is
    masked as the whole text is."""
    text = "\n".join(lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    in_place = _in_place(scanner, text, at_start)
    whole = scanner._mask_window(text, at_start)
    assert scanner._mask_in_windows(text, at_start) == whole
    if in_place is not None:
        assert in_place == whole
    beside = {"step a -> b failed password=Pl4ntValueD", "--password Pl4ntValueE --verbose"}
    beside |= {"<token>Pl4ntValueF</token>", "  client_secret: |", "mysql -u root shop"}
    beside |= {"see <http://example.com/> for more"}  # "://" is a trigger
    if not beside & set(lines):
        assert in_place is not None


def test_each_route_is_taken_by_the_logs_it_is_for():
    """The routes above are not vacuous: a log with a mark away from its triggers is masked
    in place, one with a mark on a trigger's line by windows."""
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    padding = "2026-11-28T10:00:01Z INFO request id=7 path=/api/cart status=200\n" * 100
    credential = "db connect failed password=Pl4ntValue1 host=db\n"
    flag = "--password Pl4ntValue2 --verbose\n"
    usual = padding + credential + padding
    marked_away = padding + credential + "a -> b\n" + padding + "x | y\n"
    marked_beside = padding + "a -> b " + credential + padding
    for text in (usual, marked_away, marked_beside, padding + flag + padding):
        masked = mask_text(text)
        assert "Pl4ntValue1" not in masked and "Pl4ntValue2" not in masked
    assert _in_place(scanner, usual, True) is not None
    assert _in_place(scanner, marked_away, True) is not None
    assert _in_place(scanner, marked_beside, True) is None
    assert _in_place(scanner, padding + flag + padding, True) is None
    # The last line, with no newline after it, is a line too.
    assert _in_place(scanner, padding + "a -> b password=Pl4ntValue3", True) is None


def test_a_token_on_the_line_after_its_keyword_is_masked_in_a_large_text_too():
    """A wrapped header (``Bearer`` ending a line, the token opening the next, a line with no
    trigger of its own) was masked in a small text and left in clear in a large one, whose
    windows ended at the keyword's line."""
    padding = "plain line with nothing in it\n" * 300
    wrapped = "sent with Bearer\n\nAbCdEf0123456789xyzTOKENVALUE\n"
    assert "TOKENVALUE" not in mask_text(wrapped)
    assert "TOKENVALUE" not in mask_text(padding + wrapped + padding)


# Pieces a leading rule is made of (keywords, marks, YAML and XML punctuation, line breaks,
# indentation) and a little else, so generated texts come close to every leading rule.
PIECES = st.sampled_from(
    [
        "password", "token", "client_secret", "db-pass", "auth", "curl", "mysql", "-p",
        "--", "-", "<", ">", "</", "|", "|-", ">-", ":", "=", " ", "  ", "\t", "\n", "\n  ",
        '"', "'", "V4lue", "x", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=60), st.booleans())
def test_the_in_place_route_never_disagrees_with_the_whole_text(pieces, at_start):
    """Whenever the in-place route takes a text, it masks as the whole text masked at once:
    marks away from a trigger's line never make a leading rule match."""
    text = "".join(pieces)
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    in_place = _in_place(scanner, text, at_start)
    if in_place is not None:
        assert in_place == scanner._mask_window(text, at_start)
