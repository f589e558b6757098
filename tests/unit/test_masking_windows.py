"""Large texts are masked in windows around their triggers. An all-ASCII text takes a quicker
route through those windows (the triggers found once, the usual windows matched without a
second search); both routes must mask exactly as the whole text masked at once."""

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
def test_the_plain_route_masks_as_the_whole_text(lines, at_start):
    """Logs without marks or tools take the plain route; it masks as the whole text does."""
    text = "\n".join(lines) + "\n"
    scanner = scanner_for(DEFAULT_SETTINGS.families)
    raw = text.encode()
    lowered = raw.lower()
    hits = scanner._text_automaton.find_matches_as_indexes(lowered, overlapping=True)
    plain = scanner._mask_plain_lines(text, raw, lowered, hits, at_start)
    assert plain is not None or not any(index < scanner._trigger_count for index, _, _ in hits)
    assert scanner._mask_in_windows(text, at_start) == scanner._mask_window(text, at_start)
    if plain is not None:
        assert plain == scanner._mask_window(text, at_start)


def test_a_token_on_the_line_after_its_keyword_is_masked_in_a_large_text_too():
    """A wrapped header (``Bearer`` ending a line, the token opening the next, a line with no
    trigger of its own) was masked in a small text and left in clear in a large one, whose
    windows ended at the keyword's line."""
    padding = "plain line with nothing in it\n" * 300
    wrapped = "sent with Bearer\n\nAbCdEf0123456789xyzTOKENVALUE\n"
    assert "TOKENVALUE" not in mask_text(wrapped)
    assert "TOKENVALUE" not in mask_text(padding + wrapped + padding)
