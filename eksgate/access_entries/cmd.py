"""``eksgate access-entries plan|apply``: keep each cluster's access entries in step with policies.

Arguments (an argparse Namespace; the optional ones may be absent):

- ``cluster``: the eksgate cluster name, as policies' ``clusters`` globs name it
- ``policies``: policy directory, or None for the app's own (chalicelib/policies)
- ``region``: AWS region of the cluster; None: the stage's, else boto3's default
- ``stage`` (optional): a .chalice/config.json stage whose EKSGATE_CLUSTERS gives the EKS
  cluster name and region of ``cluster``
- ``eks_name`` (optional): the EKS cluster's own name when it differs (wins over the stage)
- ``project_dir`` (optional): where .chalice/config.json is (default: this checkout)
- ``yes`` (apply): do not ask for confirmation
- ``eks_client_factory`` (optional): region -> boto3 EKS client; tests pass a fake

Exit codes, like ``terraform plan -detailed-exitcode``: plan gives 0 when there is nothing to
change and 2 when there are changes (conflicts included); apply gives 0 when the cluster is in
step afterwards. Any error is 1, with a message on stderr and no traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.policy import PolicyError, load_policies
from eksgate.access_entries import eks as eks_adapter
from eksgate.access_entries.desired import desired_entries
from eksgate.access_entries.errors import AccessEntryError
from eksgate.access_entries.model import DesiredEntry
from eksgate.access_entries.plan import Action, Change, plan, render_plan
from eksgate.access_entries.stages import PROJECT_DIR, ClusterTarget, load_stage

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

EksClientFactory = Callable[[str | None], Any]


def _default_eks_client(region: str | None) -> Any:
    import boto3  # only the real command needs it; tests inject a fake

    return boto3.client("eks", region_name=region) if region else boto3.client("eks")


def _target(args: Any) -> ClusterTarget:
    stage = getattr(args, "stage", None)
    target = ClusterTarget(name=args.cluster, eks_name=args.cluster)
    if stage:
        project_dir = Path(getattr(args, "project_dir", None) or PROJECT_DIR)
        clusters = load_stage(stage, project_dir).clusters
        if args.cluster not in clusters:
            raise AccessEntryError(
                f"stage {stage!r} has no cluster {args.cluster!r} in "
                f"EKSGATE_CLUSTERS; it has: {', '.join(sorted(clusters)) or 'none'}"
            )
        target = clusters[args.cluster]
    return ClusterTarget(
        name=target.name,
        eks_name=getattr(args, "eks_name", None) or target.eks_name,
        region=getattr(args, "region", None) or target.region,
    )


def _compute(args: Any, out: TextIO) -> tuple[ClusterTarget, Any, list[DesiredEntry], list[Change]]:
    policy_dir = Path(args.policies) if getattr(args, "policies", None) else DEFAULT_POLICY_DIR
    policies = load_policies(policy_dir)
    target = _target(args)
    desired = desired_entries(policies, target.name)
    factory: EksClientFactory = getattr(args, "eks_client_factory", None) or _default_eks_client
    eks = factory(target.region or None)
    actual = eks_adapter.read_actual(eks, target.eks_name)
    changes = plan(desired, actual)

    where = f" in {target.region}" if target.region else ""
    out.write(
        f"Access entries for cluster {target.name!r} (EKS cluster {target.eks_name!r}"
        f"{where}), from {policy_dir}\n\n"
    )
    if not desired:
        out.write(
            f"Warning: no policy's clusters match {target.name!r}; every eksgate-managed "
            "entry on this cluster would be deleted. Check --cluster.\n\n"
        )
    warnings = [w for entry in desired for w in entry.warnings]
    if warnings:
        out.write("Warnings:\n" + "".join(f"  ! {w}\n" for w in warnings) + "\n")
    out.write(render_plan(changes) + "\n")
    return target, eks, desired, changes


def _fail(err: TextIO, message: str) -> int:
    err.write(f"eksgate: error: {message}\n")
    return EXIT_ERROR


def _run(body: Callable[[], int], err: TextIO) -> int:
    """Run a command body; every expected failure becomes a message and exit code 1."""
    try:
        return body()
    except PolicyError as exc:
        return _fail(err, f"the policies have problems:\n{exc}")
    except AccessEntryError as exc:
        return _fail(err, str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _fail(err, f"AWS: {exc}")
    except OSError as exc:
        return _fail(err, str(exc))


def cmd_plan(args: Any, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Show what apply would change. 0: nothing to change, 2: changes, 1: error."""
    out, err = stdout or sys.stdout, stderr or sys.stderr

    def body() -> int:
        changes = _compute(args, out)[3]
        return EXIT_CHANGES if changes else EXIT_OK

    return _run(body, err)


def cmd_apply(
    args: Any,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Show the plan, confirm (``--yes`` or a ``yes`` typed at a terminal), then apply it."""
    source, out, err = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr

    def body() -> int:
        target, eks, _, changes = _compute(args, out)
        if not changes:
            return EXIT_OK
        if any(c.action is Action.CONFLICT for c in changes):
            return _fail(err, "refusing to apply: the plan has conflicts; nothing was changed")
        if not getattr(args, "yes", False):
            if not source.isatty():
                return _fail(
                    err,
                    "refusing to apply without confirmation: there is no "
                    "terminal to ask on. Review the plan and pass --yes",
                )
            out.write(
                f"\nApply these {len(changes)} change(s) to EKS cluster "
                f"{target.eks_name!r}? Only 'yes' is accepted: "
            )
            out.flush()
            if source.readline().strip() != "yes":
                out.write("Apply cancelled; nothing was changed.\n")
                return EXIT_ERROR
        out.write("\n")

        def progress(line: str) -> None:
            out.write(line + "\n")
            out.flush()  # each step shows as it starts, not when the run ends

        eks_adapter.apply(eks, target.eks_name, changes, progress)
        out.write(f"\nApplied {len(changes)} change(s).\n")
        return EXIT_OK

    return _run(body, err)
