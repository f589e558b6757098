"""``eksgate sessions list|show|replay|verify|export``: read the audit trail through the API.

``verify`` recomputes the hash chain here, from the records the API returned; it never
relies on the server's own check. It also checks the records against the session's anchors
(heads kept in an Object Lock bucket, returned by the same API), so a deleted tail or a
rewritten suffix is found without flags; records newer than the newest anchor are reported as
not yet anchored. ``--expect-count`` and ``--expect-last-hash`` add anchors kept elsewhere.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Callable
from typing import Any

from chalicelib.audit.anchor_check import AnchorReport, check_anchors
from chalicelib.audit.anchors import Anchor
from chalicelib.audit.chain import ChainReport, verify_chain
from chalicelib.audit.k8s_events import events_to_jsonl, k8s_audit_events
from chalicelib.audit.k8s_policy import METADATA_FOR_ALL, AuditPolicyError, load_policy
from chalicelib.audit.records import SessionRecord, SessionSummary, record_from_json
from chalicelib.audit.replay import kubectl_equivalent, render_sessions, render_timeline
from eksgate.api_client import CliError, call_api
from eksgate.token_cmd import read_oidc_token

# Usage mistakes exit 2 (as argparse does); anything that went wrong at run time exits 1.
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(CliError):
    """The command line cannot work as given."""


def cmd_sessions_list(args: Any) -> int:
    """List sessions of ``--identity`` or on ``--cluster`` (most recently active first)."""

    def run() -> int:
        if not (args.identity or args.cluster):
            raise UsageError("give --identity or --cluster (or both)")
        params = {
            name: value
            for name in ("identity", "cluster", "since", "until", "decision")
            if (value := getattr(args, name, None))
        }
        answer = _get(args, "/v1/sessions", params)
        if args.json:
            _print_json(answer)
            return 0
        try:
            summaries = [SessionSummary.from_json_dict(s) for s in answer["sessions"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(
                f"the gateway's session list is not in the expected form: {exc}"
            ) from exc
        _print_lines(render_sessions(summaries))
        return 0

    return _guarded(run)


def cmd_sessions_show(args: Any) -> int:
    """Show one session: who, from where, each record with its decision, and the chain."""

    def run() -> int:
        answer, records = _session(args)
        report = verify_chain(args.session_id, records)
        if args.json:
            _print_json({**answer, "chain": _report_json(report, records)})
            return 0
        _print_lines(
            _header(records) + render_timeline(records, show_bodies=args.bodies, details=True)
        )
        _print_lines([_chain_line(args.session_id, report, records)])
        return 0

    return _guarded(run)


def cmd_sessions_replay(args: Any) -> int:
    """The session as the kubectl commands that made its requests, with events in between."""

    def run() -> int:
        _, records = _session(args)
        if args.json:
            for record in records:
                command = (
                    kubectl_equivalent(record.request)
                    if record.request and record.kind in ("request", "refusal")
                    else None
                )
                _print_json(
                    {
                        "seq": record.seq,
                        "time": record.time,
                        "kind": record.kind,
                        "kubectl": command,
                    },
                    compact=True,
                )
        else:
            _print_lines(render_timeline(records, show_bodies=args.bodies))
        report = verify_chain(args.session_id, records)
        if not report.ok and report.first_problem:
            print(
                f"eksgate: warning: the chain is broken: {report.first_problem.message}",
                file=sys.stderr,
            )
        return 0

    return _guarded(run)


def cmd_sessions_verify(args: Any) -> int:
    """Recompute the session's hash chain here and check it against the session's anchors;
    exit 0 if both hold, 1 at the first broken link or disagreeing anchor."""

    def run() -> int:
        answer, records = _session(args)
        anchors = _anchors(answer, args.session_id)
        report = verify_chain(
            args.session_id,
            records,
            expected_count=getattr(args, "expect_count", None),
            expected_last_hash=getattr(args, "expect_last_hash", None),
        )
        anchored = None if anchors is None else check_anchors(args.session_id, records, anchors)
        ok = report.ok and (anchored is None or anchored.ok)
        if args.json:
            _print_json(
                {
                    "session_id": args.session_id,
                    **_report_json(report, records),
                    "ok": ok,
                    "anchors": _anchor_json(anchored),
                }
            )
        else:
            _print_lines([_chain_line(args.session_id, report, records)])
            _print_lines(_anchor_lines(args.session_id, anchored, anchors))
            _print_lines(_checked_line(args, records, anchors))
            if ok and records:
                _print_lines([f"last hash {records[-1].hash}"])
        return 0 if ok else EXIT_FAILURE

    return _guarded(run)


def cmd_sessions_export(args: Any) -> int:
    """Sessions as JSON lines: eksgate's records, or Kubernetes audit events (``k8s-audit``)
    at the levels an audit ``Policy`` file chooses (Metadata for all without one).

    The sessions are the ids given, or those ``--identity``/``--cluster`` list in range.
    A session whose chain does not verify here is refused: an export vouches for what it holds.
    """

    def run() -> int:
        policy = METADATA_FOR_ALL
        if args.policy:
            if args.format != "k8s-audit":
                raise UsageError("--policy applies to --format k8s-audit only")
            try:
                with open(args.policy, encoding="utf-8") as handle:
                    policy = load_policy(handle.read(), args.policy)
            except OSError as exc:
                raise UsageError(
                    f"cannot read the policy file: {exc.strerror}: {args.policy}"
                ) from exc
            except AuditPolicyError as exc:
                raise UsageError(str(exc)) from exc
        for session_id in _export_session_ids(args):
            args.session_id = session_id
            _, records = _session(args)
            report = verify_chain(session_id, records)
            if not report.ok:
                problem = report.first_problem
                raise CliError(
                    f"session {session_id}: chain BROKEN"
                    + (f" at record {problem.seq}: {problem.message}" if problem else "")
                    + "; not exported"
                )
            if args.format == "k8s-audit":
                sys.stdout.write(events_to_jsonl(k8s_audit_events(records, policy)))
            else:
                for record in records:
                    _print_json(record.to_json_dict(), compact=True)
        return 0

    return _guarded(run)


def _export_session_ids(args: Any) -> list[str]:
    if args.session_ids:
        return list(args.session_ids)
    if not (args.identity or args.cluster):
        raise UsageError("give session ids, or --identity or --cluster to export their sessions")
    params = {
        name: value
        for name in ("identity", "cluster", "since", "until")
        if (value := getattr(args, name, None))
    }
    answer = _get(args, "/v1/sessions", params)
    try:
        return [str(summary["session_id"]) for summary in answer["sessions"]]
    except (KeyError, TypeError) as exc:
        raise CliError(f"the gateway's session list is not in the expected form: {exc!r}") from exc


def _anchors(answer: dict[str, Any], session_id: str) -> list[Anchor] | None:
    """The anchors the gateway returned; None if it keeps none (an old or unanchored stage)."""
    raw = answer.get("anchors")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise CliError("the gateway's anchors are not a list")
    anchors = []
    for item in raw:
        try:
            seq, digest = item["seq"], item["hash"]
            if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(digest, str):
                raise TypeError("seq must be a whole number and hash a string")
            anchors.append(Anchor(session_id, seq, digest, str(item.get("anchored_at") or "")))
        except (KeyError, TypeError) as exc:
            raise CliError(f"an anchor of session {session_id} is malformed: {exc}") from exc
    return anchors


def _checked_line(
    args: Any, records: list[SessionRecord], anchors: list[Anchor] | None
) -> list[str]:
    what = [f"the hash chain of {len(records)} records (recomputed here)"]
    if anchors is not None:
        what.append(f"{len(anchors)} anchors from the gateway's Object Lock bucket")
    if getattr(args, "expect_count", None) is not None:
        what.append(f"the expected count {args.expect_count}")
    if getattr(args, "expect_last_hash", None):
        what.append("the expected last hash")
    return ["checked: " + ", ".join(what)]


def _anchor_lines(
    session_id: str, report: AnchorReport | None, anchors: list[Anchor] | None
) -> list[str]:
    if report is None:
        return [
            "anchors: this gateway keeps none (EKSGATE_ANCHOR_BUCKET is unset), so a deleted "
            "tail or a rewritten suffix would pass; give --expect-last-hash to check one"
        ]
    if not report.ok:
        problem = report.problem
        return [f"session {session_id}: TAMPERED: {problem.message if problem else 'broken'}"]
    lines = []
    if report.anchored_through >= 0:
        when = next((a.anchored_at for a in anchors or [] if a.seq == report.anchored_through), "")
        at = f" (anchored {when})" if when else ""
        lines.append(
            f"anchors: records 0 to {report.anchored_through} match the anchor of record "
            f"{report.anchored_through}{at}; {report.anchors} anchors, none disagrees"
        )
    if report.unanchored:
        first, last = report.unanchored[0], report.unanchored[-1]
        span = f"record {first} is" if first == last else f"records {first} to {last} are"
        lines.append(
            f"not yet anchored: {span} newer than the newest anchor, so nothing outside the "
            "table vouches for them yet (anchors follow within seconds; verify again)"
        )
    else:
        lines.append("every record is anchored")
    return lines


def _anchor_json(report: AnchorReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    problem = report.problem
    return {
        "ok": report.ok,
        "anchors": report.anchors,
        "anchored_through": report.anchored_through,
        "unanchored": list(report.unanchored),
        "problem": (
            {"seq": problem.seq, "code": problem.code, "message": problem.message}
            if problem
            else None
        ),
    }


def _session(args: Any) -> tuple[dict[str, Any], list[SessionRecord]]:
    if not args.session_id:
        raise UsageError("give a session id")
    answer = _get(args, "/v1/sessions/" + urllib.parse.quote(args.session_id, safe=""), None)
    raw = answer.get("records") if isinstance(answer, dict) else None
    if not isinstance(raw, list):
        raise CliError("the gateway's answer has no list of records")
    records = []
    for position, item in enumerate(raw):
        try:
            records.append(record_from_json(item))
        except ValueError as exc:
            raise CliError(
                f"record at position {position} of session {args.session_id} is "
                f"malformed, so the chain cannot be intact: {exc}"
            ) from exc
    return answer, records


def _get(args: Any, path: str, params: dict[str, str] | None) -> dict[str, Any]:
    token = read_oidc_token(args.oidc_token_file, args.oidc_token_env)
    return call_api(args.gateway, "GET", path, token=token, ca_file=args.ca_file, params=params)


def _header(records: list[SessionRecord]) -> list[str]:
    if not records:
        return []
    first, last = records[0], records[-1]
    identity = first.identity or {}
    who = identity.get("email") or first.subject or "(unknown caller)"
    issuer = f" (issuer {identity['issuer']})" if identity.get("issuer") else ""
    lines = [
        f"session {first.session_id}: {who}{issuer} on cluster {first.cluster or '-'}",
        f"from {first.time} to {last.time}, {len(records)} records",
    ]
    matched = identity.get("matched_claims")
    if matched:
        lines.append("matched claims: " + ", ".join(f"{k}={v}" for k, v in matched.items()))
    return [_safe(line) for line in lines] + [""]


def _chain_line(session_id: str, report: ChainReport, records: list[SessionRecord]) -> str:
    if report.ok:
        return f"session {session_id}: {len(records)} records, chain intact"
    problem = report.first_problem
    message = problem.message if problem else "broken"
    return (
        f"session {session_id}: chain BROKEN at record {problem.seq if problem else '?'}: "
        f"{message} ({report.checked} records verified before it)"
    )


def _report_json(report: ChainReport, records: list[SessionRecord]) -> dict[str, Any]:
    problem = report.first_problem
    return {
        "ok": report.ok,
        "checked": report.checked,
        "verified_by": "client",
        "last_hash": records[-1].hash if records and report.ok else None,
        "problem": (
            {"seq": problem.seq, "code": problem.code, "message": problem.message}
            if problem
            else None
        ),
    }


def _safe(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line)


def _print_json(value: Any, compact: bool = False) -> None:
    if compact:
        print(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    else:
        print(json.dumps(value, indent=2, ensure_ascii=False))


def _guarded(run: Callable[[], int]) -> int:
    try:
        return run()
    except UsageError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_FAILURE
