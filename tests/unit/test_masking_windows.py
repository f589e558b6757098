"""Large texts are masked in windows around their triggers. An all-ASCII text takes a quicker
route through those windows (the triggers found once, the usual windows matched without a
second search); both routes must mask exactly as the whole text masked at once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.masking import DEFAULT_SETTINGS
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
