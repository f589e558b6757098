"""The compiled policy snapshot: it loads exactly what the files say, and is never trusted over
them (stale, tampered, corrupt or foreign snapshots fall back to a full load from the files)."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.policy_corpus import write_corpus
from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.policy import PolicyError, load_policies
from chalicelib.policy import snapshot as snapshot_module
from chalicelib.policy.schema import PATTERN_NAMES
from chalicelib.policy.snapshot import (
    SNAPSHOT_NAME,
    compile_snapshot,
    load_with_snapshot,
    snapshot_path,
)
from eksgate.cli import main


def copy_policies(source: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


def rewrite(path: Path, change) -> None:
    """Change a compiled snapshot and, like a careful attacker, re-sign its body digest."""
    head, _, body = path.read_bytes().partition(b"\n")
    header = json.loads(head)
    body = change(json.loads(body))
    raw = json.dumps(body).encode()
    header["body_sha256"] = hashlib.sha256(raw).hexdigest()
    path.write_bytes(json.dumps(header).encode() + b"\n" + raw + b"\n")


@pytest.fixture
def corpus(tmp_path):
    directory = write_corpus(tmp_path / "policies", 30, 8)
    compile_snapshot(directory)
    return directory


def test_the_snapshot_loads_exactly_what_the_files_say(corpus):
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "used", loaded.detail
    assert tuple(loaded.policies) == tuple(load_policies(corpus))
    # sources read as a full load writes them (messages and audit name the file)
    assert {p.source for p in loaded.policies} == {
        str(corpus / f"team-{i:03d}.yaml") for i in range(30)
    }


def test_the_shipped_policies_round_trip_with_every_field(tmp_path):
    directory = copy_policies(DEFAULT_POLICY_DIR, tmp_path / "policies")
    compile_snapshot(directory)
    loaded = load_with_snapshot(directory)
    assert loaded.snapshot == "used"
    assert tuple(loaded.policies) == tuple(load_policies(directory))
    # grants, direct roles, commands and masking survive (the shipped set uses them)
    rules = [r for p in loaded.policies for r in p.rules]
    assert any(r.commands for r in rules)
    assert any(r.approval and r.approval.mode == "grant" for r in rules)


def test_snapshot_decisions_and_index_match_the_full_load(corpus):
    from bench.policy_corpus import identities, requests
    from chalicelib.policy import evaluate, select_policy

    fast, full = load_with_snapshot(corpus).policies, load_policies(corpus)
    for team, caller in enumerate(identities(30)):
        chosen = select_policy(caller, "prod-eu", fast)
        assert chosen == select_policy(caller, "prod-eu", full)
        for request in requests(team):
            assert evaluate(chosen, request) == evaluate(full[team], request)


def test_compiling_is_deterministic(corpus):
    first = snapshot_path(corpus).read_bytes()
    compile_snapshot(corpus)
    assert snapshot_path(corpus).read_bytes() == first


# ---- generated policies -------------------------------------------------------------------

_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).map(
    lambda s: "p" + s.strip("-") + "x"
)
_words = st.text("abcdefghijklmnopqrstuvwxyz0123456789*?/-.:é😀 ", min_size=1, max_size=10)
_claim = st.one_of(_words, st.booleans(), st.integers(0, 99), st.lists(_words, min_size=1))
_durations = st.sampled_from(["30s", "1m", "15m", "1h30m", "2h", "1d"])
_role = st.integers(0, 999).map(lambda n: f"arn:aws:iam::123456789012:role/r{n}")


@st.composite
def _rule(draw, direct_policy: bool):
    effect = draw(st.sampled_from(["allow", "approve", "deny"]))
    rule: dict = {"effect": effect}
    if draw(st.booleans()):
        rule["name"] = draw(_words)
    if draw(st.booleans()):
        rule["reason"] = draw(st.text(max_size=20))
    read_only = direct_policy and effect != "deny"
    verbs = ["get", "list", "watch"] if read_only else ["get", "patch", "delete", "*"]
    rule["verbs"] = draw(st.lists(st.sampled_from(verbs), min_size=1, max_size=3))
    if draw(st.booleans()):
        rule["nonResourceURLs"] = draw(st.lists(_words, min_size=1, max_size=3))
    elif not read_only and draw(st.booleans()):
        rule["resources"] = ["pods/exec"]
        rule["commands"] = draw(
            st.lists(st.lists(_words, min_size=1, max_size=3), min_size=1, max_size=2)
        )
    else:
        rule["resources"] = draw(st.lists(_words, min_size=1, max_size=3))
        for key in ("apiGroups", "namespaces", "resourceNames"):
            if draw(st.booleans()):
                rule[key] = draw(st.lists(_words, min_size=1, max_size=3))
    if effect == "approve":
        rule["approvers"] = [draw(st.sampled_from(["U012AB3CD", "slack-group:oncall"]))]
        approval: dict = {}
        if draw(st.booleans()):
            approval["mode"] = "grant"
            if draw(st.booleans()):
                approval.update(direct=True, role=draw(_role))
        for key in ("ttl", "window"):
            if draw(st.booleans()):
                approval[key] = draw(_durations)
        if draw(st.booleans()):
            approval["channel"] = "#" + draw(_words)
        if approval:
            rule["approval"] = approval
    return rule


@st.composite
def _policy(draw, name: str):
    direct = draw(st.booleans())
    document: dict = {
        "name": name,
        "subjects": [
            {
                "issuer": draw(_words),
                "claims": draw(st.dictionaries(_words, _claim, max_size=3)),
            }
            for _ in range(draw(st.integers(1, 2)))
        ],
        "clusters": draw(st.lists(_words, min_size=1, max_size=3)),
        "role": draw(_role),
        "rules": draw(st.lists(_rule(direct), min_size=1, max_size=4)),
    }
    if draw(st.booleans()):
        document["description"] = draw(st.text(max_size=30))
    for key in ("direct", "workload"):
        if draw(st.booleans()):
            document[key] = direct if key == "direct" else draw(st.booleans())
    if draw(st.booleans()):
        document["max_session"] = draw(st.sampled_from(["1m", "5m", "15m"]))
    masking = {}
    families = st.lists(st.sampled_from(PATTERN_NAMES), unique=True)
    if draw(st.booleans()):
        masking["except" if draw(st.booleans()) else "patterns"] = draw(families)
    if draw(st.booleans()):
        masking["unscannable_binary"] = draw(st.sampled_from(["withhold", "keep"]))
    if masking:
        document["masking"] = masking
    return document


@st.composite
def _policy_files(draw):
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    files: dict[str, list[dict]] = {}
    for name in names:
        file = draw(st.sampled_from(["a.yaml", "b.yml", "c d.yaml"]))
        files.setdefault(file, []).append(draw(_policy(name)))
    return files


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy_files())
def test_generated_policies_load_from_the_snapshot_as_from_the_files(files):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for name, documents in files.items():
            (directory / name).write_text(yaml.safe_dump_all(documents, allow_unicode=True))
        try:
            full = load_policies(directory)
        except PolicyError as error:
            with pytest.raises(PolicyError) as compiled:
                compile_snapshot(directory)
            assert str(compiled.value) == str(error)
            assert not snapshot_path(directory).exists()
            return
        compile_snapshot(directory)
        loaded = load_with_snapshot(directory)
        assert loaded.snapshot == "used", loaded.detail
        assert tuple(loaded.policies) == tuple(full)


# ---- never trusted over the files ---------------------------------------------------------


def test_without_a_snapshot_the_files_are_loaded(tmp_path):
    directory = copy_policies(DEFAULT_POLICY_DIR, tmp_path / "policies")
    loaded = load_with_snapshot(directory)
    assert loaded.snapshot == "absent"
    assert tuple(loaded.policies) == tuple(load_policies(directory))


def test_an_edited_policy_file_makes_the_snapshot_stale(corpus):
    path = corpus / "team-003.yaml"
    path.write_text(path.read_text().replace("effect: deny", "effect: allow"))
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "stale"
    assert tuple(loaded.policies) == tuple(load_policies(corpus))
    assert all(r.effect != "deny" for r in loaded.policies[3].rules)


def test_a_byte_that_changes_no_policy_still_makes_it_stale(corpus):
    with (corpus / "team-000.yaml").open("a") as file:
        file.write("# a comment\n")
    assert load_with_snapshot(corpus).snapshot == "stale"


@pytest.mark.parametrize("change", ["add", "remove", "rename"])
def test_a_file_added_removed_or_renamed_makes_it_stale(corpus, change):
    if change == "add":
        (corpus / "team-999.yaml").write_text(
            (corpus / "team-001.yaml").read_text().replace("team-1", "team-999")
        )
    elif change == "remove":
        (corpus / "team-029.yaml").unlink()
    else:
        (corpus / "team-029.yaml").rename(corpus / "team-029b.yaml")
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "stale"
    assert tuple(loaded.policies) == tuple(load_policies(corpus))


def test_a_snapshot_from_other_code_is_stale(corpus, monkeypatch):
    monkeypatch.setattr(snapshot_module, "code_fingerprint", lambda: b"another release")
    assert load_with_snapshot(corpus).snapshot == "stale"


def test_a_snapshot_copied_from_another_directory_is_stale(corpus, tmp_path):
    other = copy_policies(DEFAULT_POLICY_DIR, tmp_path / "other")
    shutil.copy(snapshot_path(corpus), snapshot_path(other))
    loaded = load_with_snapshot(other)
    assert loaded.snapshot == "stale"
    assert {p.name for p in loaded.policies} == {p.name for p in load_policies(other)}


def test_an_edited_body_without_its_digest_is_not_used(corpus):
    path = snapshot_path(corpus)
    path.write_bytes(path.read_bytes().replace(b'"deny"', b'"allow"'))
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "unusable"
    assert "digest" in loaded.detail
    assert any(r.effect == "deny" for p in loaded.policies for r in p.rules)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"",
        lambda data: b"\x00\xff" * 50,
        lambda data: data.split(b"\n")[0],
        lambda data: data.replace(b'"format":1', b'"format":2', 1),
        lambda data: b"[1,2]\n" + data.split(b"\n", 1)[1],
    ],
    ids=["truncated", "empty", "binary", "header only", "other format", "header not a map"],
)
def test_a_corrupt_snapshot_falls_back_to_the_files(corpus, damage):
    path = snapshot_path(corpus)
    path.write_bytes(damage(path.read_bytes()))
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "unusable"
    assert tuple(loaded.policies) == tuple(load_policies(corpus))


@pytest.mark.parametrize(
    "change",
    [
        lambda body: {**body, "policies": body["policies"][1:] + [[0]]},
        lambda body: {**body, "values": body["values"][:3]},
        lambda body: {**body, "fields": {**body["fields"], "rule": body["fields"]["rule"][::-1]}},
        lambda body: {**body, "policies": "everything"},
        lambda body: [],
    ],
    ids=["row too short", "values missing", "fields reordered", "wrong type", "not a map"],
)
def test_a_well_signed_body_of_another_shape_falls_back(corpus, change):
    rewrite(snapshot_path(corpus), change)
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "unusable"
    assert loaded.detail.startswith("its body does not decode")
    assert tuple(loaded.policies) == tuple(load_policies(corpus))


def test_a_snapshot_never_points_a_source_outside_its_directory(corpus):
    def escape(body):
        body["values"] = ["../../etc/passwd" if v == "team-000.yaml" else v for v in body["values"]]
        return body

    rewrite(snapshot_path(corpus), escape)
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "unusable"
    assert all(Path(p.source).parent == corpus for p in loaded.policies)


def test_why_a_snapshot_was_not_used_names_no_policy_content(corpus):
    rewrite(snapshot_path(corpus), lambda body: {**body, "policies": [["role/team-7"]]})
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "unusable"
    assert "team" not in loaded.detail and "arn:" not in loaded.detail


def test_an_unreadable_snapshot_falls_back(corpus):
    snapshot_path(corpus).unlink()
    snapshot_path(corpus).mkdir()
    loaded = load_with_snapshot(corpus)
    assert loaded.snapshot == "unusable"
    assert len(loaded.policies) == 30


def test_bad_policy_files_still_name_file_line_and_field_with_a_snapshot(corpus):
    path = corpus / "team-002.yaml"
    path.write_text(path.read_text().replace("verbs: [get, list, watch]", "verbs: [get, lst]", 1))
    with pytest.raises(PolicyError) as error:
        load_with_snapshot(corpus)
    assert f"{path}:12: rules[0].verbs[1]: unknown verb 'lst'" in str(error.value)
    assert str(error.value) == str(pytest.raises(PolicyError, load_policies, corpus).value)


def test_an_unreadable_policy_file_is_a_problem_not_a_snapshot_hit(corpus):
    (corpus / "team-004.yaml").unlink()
    (corpus / "team-004.yaml").mkdir()  # listed by name, but cannot be read
    (corpus / "team-005.yaml").write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(PolicyError) as error:
        load_with_snapshot(corpus)
    assert "team-005.yaml: cannot read" in str(error.value)


def test_a_missing_directory_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="policy directory does not exist"):
        load_with_snapshot(tmp_path / "nowhere")


# ---- eksgate policy compile ---------------------------------------------------------------


def test_policy_compile_writes_the_snapshot_the_loader_uses(tmp_path, capsys):
    directory = copy_policies(DEFAULT_POLICY_DIR, tmp_path / "policies")
    assert main(["policy", "compile", str(directory)]) == 0
    assert f"3 policies compiled into {directory / SNAPSHOT_NAME}" in capsys.readouterr().out
    assert load_with_snapshot(directory).snapshot == "used"
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_policy_compile_refuses_bad_policies_like_lint(tmp_path, capsys):
    directory = copy_policies(DEFAULT_POLICY_DIR, tmp_path / "policies")
    path = directory / "ci-agent.yaml"
    path.write_text(path.read_text().replace("effect: deny", "effect: dney", 1))
    assert main(["policy", "compile", str(directory)]) == 1
    err = capsys.readouterr().err
    assert f"error: {path}:" in err and "effect: 'dney' is not one of" in err
    assert "no snapshot written" in err
    assert not snapshot_path(directory).exists()
