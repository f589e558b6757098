"""The eksgate CLI: policy tools, the exec credential plugin and kubeconfig."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import yaml

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.policy import load_policies
from eksgate.cli import main
from eksgate.token_cmd import kubeconfig_entry, merge_kubeconfig


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "eksgate.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_policy_lint_passes_on_the_shipped_policies(capsys):
    assert main(["policy", "lint"]) == 0
    assert "3 policies OK" in capsys.readouterr().out


def test_policy_lint_on_a_broken_policy_prints_file_line_and_field(tmp_path, capsys):
    broken = (
        (DEFAULT_POLICY_DIR / "ci-agent.yaml")
        .read_text()
        .replace("verbs: [get, list, watch]", "verbs: [get, lst, watch]")
    )
    (tmp_path / "broken.yaml").write_text(broken)
    line = broken.splitlines().index(next(x for x in broken.splitlines() if "lst" in x)) + 1
    assert main(["policy", "lint", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/broken.yaml:{line}: rules[0].verbs[1]: unknown verb 'lst'" in err


def test_policy_lint_warns_about_shadowed_rules(tmp_path, capsys):
    text = (DEFAULT_POLICY_DIR / "ci-agent.yaml").read_text().split("masking:")[0]
    text += """  - name: read-pods-again
    effect: allow
    verbs: [get]
    resources: [pods]
    namespaces: [shop]
"""
    (tmp_path / "p.yaml").write_text(text)
    assert main(["policy", "lint", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    last = len(load_policies(tmp_path)[0].rules) - 1  # the rule appended above
    assert f"rules[{last}]: never decides anything: read-shop (allow)" in out


def test_policy_test_runs_the_shipped_cases(capsys):
    assert main(["policy", "test"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "FAIL " not in out


def test_policy_test_reports_a_failing_case(tmp_path, capsys):
    (tmp_path / "ci-agent.yaml").write_text((DEFAULT_POLICY_DIR / "ci-agent.yaml").read_text())
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "cases.yaml").write_text(
        yaml.safe_dump(
            {
                "cases": [
                    {
                        "name": "agent deletes pods",
                        "cluster": "demo",
                        "expect": "allow",
                        "identity": {
                            "iss": "https://oidc.eksgate.local",
                            "sub": "a",
                            "repository": "acme/shop",
                            "environment": "production",
                        },
                        "request": {
                            "verb": "delete",
                            "resource": "pods",
                            "namespace": "shop",
                            "name": "p",
                        },
                    }
                ]
            }
        )
    )
    assert main(["policy", "test", str(tmp_path)]) == 1
    assert "FAIL  agent deletes pods  (expected allow, got deny" in capsys.readouterr().out


def test_can_i_names_the_deciding_rule(tmp_path, capsys):
    subject = tmp_path / "agent.yaml"
    subject.write_text(
        yaml.safe_dump(
            {
                "iss": "https://oidc.eksgate.local",
                "sub": "x",
                "repository": "acme/shop",
                "environment": "production",
            }
        )
    )
    assert main(["can-i", "--subject", str(subject), "delete", "namespace/shop", "-n", "shop"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("deny") and "rule:   no-namespace-deletes" in out
    assert "ci-agent.yaml:" in out
    assert main(["can-i", "--subject", str(subject), "patch", "deploy/web", "-n", "shop"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("approve") and "change-deployments" in out
    assert (
        main(
            [
                "can-i",
                "--subject",
                str(subject),
                "get",
                "pods",
                "-n",
                "shop",
                "--subresource",
                "log",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("allow")


def test_can_i_with_an_unreadable_subject_is_a_clear_error(tmp_path, capsys):
    assert main(["can-i", "--subject", str(tmp_path / "missing.yaml"), "get", "pods"]) == 2
    assert "error:" in capsys.readouterr().err


def test_kubeconfig_entry_uses_the_exec_plugin():
    entry = kubeconfig_entry("prod", "https://gw.example", token_env="GH_TOKEN")
    user = entry["users"][0]["user"]["exec"]
    assert user["command"] == "eksgate" and user["apiVersion"].endswith("v1beta1")
    assert user["args"][:5] == ["token", "--cluster", "prod", "--gateway", "https://gw.example"]
    assert "--oidc-token-env" in user["args"]
    assert entry["clusters"][0]["cluster"]["server"] == "https://gw.example/k8s/prod"


def test_kubeconfig_merge_keeps_other_entries(tmp_path):
    existing = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "other", "cluster": {"server": "https://x"}}],
        "users": [{"name": "other", "user": {}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
    }
    target = tmp_path / "config"
    target.write_text(yaml.safe_dump(existing))
    assert (
        main(["kubeconfig", "--cluster", "prod", "--gateway", "https://gw", "--merge", str(target)])
        == 0
    )
    merged = yaml.safe_load(target.read_text())
    assert {c["name"] for c in merged["clusters"]} == {"other", "eksgate-prod"}
    assert merged["current-context"] == "eksgate-prod"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again = merge_kubeconfig(merged, kubeconfig_entry("prod", "https://gw2"))
    assert len(again["clusters"]) == 2


def test_token_without_an_oidc_token_says_what_to_do(tmp_path):
    result = run(
        "token",
        "--cluster",
        "demo",
        "--gateway",
        "http://127.0.0.1:9",
        env={"EKSGATE_OIDC_TOKEN": "", "XDG_CACHE_HOME": str(tmp_path)},
    )
    assert result.returncode == 1 and "set $EKSGATE_OIDC_TOKEN" in result.stderr


def test_token_with_an_unreachable_gateway_is_a_clear_error(tmp_path):
    result = run(
        "token",
        "--cluster",
        "demo",
        "--gateway",
        "http://127.0.0.1:9",
        env={"EKSGATE_OIDC_TOKEN": "x.y.z", "XDG_CACHE_HOME": str(tmp_path)},
    )
    assert result.returncode == 1 and "cannot reach the eksgate gateway" in result.stderr
    assert "Traceback" not in result.stderr
