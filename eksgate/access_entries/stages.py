"""A Chalice stage's settings as the operator tools need them (.chalice/config.json).

Chalice merges the top level and the stage: stage keys win, environment variables are merged.
The operator tools read the same file the deployment does, so the clusters they configure are
the clusters the gateway serves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksgate.access_entries.errors import StageConfigError

PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ClusterTarget:
    """An eksgate cluster name, the EKS cluster it fronts, and that cluster's region."""

    name: str
    eks_name: str
    region: str = ""


@dataclass(frozen=True)
class StageConfig:
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    environment: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def clusters(self) -> dict[str, ClusterTarget]:
        """EKSGATE_CLUSTERS: eksgate name -> target (``eks_name`` defaults to the name)."""
        raw = self.environment.get("EKSGATE_CLUSTERS", "{}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StageConfigError(
                f"stage {self.name!r}: EKSGATE_CLUSTERS is not valid JSON: "
                f"{exc.msg} at column {exc.colno}"
            ) from None
        if not isinstance(value, dict):
            raise StageConfigError(
                f"stage {self.name!r}: EKSGATE_CLUSTERS must be a JSON object "
                '{"name": {"region": ..., "eks_name": ...}}'
            )
        clusters = {}
        for name, item in value.items():
            item = item or {}
            if not isinstance(item, dict):
                raise StageConfigError(
                    f"stage {self.name!r}: EKSGATE_CLUSTERS[{name!r}] must be an object"
                )
            clusters[name] = ClusterTarget(
                name=name, eks_name=item.get("eks_name") or name, region=item.get("region", "")
            )
        return clusters


def load_stage(stage: str, project_dir: Path = PROJECT_DIR) -> StageConfig:
    """The merged settings of ``stage``; StageConfigError when the file or stage is missing."""
    path = Path(project_dir) / ".chalice" / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StageConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise StageConfigError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    stages = config.get("stages", {})
    if stage not in stages:
        raise StageConfigError(
            f"no stage {stage!r} in {path}; stages: {', '.join(sorted(stages)) or 'none'}"
        )
    settings = {k: v for k, v in config.items() if k not in ("stages", "environment_variables")}
    settings.update({k: v for k, v in stages[stage].items() if k != "environment_variables"})
    environment = dict(config.get("environment_variables", {}))
    environment.update(stages[stage].get("environment_variables", {}))
    return StageConfig(name=stage, settings=settings, environment=environment)
