"""The audit routes' logic: parameter validation and answer shapes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chalicelib.audit.records import SessionSummary
from chalicelib.errors import BadRequest, NotFound
from chalicelib.routes.sessions import list_sessions_response, session_response
from tests.audit.helpers import request_event, sealed_chain

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"


class FakeStore:
    """Records what it was asked; answers from canned records."""

    def __init__(self, records=()):
        self._records = list(records)
        self.asked: dict[str, Any] = {}

    def append(self, fields):
        raise AssertionError("the API never appends")

    def records(self, session_id):
        return [r for r in self._records if r.session_id == session_id]

    def sessions(self, **filters):
        self.asked = filters
        return [
            SessionSummary(
                SID,
                "alice",
                "prod",
                "2026-11-22T13:40:29.123Z",
                "2026-11-22T13:41:00.000Z",
                3,
                {"allow": 2, "deny": 1},
                0,
            )
        ]


def test_listing_passes_the_filters_and_returns_summaries():
    store = FakeStore()
    answer = list_sessions_response(
        store,
        {
            "identity": "alice",
            "cluster": "prod",
            "since": "2026-11-22T00:00:00Z",
            "decision": "deny",
            "limit": "20",
        },
    )
    assert store.asked == {
        "subject": "alice",
        "cluster": "prod",
        "since": "2026-11-22T00:00:00Z",
        "until": None,
        "decision": "deny",
        "limit": 20,
    }
    assert answer == {
        "sessions": [
            {
                "session_id": SID,
                "subject": "alice",
                "cluster": "prod",
                "first_time": "2026-11-22T13:40:29.123Z",
                "last_time": "2026-11-22T13:41:00.000Z",
                "records": 3,
                "decisions": {"allow": 2, "deny": 1},
                "approvals": 0,
            }
        ]
    }


def test_listing_defaults_to_100_sessions():
    store = FakeStore()
    list_sessions_response(store, {"cluster": "prod"})
    assert store.asked["limit"] == 100 and store.asked["subject"] is None


@pytest.mark.parametrize(
    "params, message",
    [
        (None, "give identity or cluster"),
        ({"identity": ""}, "give identity or cluster"),
        ({"identity": "alice", "user": "x", "zone": "y"}, "unknown query parameter(s): user, zone"),
        ({"cluster": "prod", "decision": "maybe"}, "decision must be one of allow, approve, deny"),
        ({"cluster": "prod", "limit": "501"}, "limit must be a whole number from 1 to 500"),
        ({"cluster": "prod", "limit": "0"}, "limit must be a whole number"),
        ({"cluster": "prod", "limit": "-3"}, "limit must be a whole number"),
    ],
)
def test_listing_refuses_parameters_it_cannot_use(params, message):
    with pytest.raises(BadRequest) as refused:
        list_sessions_response(FakeStore(), params)
    assert message in refused.value.message


def test_a_session_comes_with_its_records_and_chain_check():
    records = sealed_chain(SID, 3)
    answer = session_response(FakeStore(records), SID)
    assert answer["session_id"] == SID
    assert [r["seq"] for r in answer["records"]] == [0, 1, 2]
    assert answer["records"][0] == records[0].to_json_dict()
    assert answer["chain"] == {"ok": True, "checked": 3, "problem": None}


def test_a_tampered_session_reports_the_broken_link():
    records = sealed_chain(SID, 3)
    records[1] = dataclasses.replace(records[1], source_ip="198.51.100.1")
    chain = session_response(FakeStore(records), SID)["chain"]
    assert chain == {"ok": False, "checked": 1, "problem": "record 1 was altered (hash mismatch)"}


def test_an_unknown_session_is_not_found_and_a_strange_id_is_refused():
    with pytest.raises(NotFound, match="no audit records for session"):
        session_response(FakeStore(), SID)
    with pytest.raises(BadRequest):
        session_response(FakeStore(), "../../etc/passwd")


def test_the_api_works_against_the_dynamodb_store(store):
    for effect in ("allow", "deny"):
        store.append(request_event(SID, effect=effect, subject="alice"))
    listed = list_sessions_response(store, {"identity": "alice"})["sessions"]
    assert [(s["session_id"], s["decisions"]) for s in listed] == [(SID, {"allow": 1, "deny": 1})]
    assert session_response(store, SID)["chain"]["ok"] is True
