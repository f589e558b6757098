"""The audit table's stream, delivered to the app's stream function as Lambda would.

In AWS an event source mapping polls the DynamoDB stream and invokes ``audit_export`` with
batches; locally this thread does the same against moto's stream: records in stream order,
a failed batch retried (not skipped) until it succeeds.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

BATCH_SIZE = 100


class StreamPump:
    """Polls every shard of ``stream_arn`` and hands each batch to ``deliver``."""

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        deliver: Callable[[dict[str, Any]], Any],
        interval_seconds: float = 0.5,
    ) -> None:
        self._client = streams_client
        self._arn = stream_arn
        self._deliver = deliver
        self._interval = interval_seconds
        self._iterators: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-audit-stream", daemon=True)

    def start(self) -> StreamPump:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def pump_once(self) -> int:
        """Deliver what the stream holds now; the number of records delivered."""
        delivered = 0
        shards = self._client.describe_stream(StreamArn=self._arn)["StreamDescription"]
        for shard in shards.get("Shards") or []:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self._arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None:
                continue  # a closed shard, read to its end
            answer = self._client.get_records(ShardIterator=iterator, Limit=BATCH_SIZE)
            records = answer.get("Records") or []
            if records:
                # Raises on failure, leaving the iterator where it was: the batch is retried.
                self._deliver({"Records": [{**r, "eventSourceARN": self._arn} for r in records]})
                delivered += len(records)
            self._iterators[shard_id] = answer.get("NextShardIterator")
        return delivered

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                while self.pump_once():
                    pass
            except Exception as exc:  # keep polling, as the event source mapping would
                print(f"warning: the audit stream function failed: {exc}", file=sys.stderr)
