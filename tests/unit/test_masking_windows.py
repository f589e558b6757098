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


@settings(max_examples=150, deadline=None)
@given(st.lists(PLAIN_LINES, min_size=60, max_size=300), st.booleans())
def test_the_unmarked_route_masks_as_the_whole_text(lines, at_start):
    """Logs without a mark or a tool anywhere are masked in place, without windows."""
    text = "\n".join(lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    hits, marks = scanner._hits_and_marks(text.encode().lower())
    assert not marks
    unmarked = scanner._mask_unmarked(text, hits, at_start)
    # PLAIN_LINES name no tool, and none is a key line that could open a text.
    assert unmarked is not None
    assert scanner._mask_in_windows(text, at_start) == scanner._mask_window(text, at_start)
    if unmarked is not None:
        assert unmarked == scanner._mask_window(text, at_start)


# Lines with marks (and, for two, a tool) but no trigger: beside the plain lines they send a
# text to the plain route, or (next to a line holding a trigger) further.
MARKED_LINES = st.sampled_from(
    [
        "a -> b | c > d",
        "see <http://example.com/> for more",
        "run with --verbose --dry-run",
        "mysql -u root shop",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(PLAIN_LINES, PLAIN_LINES, MARKED_LINES), min_size=60, max_size=300),
    st.booleans(),
)
def test_the_plain_route_masks_as_the_whole_text(lines, at_start):
    """Logs whose marks and tools lie away from the lines holding triggers take the plain
    route; it masks as the whole text does."""
    text = "\n".join(lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    raw = text.encode()
    hits, marks = scanner._hits_and_marks(raw.lower())
    plain = scanner._mask_plain_lines(text, raw, hits, marks, at_start)
    assert scanner._mask_in_windows(text, at_start) == scanner._mask_window(text, at_start)
    if plain is not None:
        assert plain == scanner._mask_window(text, at_start)


def test_each_route_is_taken_by_the_logs_it_is_for():
    """The routes above are not vacuous: a usual log is masked in place, one with a mark
    away from its triggers by plain lines, one with a mark beside a trigger by windows."""
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    padding = "2026-11-28T10:00:01Z INFO request id=7 path=/api/cart status=200\n" * 100
    credential = "db connect failed password=Pl4ntValue1 host=db\n"
    usual = padding + credential + padding
    marked_away = padding + credential + padding + "a -> b\n" + padding
    marked_beside = padding + "a -> b " + credential + padding
    for text in (usual, marked_away, marked_beside):
        assert "Pl4ntValue1" not in mask_text(text)
    hits, marks = scanner._hits_and_marks(usual.encode().lower())
    assert not marks and scanner._mask_unmarked(usual, hits, True) is not None
    hits, marks = scanner._hits_and_marks(marked_away.encode().lower())
    assert marks
    assert scanner._mask_plain_lines(marked_away, marked_away.encode(), hits, marks, True)
    hits, marks = scanner._hits_and_marks(marked_beside.encode().lower())
    raw = marked_beside.encode()
    assert scanner._mask_plain_lines(marked_beside, raw, hits, marks, True) is None


def test_a_token_on_the_line_after_its_keyword_is_masked_in_a_large_text_too():
    """A wrapped header (``Bearer`` ending a line, the token opening the next, a line with no
    trigger of its own) was masked in a small text and left in clear in a large one, whose
    windows ended at the keyword's line."""
    padding = "plain line with nothing in it\n" * 300
    wrapped = "sent with Bearer\n\nAbCdEf0123456789xyzTOKENVALUE\n"
    assert "TOKENVALUE" not in mask_text(wrapped)
    assert "TOKENVALUE" not in mask_text(padding + wrapped + padding)
