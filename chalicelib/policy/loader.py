"""Load ``policies/*.yaml``: parse with line numbers, validate, build Policy values.

Every problem is reported as ``file:line: field: message`` so a person can go straight to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chalicelib.policy.commands import pattern_problem
from chalicelib.policy.compiled import PolicySet
from chalicelib.policy.conformance import Check, UnsupportedSchema, compile_schema
from chalicelib.policy.durations import parse_duration
from chalicelib.policy.model import ApprovalSettings, Policy, Rule, Subject
from chalicelib.policy.schema import PATTERN_NAMES, POLICY_SCHEMA

MAX_SESSION_CEILING = 900  # an EKS token lives 15 minutes; no session outlives one
MAX_APPROVAL_SECONDS = 24 * 3600

Path_ = tuple[Any, ...]
_STR_TAG = "tag:yaml.org,2002:str"
_UNREADABLE = object()  # a scalar the YAML constructor refused (the problem is recorded)
_RESOLVED_LIMIT = 4096


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (about twenty times faster than PyYAML's pure-Python one; its nodes carry
    the same line marks), with each scalar's tag resolution remembered.

    PyYAML resolves every scalar's tag in Python, trying its implicit regexes (int, bool,
    timestamp ...) in turn: a third of composing a policy file. Policies repeat the same words
    (verbs, effects, groups), and a tag depends only on the text and how it was written (the
    safe loader has no path resolvers), so remembering it changes no answer.
    """

    _resolved: dict[tuple[Any, Any, Any], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        key = (kind, value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            if len(self._resolved) >= _RESOLVED_LIMIT:
                self._resolved.clear()
            tag = self._resolved[key] = super().resolve(kind, value, implicit)
        return tag


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class PolicyError(Exception):
    """One or more problems in policy files; ``str()`` lists each as file:line: field: message."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def field_name(path: Path_) -> str:
    """``("rules", 1, "verbs", 0)`` -> ``rules[1].verbs[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _LineTracker:
    """Turns a composed YAML node tree into plain values, remembering each path's line.

    Paths start with the document's index in the file; fields are named without it.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.problems: list[Problem] = []
        self.unreadable = 0  # scalars the constructor refused: their documents are not judged
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node, path)
                if key is _UNREADABLE:
                    continue
                if not isinstance(key, str):
                    self.problems.append(
                        Problem(
                            self.file,
                            key_node.start_mark.line + 1,
                            field_name(path[1:]),
                            f"key {key!r} must be a string",
                        )
                    )
                    continue
                if key in result:
                    self.problems.append(
                        Problem(
                            self.file,
                            key_node.start_mark.line + 1,
                            field_name(path[1:] + (key,)),
                            "duplicate key",
                        )
                    )
                    continue
                result[key] = self.build(value_node, path + (key,))
                self.lines[path + (key,)] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        # A plain string is its text (what SafeConstructor returns for it); other tags (int,
        # bool, null, timestamp ...) go through the constructor.
        if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
            return node.value
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # `2020-13-45` (a timestamp that is no date), bad `!!binary`, unknown tags: a
            # problem at its line, never a stack trace.
            reason = getattr(exc, "problem", None) or str(exc)
            self.problems.append(
                Problem(
                    self.file,
                    node.start_mark.line + 1,
                    field_name(path[1:]),
                    f"not a value policies can hold: {reason}",
                )
            )
            self.unreadable += 1
            return _UNREADABLE

    def line(self, path: Path_) -> int:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 0)


def _compiled_schema() -> Check | None:
    try:
        return compile_schema(POLICY_SCHEMA)
    except UnsupportedSchema:
        return None  # jsonschema judges every document; slower, never weaker


_CONFORMS = _compiled_schema()


def _schema_problems(document: Any, tracker: _LineTracker, prefix: Path_) -> list[Problem]:
    if _CONFORMS is not None and _CONFORMS(document):
        return []
    # Imported only to explain a failing document: it costs a cold start about 0.1 s.
    import jsonschema

    validator = jsonschema.Draft202012Validator(POLICY_SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        path = tuple(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - allowed):
                problems.append(
                    Problem(
                        tracker.file,
                        tracker.line(prefix + path + (extra,)),
                        field_name(path + (extra,)),
                        f"unknown field; expected one of: {', '.join(sorted(allowed))}",
                    )
                )
            continue
        if error.validator == "enum":
            message = (
                f"{error.instance!r} is not one of: {', '.join(map(str, error.validator_value))}"
            )
            if path and path[-2:-1] == ("verbs",):
                message = f"unknown verb {error.instance!r}; expected one of: " + ", ".join(
                    map(str, error.validator_value)
                )
        elif error.validator == "pattern" and "duration" in _schema_kind(path):
            message = f"{error.instance!r} is not a duration like 30s, 15m, 1h30m or 2d"
        elif error.validator == "pattern" and path == ("role",):
            message = (
                f"{error.instance!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )
        elif error.validator == "pattern" and path == ("name",):
            message = f"{error.instance!r} must be lowercase letters, digits and '-' (max 63)"
        elif error.validator == "required":
            message = error.message.replace("is a required property", "is required")
        problems.append(
            Problem(tracker.file, tracker.line(prefix + path), field_name(path), message)
        )
    return problems


def _schema_kind(path: Path_) -> str:
    return "duration" if path and path[-1] in ("ttl", "window", "max_session") else ""


def _semantic_problems(doc: dict, tracker: _LineTracker, prefix: Path_) -> list[Problem]:
    """What a schema cannot say: ceilings and fields that only make sense together."""
    problems = []

    def problem(path: Path_, message: str) -> None:
        problems.append(
            Problem(tracker.file, tracker.line(prefix + path), field_name(path), message)
        )

    if "max_session" in doc and parse_duration(doc["max_session"]) > MAX_SESSION_CEILING:
        problem(("max_session",), "must be at most 15m (an EKS token lives 15 minutes)")
    if "max_session" in doc and parse_duration(doc["max_session"]) < 60:
        problem(("max_session",), "must be at least 1m")
    if {"patterns", "except"} <= set(doc.get("masking", {})):
        problem(
            ("masking", "except"),
            "use except (every pattern but those) or the older patterns list, not both",
        )
    for i, rule in enumerate(doc["rules"]):
        effect = rule["effect"]
        if effect == "approve" and not rule.get("approvers"):
            problem(
                ("rules", i, "approvers"),
                "an approve rule needs approvers "
                "(Slack user ids like U012AB3CD, or slack-group:<handle>)",
            )
        if effect != "approve":
            for key in ("approvers", "approval"):
                if key in rule:
                    problem(("rules", i, key), f"only approve rules take {key}")
        if not rule.get("resources") and not rule.get("nonResourceURLs"):
            problem(("rules", i), "a rule needs resources or nonResourceURLs")
        if rule.get("resources") and rule.get("nonResourceURLs"):
            problem(("rules", i), "a rule takes resources or nonResourceURLs, not both")
        if "commands" in rule and rule.get("resources") != ["pods/exec"]:
            problem(("rules", i, "commands"), "commands need resources: [pods/exec] alone")
        for j, pattern in enumerate(rule.get("commands", [])):
            if pattern_problem(pattern):
                problem(("rules", i, "commands", j), str(pattern_problem(pattern)))
        approval = rule.get("approval", {})
        for key in ("ttl", "window"):
            if key in approval and parse_duration(approval[key]) > MAX_APPROVAL_SECONDS:
                problem(("rules", i, "approval", key), "must be at most 24h")
        if approval.get("direct") and approval.get("mode") != "grant":
            problem(("rules", i, "approval", "direct"), "direct grants need mode: grant")
        if approval.get("direct") and not approval.get("role"):
            problem(
                ("rules", i, "approval", "role"),
                "a direct grant needs a role of its own, whose access entry this rule "
                "alone defines (the policy's role would give the token everything it allows)",
            )
        if (
            doc.get("direct")
            and effect in ("allow", "approve")
            and set(rule.get("verbs", ["*"])) - {"get", "list", "watch"}
        ):
            problem(
                ("rules", i, "verbs"),
                "a policy with direct: true hands out its role's "
                "credentials, so it may only allow or approve get, list and watch",
            )
        if (
            len(set(rule.get("approvers", []))) == 1
            and approval.get("min_approvers", 1) > 1
            and not rule["approvers"][0].startswith("slack-group:")
        ):
            problem(
                ("rules", i, "approval", "min_approvers"),
                "needs more approvers than the one listed",
            )
    return problems


def _build_policy(doc: dict, file: str, tracker: _LineTracker, prefix: Path_) -> Policy:
    rules = []
    for i, raw in enumerate(doc["rules"]):
        approval = None
        if raw["effect"] == "approve":
            settings = raw.get("approval", {})
            approval = ApprovalSettings(
                mode=settings.get("mode", "once"),
                ttl_seconds=parse_duration(settings.get("ttl", "15m")),
                window_seconds=parse_duration(settings.get("window", "15m")),
                min_approvers=settings.get("min_approvers", 1),
                direct=settings.get("direct", False),
                role=settings.get("role"),
                channel=settings.get("channel"),
            )
        rules.append(
            Rule(
                index=i,
                effect=raw["effect"],
                name=raw.get("name"),
                reason=raw.get("reason", ""),
                verbs=tuple(raw.get("verbs", ["*"])),
                api_groups=tuple(raw.get("apiGroups", ["*"])),
                resources=tuple(raw.get("resources", [])),
                namespaces=tuple(raw.get("namespaces", [])),
                resource_names=tuple(raw.get("resourceNames", [])),
                non_resource_urls=tuple(raw.get("nonResourceURLs", [])),
                approvers=tuple(raw.get("approvers", [])),
                approval=approval,
                commands=tuple(tuple(c) for c in raw.get("commands", [])),
                line=tracker.line(prefix + ("rules", i)),
            )
        )
    subjects = tuple(
        Subject(
            issuer=s["issuer"],
            claims={
                k: tuple(map(_claim_pattern, v if isinstance(v, list) else [v]))
                for k, v in s.get("claims", {}).items()
            },
        )
        for s in doc["subjects"]
    )
    return Policy(
        name=doc["name"],
        description=doc.get("description", ""),
        subjects=subjects,
        clusters=tuple(doc["clusters"]),
        role_arn=doc["role"],
        rules=tuple(rules),
        direct=doc.get("direct", False),
        workload=doc.get("workload", False),
        max_session_seconds=parse_duration(doc.get("max_session", "15m")),
        masking_patterns=_masking_patterns(doc.get("masking", {})),
        masking_narrowed=tuple(
            sorted(set(PATTERN_NAMES) - set(_masking_patterns(doc.get("masking", {}))))
        ),
        masking_unscannable_binary=doc.get("masking", {}).get("unscannable_binary", "withhold"),
        source=file,
        line=tracker.line(prefix),
    )


def _masking_patterns(masking: dict[str, Any]) -> tuple[str, ...]:
    """Every family but those in ``except``; a legacy ``patterns`` list narrows to itself."""
    if "patterns" in masking:
        return tuple(masking["patterns"])
    return tuple(sorted(set(PATTERN_NAMES) - set(masking.get("except", []))))


def _claim_pattern(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_policy_text(text: str, file: str = "<policy>") -> list[Policy]:
    """Policies in one YAML text (one or more ``---`` documents); PolicyError if any is wrong."""
    tracker = _LineTracker(file)
    try:
        nodes = list(yaml.compose_all(text, Loader=_YamlLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise PolicyError(
            [Problem(file, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from exc
    policies, problems = [], []
    for index, node in enumerate(nodes):
        if node is None:
            continue
        prefix: Path_ = (index,)
        unreadable = tracker.unreadable
        document = tracker.build(node, prefix)
        if tracker.unreadable > unreadable:
            continue  # named where it is; judging the rest would only add noise about it
        if not isinstance(document, dict):
            problems.append(
                Problem(file, node.start_mark.line + 1, "", "a policy must be a mapping")
            )
            continue
        found = _schema_problems(document, tracker, prefix)
        found = found or _semantic_problems(document, tracker, prefix)
        problems.extend(found)
        if not found:
            policies.append(_build_policy(document, file, tracker, prefix))
    problems = tracker.problems + problems
    if problems:
        raise PolicyError(problems)
    return policies


def policy_files(directory: Path) -> list[Path]:
    """The policy files of a directory (``*.yaml``/``*.yml``, not its ``tests/``), sorted."""
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


@dataclass(frozen=True)
class PolicyFile:
    """One policy file's bytes as read once: the snapshot key and a full load see the same."""

    path: Path
    data: bytes | None  # None: it could not be read (``error`` says why)
    error: str = ""


def read_policy_files(directory: Path | str) -> list[PolicyFile]:
    """The bytes of every policy file of ``directory``; PolicyError if it is not a directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError([Problem(str(directory), 0, "", "policy directory does not exist")])
    return [_read(path) for path in policy_files(directory)]


def _read(path: Path) -> PolicyFile:
    try:
        return PolicyFile(path, path.read_bytes())
    except OSError as exc:
        return PolicyFile(path, None, f"cannot read: {exc}")


def load_policies(directory: Path | str, files: Iterable[Path] | None = None) -> PolicySet:
    """Every policy in ``directory``; PolicyError listing all problems in all files.

    Names must be unique: approvals and audit records refer to policies by name.
    """
    if files is None:
        return load_policy_files(read_policy_files(directory))
    if not Path(directory).is_dir():
        raise PolicyError([Problem(str(directory), 0, "", "policy directory does not exist")])
    return load_policy_files([_read(path) for path in files])


def load_policy_files(files: Iterable[PolicyFile]) -> PolicySet:
    """Parse and validate files already read: the full load, with every problem named."""
    policies: list[Policy] = []
    problems: list[Problem] = []
    for file in files:
        if file.data is None:
            problems.append(Problem(str(file.path), 0, "", file.error))
            continue
        try:
            text = file.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(str(file.path), 0, "", f"cannot read: {exc}"))
            continue
        try:
            policies.extend(load_policy_text(text, str(file.path)))
        except PolicyError as exc:
            problems.extend(exc.problems)
    seen: dict[str, Policy] = {}
    for policy in policies:
        if policy.name in seen:
            first = seen[policy.name]
            problems.append(
                Problem(
                    policy.source,
                    policy.line,
                    "name",
                    f"policy {policy.name!r} is already defined at {first.source}:{first.line}",
                )
            )
        seen[policy.name] = policy
    if problems:
        raise PolicyError(problems)
    return PolicySet(policies)
