"""A compiled policy snapshot: the validated policies of a directory, stored next to the files
so a cold start can skip parsing and validating YAML (like a ``.pyc`` next to its ``.py``).

Packaging (``chalice deploy``/``package``), ``eksgate policy compile`` and the local stack write
it; the Lambda reads it. It is trusted only for the exact bytes it was compiled from: its key is
a SHA-256 over this module's format number, the source of the code that validates and builds
policies (``chalicelib/policy/*.py``) and the masking families (a policy's defaults), and every
policy file's name and bytes. A cold start hashes the files (cheap) and uses the snapshot only
when the key matches and its body still has the digest recorded with it; anything else (no
snapshot, files edited since, a snapshot that does not decode) is a full load from the files,
which names each problem by file, line and field as always.

The format is JSON (plain values only; nothing in it is executed or names a type to build).
The body digest catches a snapshot edited or damaged after it was written; it is no signature:
whoever can write the deployment package can change the code that reads it too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.policy.loader import (
    PolicyFile,
    PolicySet,
    load_policy_files,
    read_policy_files,
)
from chalicelib.policy.model import ApprovalSettings, Policy, Rule, Subject
from chalicelib.policy.schema import PATTERN_NAMES

# Bump when the layout below changes (the code fingerprint catches most changes anyway).
FORMAT = 1
# A dot file: `ls policies/` shows the policies, as `ls` hides __pycache__'s contents.
SNAPSHOT_NAME = ".eksgate-snapshot.json"

_loads: Callable[[bytes], Any]
try:  # orjson decodes a large snapshot about three times faster; json reads the same bytes
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency of the Lambda and the CLI
    _loads = json.loads


class SnapshotUnusable(ValueError):
    """The snapshot cannot be used; the message says why (never any policy content)."""


class StaleSnapshot(SnapshotUnusable):
    """The snapshot was compiled from other files or by other code."""


@dataclass(frozen=True)
class PolicyLoad:
    """What a cold start loaded, and whether the snapshot served it.

    ``snapshot`` is ``used``, ``absent``, ``stale`` (the files or the code changed since it
    was compiled) or ``unusable`` (``detail`` says why): worth a log line, never an error.
    """

    policies: PolicySet
    snapshot: str
    detail: str = ""


def snapshot_path(directory: Path | str) -> Path:
    return Path(directory) / SNAPSHOT_NAME


@cache
def code_fingerprint() -> bytes:
    """The digest of what turns policy files into Policy values: this package's source and the
    masking families. A snapshot compiled by other code is stale, whatever its version says."""
    digest = hashlib.sha256(f"eksgate policy snapshot {FORMAT}\n".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        data = source.read_bytes()
        digest.update(f"{source.name}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update("\0".join(sorted(PATTERN_NAMES)).encode())
    return digest.digest()


def snapshot_key(files: Iterable[PolicyFile]) -> str:
    """The key a snapshot of exactly these files (names and bytes), by this code, carries."""
    digest = hashlib.sha256(code_fingerprint())
    for file in files:
        if file.data is None:
            raise SnapshotUnusable(f"{file.path.name} cannot be read")
        digest.update(f"{file.path.name}\0{len(file.data)}\0".encode())
        digest.update(file.data)
    return digest.hexdigest()


def encode_snapshot(files: list[PolicyFile], policies: Iterable[Policy]) -> bytes:
    """The snapshot's bytes: a header line (format, key, body digest), then the body line.

    Deterministic: the same files compile to the same bytes (a package's hash stays put).
    """
    body = json.dumps(
        _encode_body(policies),
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    header = {
        "format": FORMAT,
        "key": snapshot_key(files),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + body + b"\n"


def decode_snapshot(data: bytes, key: str, directory: Path) -> PolicySet:
    """The policies a snapshot holds, if it was compiled for ``key``; SnapshotUnusable if not.

    ``source`` is rebuilt from ``directory``, so it reads as a full load would write it.
    """
    head, newline, body = data.partition(b"\n")
    if not newline:
        raise SnapshotUnusable("it has no header line")
    try:
        header = json.loads(head)
    except ValueError:
        raise SnapshotUnusable("its header does not decode") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotUnusable(f"its format is not {FORMAT}")
    if header.get("key") != key:
        raise StaleSnapshot("the policy files or the code changed since it was compiled")
    if header.get("body_sha256") != hashlib.sha256(body.rstrip(b"\n")).hexdigest():
        raise SnapshotUnusable("its body does not match the digest in its header")
    try:
        return _decode_body(_loads(body), directory)
    except Exception as exc:  # any shape but ours: the files decide instead
        raise SnapshotUnusable(f"its body does not decode ({type(exc).__name__})") from None


def compile_snapshot(directory: Path | str) -> tuple[Path, int]:
    """Validate ``directory``'s policies and write their snapshot; PolicyError if any is wrong.

    Returns the snapshot's path and how many policies it holds. Written to a temporary file
    and renamed, so a reader sees the old snapshot or the new one, never half of one.
    """
    directory = Path(directory)
    files = read_policy_files(directory)
    policies = load_policy_files(files)  # from the very bytes the key is computed over
    target = snapshot_path(directory)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(encode_snapshot(files, policies))
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target, len(policies)


def load_with_snapshot(directory: Path | str) -> PolicyLoad:
    """The policies of ``directory`` for a cold start: from its snapshot when that was compiled
    from exactly these files by this code, otherwise a full load (PolicyError as always)."""
    directory = Path(directory)
    files = read_policy_files(directory)
    try:
        data = snapshot_path(directory).read_bytes()
    except FileNotFoundError:
        return PolicyLoad(load_policy_files(files), "absent")
    except OSError as exc:
        return PolicyLoad(load_policy_files(files), "unusable", f"cannot be read ({exc.strerror})")
    try:
        return PolicyLoad(decode_snapshot(data, snapshot_key(files), directory), "used")
    except StaleSnapshot as exc:
        return PolicyLoad(load_policy_files(files), "stale", str(exc))
    except SnapshotUnusable as exc:
        return PolicyLoad(load_policy_files(files), "unusable", str(exc))


# ---- plain values -------------------------------------------------------------------------
# Each distinct value (a string, a number, a tuple of strings ...) is written once, in a value
# table; a Rule, Subject, ApprovalSettings or Policy is a row of indexes into it, in the order
# of the dataclass's fields (written too, and checked). Reading converts each distinct list to
# a tuple once, and builds objects by position: the cheapest cold start JSON allows. Every
# field is written, so a field added to the model is carried without a change here (and
# changes the code fingerprint, so older snapshots are stale).

_SHAPES = {"policy": Policy, "rule": Rule, "approval": ApprovalSettings}


class _Values:
    """The value table being written: each distinct value once."""

    def __init__(self) -> None:
        self.table: list[Any] = []
        self._index: dict[str, int] = {}

    def add(self, value: Any) -> int:
        key = json.dumps(value)  # tells True from 1, which a dict key would not
        if key not in self._index:
            self._index[key] = len(self.table)
            self.table.append(value)
        return self._index[key]


def _encode_body(policies: Iterable[Policy]) -> dict[str, Any]:
    values = _Values()
    approvals: list[list[int]] = []
    subjects: list[list[Any]] = []

    def row(value: Any, special: dict[str, Any]) -> list[Any]:
        return [
            special[f.name] if f.name in special else values.add(getattr(value, f.name))
            for f in fields(value)
        ]

    def rule_row(rule: Rule) -> list[Any]:
        approval = -1
        if rule.approval is not None:
            approval = len(approvals)
            approvals.append(row(rule.approval, {}))
        return row(rule, {"approval": approval})

    def subject_index(subject: Subject) -> int:
        claims = {name: values.add(patterns) for name, patterns in subject.claims.items()}
        subjects.append([values.add(subject.issuer), claims])
        return len(subjects) - 1

    rows = [
        row(
            policy,
            {
                "subjects": [subject_index(s) for s in policy.subjects],
                "rules": [rule_row(r) for r in policy.rules],
                "source": values.add(Path(policy.source).name),
            },
        )
        for policy in policies
    ]
    return {
        "fields": {name: [f.name for f in fields(shape)] for name, shape in _SHAPES.items()},
        "values": values.table,
        "approvals": approvals,
        "subjects": subjects,
        "policies": rows,
    }


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _decode_body(body: dict[str, Any], directory: Path) -> PolicySet:
    for name, shape in _SHAPES.items():
        if body["fields"][name] != [f.name for f in fields(shape)]:
            raise ValueError(f"{name} fields differ")
    values = [_tuples(v) for v in body["values"]]
    approvals = [ApprovalSettings(*[values[i] for i in row]) for row in body["approvals"]]
    subjects = [
        Subject(values[issuer], {name: values[i] for name, i in claims.items()})
        for issuer, claims in body["subjects"]
    ]
    policy_fields = body["fields"]["policy"]
    rule_fields = body["fields"]["rule"]
    at_approval = rule_fields.index("approval")
    at_subjects = policy_fields.index("subjects")
    at_rules = policy_fields.index("rules")
    at_source = policy_fields.index("source")
    policies = []
    for row in body["policies"]:
        # Positional fields in the model's order; their types were checked when written.
        args: list[Any] = [
            None if i in (at_subjects, at_rules) else values[v] for i, v in enumerate(row)
        ]
        args[at_subjects] = tuple(subjects[i] for i in row[at_subjects])
        rules = []
        for rule_row in row[at_rules]:
            rule_args = [values[v] for v in rule_row]
            approval = rule_row[at_approval]
            rule_args[at_approval] = approvals[approval] if approval >= 0 else None
            rules.append(Rule(*rule_args))
        args[at_rules] = tuple(rules)
        args[at_source] = str(directory / _file_name(args[at_source]))
        policies.append(Policy(*args))
    return PolicySet(policies)


def _file_name(name: str) -> str:
    """A bare file name: a snapshot never points a policy's source outside its directory."""
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise ValueError("a policy source is not a file name")
    return name
