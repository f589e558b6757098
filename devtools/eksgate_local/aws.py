"""AWS for the local stack: moto in server mode, provisioned like a fresh deployment."""

from __future__ import annotations

import base64
import functools
import logging
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Literal

import boto3
import yaml
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer

from eksgate_local.stage import PROJECT_DIR

INFRA_TEMPLATE = PROJECT_DIR / "infra" / "template.yaml"
# What create_table takes; the rest (TTL, recovery, encryption) is CloudFormation's business
# or, for TTL, a separate API call.
_CREATE_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)

LOCAL_REGION = "us-east-1"
# moto accepts any credentials; these name the "eksgate function" in its STS emulation.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-eksgate-function",
    "AWS_SECRET_ACCESS_KEY": "local-only-not-a-secret",
}


_DYNAMODB_LOCK = threading.Lock()


def _one_at_a_time(dispatch: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(dispatch)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_LOCK:
            return dispatch(self, *args, **kwargs)

    locked.one_at_a_time = True  # type: ignore[attr-defined]
    return locked


@contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """Give moto's DynamoDB the per-request atomicity real DynamoDB has, while in effect.

    moto checks a condition, applies the write and serialises the answer in plain Python,
    with no lock: concurrent requests interleave (a condition passes on stale state, or the
    answer's serialiser sees an item change size under it). Real DynamoDB applies each
    request atomically, so the whole of moto's DynamoDB dispatch (parse, backend, serialise)
    runs one request at a time, process-wide, for moto's server and its in-process mock alike.
    """
    original = DynamoHandler._dispatch
    if getattr(original, "one_at_a_time", False):
        yield  # already in effect (a stack inside a test, or two stacks)
        return
    DynamoHandler._dispatch = _one_at_a_time(original)  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoHandler._dispatch = original  # type: ignore[method-assign]


# The services the local stack uses (boto3's stubs know each client by its literal name).
LocalService = Literal["dynamodb", "dynamodbstreams", "s3", "secretsmanager"]


class LocalAws:
    """moto's server on a free loopback port, for every AWS service the app calls."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._atomic = ExitStack()

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log in the terminal
        self._atomic.enter_context(atomic_dynamodb())
        self._server.start()
        return self

    def stop(self) -> None:
        # moto keeps its state in process-wide backends: reset them, so another stack started
        # in this process (tests, a second demo) begins as empty as a fresh account.
        try:
            urllib.request.urlopen(
                urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"),
                timeout=5,
            ).close()
        except OSError:
            pass  # already gone: nothing to reset
        self._server.stop()
        self._atomic.close()

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def environment(self) -> dict[str, str]:
        """What a process needs so that boto3 talks to this moto server (AWS_ENDPOINT_URL)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_REGION": LOCAL_REGION,
            **LOCAL_CREDENTIALS,
        }

    def client(self, service: LocalService) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=LOCAL_REGION,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )


def create_signing_key(secretsmanager: Any, secret_id: str) -> str:
    """Create the gateway's signing key secret (random, base64) and return its VersionId."""
    answer = secretsmanager.create_secret(
        Name=secret_id,
        SecretString=base64.b64encode(os.urandom(32)).decode(),
        Description="eksgate gateway session signing key",
    )
    return answer["VersionId"]


def rotate_signing_key(secretsmanager: Any, secret_id: str) -> str:
    """Put a new random key; the old one stays valid as AWSPREVIOUS for live sessions."""
    answer = secretsmanager.put_secret_value(
        SecretId=secret_id, SecretString=base64.b64encode(os.urandom(32)).decode()
    )
    return answer["VersionId"]


def table_definitions(template_path: Any = INFRA_TEMPLATE) -> dict[str, dict[str, Any]]:
    """The DynamoDB tables of infra/template.yaml: logical id -> Properties."""
    template = yaml.safe_load(open(template_path, encoding="utf-8"))
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }


def create_tables(dynamodb: Any, names: dict[str, str]) -> None:
    """Create each infra table (logical id -> table name) exactly as the template defines it."""
    for logical_id, properties in table_definitions().items():
        table_name = names[logical_id]
        arguments = {k: properties[k] for k in _CREATE_TABLE_KEYS if k in properties}
        if "StreamSpecification" in arguments:
            # CloudFormation infers StreamEnabled from the view type; the API wants it said.
            arguments["StreamSpecification"] = {
                "StreamEnabled": True,
                **arguments["StreamSpecification"],
            }
        dynamodb.create_table(TableName=table_name, **arguments)
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"],
                    "Enabled": ttl["Enabled"],
                },
            )


def create_audit_buckets(s3: Any, export_bucket: str, anchor_bucket: str, days: int) -> None:
    """The export bucket, and the anchor bucket with Object Lock as the template defines it
    (compliance mode; ``days`` is the stage's retention, as ``eksgate infra render`` sets)."""
    template = yaml.safe_load(open(INFRA_TEMPLATE, encoding="utf-8"))
    lock = template["Resources"]["AuditAnchorBucket"]["Properties"]["ObjectLockConfiguration"]
    s3.create_bucket(Bucket=export_bucket)
    s3.create_bucket(Bucket=anchor_bucket, ObjectLockEnabledForBucket=True)
    retention = dict(lock["Rule"]["DefaultRetention"], Days=days)
    s3.put_object_lock_configuration(
        Bucket=anchor_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": lock["ObjectLockEnabled"],
            "Rule": {"DefaultRetention": retention},
        },
    )
