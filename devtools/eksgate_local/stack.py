"""``eksgate local up|demo``: the whole system on loopback, with no AWS account.

Components start in order; if one fails, the message names it and everything already
started is stopped. Ports are picked free at start, so two stacks never collide.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from eksgate_local.aws import LocalAws, create_audit_buckets, create_signing_key, create_tables
from eksgate_local.control import ControlServer
from eksgate_local.gateway_server import LocalApiGateway
from eksgate_local.kube_emulator import EksTokenAuthenticator, KubeEmulator
from eksgate_local.kube_emulator.tls import TlsMaterial, generate_tls_material, server_ssl_context
from eksgate_local.oidc_issuer import DEMO_IDENTITIES, LocalOidcIssuer
from eksgate_local.slack_fake import SlackFake
from eksgate_local.stage import PROJECT_DIR, local_app_environment
from eksgate_local.streams import StreamPump

CLUSTER = "demo"


# What the stack imports to run; named so a missing one is reported plainly, not as a trace.
REQUIRED_MODULES = {
    "moto": "moto[server]",
    "flask": "moto[server]",
    "kubernetes": "kubernetes",
    "slack_sdk": "slack_sdk",
    "cryptography": "cryptography",
    "chalice": "chalice",
}


class ComponentError(Exception):
    def __init__(self, component: str, cause: BaseException | str) -> None:
        super().__init__(f"{component} failed to start: {cause}")
        self.component = component


def check_dependencies() -> None:
    """ComponentError naming the first missing package, with how to install it."""
    for module, package in REQUIRED_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ComponentError(
                "dependency check",
                f"the Python package {package} is not "
                "installed; run ./scripts/demo or ./scripts/bootstrap",
            ) from exc


def responds(url: str, timeout: float = 1.0) -> bool:
    """Whether something still accepts connections at ``url`` (a crashed server does not)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False


def load_app_module(project_dir: Path = PROJECT_DIR) -> ModuleType:
    """Import the project's app.py, the same file Chalice deploys."""
    spec = importlib.util.spec_from_file_location("app", project_dir / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


def _compile_policy_snapshot(policy_dir: Path | None) -> None:
    """Compile the snapshot the app loads at its cold start, as packaging does for Lambda.

    Policies that do not load are left to the app, which refuses every request and logs each
    problem (as a deployed function would); a directory that cannot be written costs only the
    snapshot: the app then loads the files themselves.
    """
    from chalicelib.config import DEFAULT_POLICY_DIR
    from chalicelib.policy import PolicyError
    from chalicelib.policy.snapshot import compile_snapshot

    with contextlib.suppress(PolicyError, OSError):
        compile_snapshot(policy_dir or DEFAULT_POLICY_DIR)


class LocalStack:
    """Everything eksgate needs, in this process, on loopback."""

    def __init__(
        self,
        log_file: Path | None = None,
        policy_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        gateway_port: int = 0,
        slack_echo: bool = False,
    ) -> None:
        self.log_file = log_file
        self.gateway_port = gateway_port
        self.policy_dir = policy_dir
        self.extra_env = extra_env or {}
        self.control: ControlServer | None = None
        self.schedule_seconds = 10.0
        self._stop_scheduler = threading.Event()
        self.aws = LocalAws()
        self.oidc = LocalOidcIssuer()
        self.kube: KubeEmulator | None = None
        # A fresh signing secret per run: only this stack's fake can sign interactions.
        self.slack = SlackFake(
            signing_secret=base64.b64encode(os.urandom(24)).decode(), echo=slack_echo
        )
        self.gateway: LocalApiGateway | None = None
        self.app_module: ModuleType | None = None
        self.stream: StreamPump | None = None
        self._started: list[tuple[str, Callable[[], None]]] = []
        self._saved_env: dict[str, str | None] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="eksgate-local-"))
        # The gateway's own CA, as API Gateway's certificate would be (HTTPS only).
        self.gateway_tls: TlsMaterial = generate_tls_material()
        self.gateway_ca_file = self.workdir / "gateway-ca.pem"
        self.gateway_ca_file.write_bytes(self.gateway_tls.ca_pem)

    @property
    def gateway_url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    def _start(self, name: str, start: Callable[[], Any], stop: Callable[[], None]) -> None:
        try:
            start()
        except BaseException as exc:
            self.stop()
            raise ComponentError(name, exc) from exc
        self._started.append((name, stop))

    def start(self) -> LocalStack:
        check_dependencies()
        self._start("AWS emulation (moto server)", self.aws.start, self.aws.stop)
        self._start("AWS provisioning", self._provision, lambda: None)
        self._start("OIDC issuer", self.oidc.start, self.oidc.stop)
        self._start(
            "Kubernetes API emulator",
            self._start_kube,
            lambda: self.kube.stop() if self.kube else None,
        )
        self._start("Slack fake", self.slack.start, self.slack.stop)
        self._start("app environment", self._configure_app, self._restore_env)
        self._start(
            "gateway (app.py behind a local API Gateway)",
            self._start_gateway,
            lambda: self.gateway.stop() if self.gateway else None,
        )
        self._start(
            "control endpoint",
            self._start_control,
            lambda: self.control.stop() if self.control else None,
        )
        self._start(
            "audit stream (the app's audit_export function)",
            self._start_stream,
            lambda: self.stream.stop() if self.stream else None,
        )
        self._start(
            "scheduler (the app's @app.schedule functions)",
            self._start_scheduler,
            self._stop_scheduler.set,
        )
        return self

    def _start_scheduler(self) -> None:
        """Call the app's scheduled handler as EventBridge would, every ``schedule_seconds``."""
        from eksgate_local.gateway_server import LambdaContext

        app_module = self._loaded_app()
        event = {
            "version": "0",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "region": "us-east-1",
            "resources": [],
            "detail": {},
            "id": "local",
            "time": "",
        }

        def run() -> None:
            while not self._stop_scheduler.wait(self.schedule_seconds):
                try:
                    app_module.expire_overdue_approvals(event, LambdaContext())
                except Exception as exc:  # keep the schedule going, as EventBridge would
                    print(f"warning: scheduled expiry failed: {exc}", file=sys.stderr)

        threading.Thread(target=run, name="local-scheduler", daemon=True).start()

    def _start_stream(self) -> None:
        """Deliver the audit table's stream to ``audit_export``, as its event source mapping
        does in AWS: the anchors and the export follow the trail within a second."""
        from eksgate_local.gateway_server import LambdaContext

        app_module = self._loaded_app()
        table = os.environ["EKSGATE_AUDIT_TABLE"]
        arn = self.aws.client("dynamodb").describe_table(TableName=table)["Table"][
            "LatestStreamArn"
        ]
        self.stream = StreamPump(
            self.aws.client("dynamodbstreams"),
            arn,
            lambda event: app_module.audit_export(event, LambdaContext()),
        ).start()

    def stop(self) -> None:
        while self._started:
            _, stop = self._started.pop()
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                print(f"warning: stopping a component failed: {exc}", file=sys.stderr)
        # The folder holds hour-long demo OIDC tokens and the CLI's credential cache: they must
        # not outlive the stack that accepts them.
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _provision(self) -> None:
        """What a first deploy creates: the signing key, the Slack secret, the tables."""
        env = local_app_environment(self.oidc.jwks_url)
        secrets = self.aws.client("secretsmanager")
        create_signing_key(secrets, env["EKSGATE_SIGNING_SECRET_ID"])
        secrets.create_secret(
            Name=env["EKSGATE_SLACK_SECRET_ID"],
            SecretString=json.dumps(
                {"bot_token": self.slack.bot_token, "signing_secret": self.slack.signing_secret}
            ),
        )
        create_audit_buckets(
            self.aws.client("s3"),
            env["EKSGATE_EXPORT_BUCKET"],
            env["EKSGATE_ANCHOR_BUCKET"],
            int(env.get("EKSGATE_AUDIT_RETENTION_DAYS", "30")),
        )
        create_tables(
            self.aws.client("dynamodb"),
            {
                "AuditTable": env["EKSGATE_AUDIT_TABLE"],
                "ApprovalsTable": env["EKSGATE_APPROVALS_TABLE"],
                "IdempotencyTable": env["EKSGATE_IDEMPOTENCY_TABLE"],
            },
        )

    def _start_kube(self) -> None:
        # The emulator authenticates the gateway's EKS tokens through moto's STS, so tests can
        # see which assumed role (which credential) reached the cluster.
        self.kube = KubeEmulator(
            EksTokenAuthenticator(self.aws.endpoint_url, CLUSTER), watch_timeout_cap=30
        ).start()

    def _start_control(self) -> None:
        assert self.kube is not None
        kube = self.kube
        self.control = ControlServer(
            calls=lambda: kube.calls,
            clear_calls=kube.clear_calls,
            mint=lambda body: self.oidc.mint(
                body.get("identity") or body.get("claims", {}), **body.get("overrides", {})
            ),
        ).start()

    def _configure_app(self) -> None:
        assert self.kube is not None
        clusters = {
            CLUSTER: {
                "region": "us-east-1",
                "endpoint": self.kube.url,
                "ca_data": base64.b64encode(self.kube.ca_pem).decode(),
            }
        }
        env = {
            **self.aws.environment(),
            **local_app_environment(self.oidc.jwks_url),
            "EKSGATE_CLUSTERS": json.dumps(clusters),
            "EKSGATE_SLACK_API_URL": self.slack.base_url,
            # the agent CLI's credential cache stays inside this run
            "XDG_CACHE_HOME": str(self.workdir / "cache"),
            **self.extra_env,
        }
        if self.policy_dir:
            env["EKSGATE_POLICY_DIR"] = str(self.policy_dir.resolve())
        _compile_policy_snapshot(self.policy_dir)
        for name, value in env.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _start_gateway(self) -> None:
        self.app_module = load_app_module()
        if self.log_file:
            from chalicelib.observability import redirect_output

            redirect_output(self.log_file.open("a", encoding="utf-8"))
        self.gateway = LocalApiGateway(
            self.app_module.app, port=self.gateway_port, tls=server_ssl_context(self.gateway_tls)
        ).start()
        # Slack posts interactions to the app's public URL, as configured in the Slack app.
        self.slack.interactions_url = f"{self.gateway.url}/slack/interactions"
        self.slack.ca_file = str(self.gateway_ca_file)

    def _loaded_app(self) -> ModuleType:
        """The app module the gateway runs (loaded by _start_gateway, which starts first)."""
        if self.app_module is None:
            raise RuntimeError("the local gateway has not been started")
        return self.app_module

    def mint(self, identity: str | dict[str, Any], **overrides: Any) -> str:
        return self.oidc.mint(identity, **overrides)

    def endpoints(self) -> dict[str, str]:
        """Each running component and the address it serves, for liveness checks."""
        found = {
            "AWS emulation (moto server)": self.aws.endpoint_url,
            "OIDC issuer": self.oidc.base_url,
        }
        if self.kube:
            found["Kubernetes API emulator"] = self.kube.url
        found["Slack fake"] = self.slack.url
        if self.gateway:
            found["gateway"] = self.gateway.url
        if self.control:
            found["control endpoint"] = self.control.url
        return found

    def first_dead_component(self) -> str | None:
        return next((name for name, url in self.endpoints().items() if not responds(url)), None)

    def state(self) -> dict[str, Any]:
        """What another process needs to use this stack (written by ``up --state-file``)."""
        assert self.kube is not None
        return {
            "gateway_url": self.gateway_url,
            "cluster": CLUSTER,
            "aws_endpoint_url": self.aws.endpoint_url,
            "oidc_url": self.oidc.base_url,
            "kube_url": self.kube.url,
            "kube_ca_pem": self.kube.ca_pem.decode(),
            "workdir": str(self.workdir),
            "gateway_ca_file": str(self.gateway_ca_file),
            "control_url": self.control.url if self.control else "",
            "slack_url": self.slack.url,
            "token_files": {n: str(self.write_token_file(n)) for n in DEMO_IDENTITIES},
        }

    def write_token_file(self, identity: str) -> Path:
        path = self.workdir / f"{identity}.token"
        path.write_text(self.mint(identity, ttl_seconds=3600))
        path.chmod(0o600)
        return path


def eksgate_command() -> str:
    """The eksgate executable of this installation, for kubeconfig exec entries."""
    beside = Path(sys.executable).parent / "eksgate"
    return str(beside) if beside.exists() else shutil.which("eksgate") or "eksgate"


def write_kubeconfig(stack: LocalStack, path: Path) -> None:
    """A context per demo identity, each running `eksgate token` with its token file."""
    import yaml

    from eksgate.token_cmd import kubeconfig_entry, merge_kubeconfig

    config: dict[str, Any] = {}
    for name in DEMO_IDENTITIES:
        entry = kubeconfig_entry(
            CLUSTER,
            stack.gateway_url,
            token_file=str(stack.write_token_file(name)),
            context=f"{CLUSTER}-{name}",
            command=eksgate_command(),
            ca_data=base64.b64encode(stack.gateway_tls.ca_pem).decode(),
            ca_file=str(stack.gateway_ca_file),
        )
        config = merge_kubeconfig(config, entry)
    config["current-context"] = f"{CLUSTER}-ci-agent"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def up(args: Any) -> int:
    """Start the stack, print how to use it, and run until Ctrl-C (or SIGTERM)."""
    stack = LocalStack(
        policy_dir=Path(args.policies) if args.policies else None,
        extra_env={
            "EKSGATE_WATCH_TIMEOUT_SECONDS": str(args.watch_timeout),
            "EKSGATE_APPROVAL_WAIT_SECONDS": str(args.approval_wait),
        },
        gateway_port=args.gateway_port,
        slack_echo=not args.quiet,
    )
    try:
        stack.start()
    except ComponentError as exc:
        print(f"eksgate local: {exc}", file=sys.stderr)
        return 1
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        kubeconfig = Path(args.kubeconfig).resolve()
        write_kubeconfig(stack, kubeconfig)
        if args.state_file:
            state_file = Path(args.state_file)
            temporary = state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps({**stack.state(), "kubeconfig": str(kubeconfig)}))
            temporary.replace(state_file)  # readers never see half a file
        print(
            f"""eksgate local stack is up.
  gateway:          {stack.gateway_url}  (kubectl server: {stack.gateway_url}/k8s/{CLUSTER})
  AWS (moto):       {stack.aws.endpoint_url}
  OIDC issuer:      {stack.oidc.base_url} (iss {stack.oidc.issuer})
  Kubernetes (emulator, a test tool): {stack.kube.url if stack.kube else ""}
  Slack (fake):     {stack.slack.url}  (approval messages print here)
  kubeconfig:       {kubeconfig}
                    contexts: {", ".join(f"{CLUSTER}-{n}" for n in DEMO_IDENTITIES)}

Try:
  export KUBECONFIG={kubeconfig}
  kubectl get pods -n shop
  kubectl get secret db-credentials -n shop -o yaml     # values come back masked
  kubectl delete namespace shop                          # refused by policy

Press Ctrl-C to stop everything.""",
            flush=True,
        )
        try:
            while not stopped.wait(2.0):
                dead = stack.first_dead_component()
                if dead:
                    print(
                        f"eksgate local: the {dead} stopped responding; stopping everything",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
        except KeyboardInterrupt:
            pass
    finally:
        print("\nstopping...", flush=True)
        stack.stop()
    return 0


def demo(args: Any) -> int:
    from eksgate_local.demo import run_demo

    return run_demo()
