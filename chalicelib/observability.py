"""Structured logs and metrics (powertools), shared by every route.

Log records carry the request id and, once known, the caller's subject; never a token: no
code passes tokens, Authorization headers or request bodies to the logger.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="eksgate")
metrics = Metrics(namespace="eksgate", service="eksgate")


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


_output: TextIO | None = None


def redirect_output(stream: TextIO) -> None:
    """Send logs and metrics to ``stream`` instead of stdout (the local demo's log file)."""
    global _output
    _output = stream
    logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]


def flush_metrics() -> None:
    """Emit what this invocation counted as CloudWatch EMF (stdout in Lambda), if anything."""
    if metrics.metric_set:
        document = metrics.serialize_metric_set()
        metrics.clear_metrics()
        print(json.dumps(document, separators=(",", ":")), file=_output or sys.stdout, flush=True)
