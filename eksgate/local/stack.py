"""``eksgate local up|demo``: the whole system on loopback, with no AWS account.

Components start in order; if one fails, the message names it and everything already
started is stopped. Ports are picked free at start, so two stacks never collide.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from eksgate.local.aws import LocalAws, create_signing_key
from eksgate.local.gateway_server import LocalApiGateway
from eksgate.local.oidc_issuer import DEMO_IDENTITIES, LocalOidcIssuer
from eksgate.local.stage import PROJECT_DIR, local_app_environment

CLUSTER = "demo"


class ComponentError(Exception):
    def __init__(self, component: str, cause: BaseException) -> None:
        super().__init__(f"{component} failed to start: {cause}")
        self.component = component


def load_app_module(project_dir: Path = PROJECT_DIR) -> ModuleType:
    """Import the project's app.py, the same file Chalice deploys."""
    spec = importlib.util.spec_from_file_location("app", project_dir / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


class LocalStack:
    """Everything eksgate needs, in this process, on loopback."""

    def __init__(self, log_file: Path | None = None) -> None:
        self.log_file = log_file
        self.aws = LocalAws()
        self.oidc = LocalOidcIssuer()
        self.gateway: LocalApiGateway | None = None
        self.app_module: ModuleType | None = None
        self._started: list[tuple[str, Callable[[], None]]] = []
        self._saved_env: dict[str, str | None] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="eksgate-local-"))

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

    def start(self) -> "LocalStack":
        self._start("AWS emulation (moto server)", self.aws.start, self.aws.stop)
        self._start("AWS provisioning", self._provision, lambda: None)
        self._start("OIDC issuer", self.oidc.start, self.oidc.stop)
        self._start("app environment", self._configure_app, self._restore_env)
        self._start("gateway (app.py behind a local API Gateway)", self._start_gateway,
                    lambda: self.gateway.stop() if self.gateway else None)
        return self

    def stop(self) -> None:
        while self._started:
            _, stop = self._started.pop()
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                print(f"warning: stopping a component failed: {exc}", file=sys.stderr)

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _provision(self) -> None:
        env = local_app_environment(self.oidc.jwks_url)
        create_signing_key(self.aws.client("secretsmanager"), env["EKSGATE_SIGNING_SECRET_ID"])

    def _configure_app(self) -> None:
        env = {**self.aws.environment(), **local_app_environment(self.oidc.jwks_url),
               # the agent CLI's credential cache stays inside this run
               "XDG_CACHE_HOME": str(self.workdir / "cache")}
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
        self.gateway = LocalApiGateway(self.app_module.app).start()

    def mint(self, identity: str, **overrides: Any) -> str:
        return self.oidc.mint(identity, **overrides)

    def write_token_file(self, identity: str) -> Path:
        path = self.workdir / f"{identity}.token"
        path.write_text(self.mint(identity, ttl_seconds=3600))
        path.chmod(0o600)
        return path


def up(args: Any) -> int:
    """Start the stack, print how to use it, and run until Ctrl-C."""
    from eksgate.token_cmd import kubeconfig_entry, merge_kubeconfig
    import yaml

    stack = LocalStack()
    try:
        stack.start()
    except ComponentError as exc:
        print(f"eksgate local: {exc}", file=sys.stderr)
        return 1
    try:
        kubeconfig = Path(args.kubeconfig).resolve()
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {}
        for name in DEMO_IDENTITIES:
            entry = kubeconfig_entry(CLUSTER, stack.gateway_url,
                                     token_file=str(stack.write_token_file(name)),
                                     context=f"{CLUSTER}-{name}")
            config = merge_kubeconfig(config, entry)
        config["current-context"] = f"{CLUSTER}-ci-agent"
        kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        kubeconfig.chmod(0o600)
        print(f"""eksgate local stack is up.
  gateway:     {stack.gateway_url}
  AWS (moto):  {stack.aws.endpoint_url}
  OIDC issuer: {stack.oidc.base_url} (iss {stack.oidc.issuer})
  kubeconfig:  {kubeconfig}  (contexts: {', '.join(f'{CLUSTER}-{n}' for n in DEMO_IDENTITIES)})

Try:
  export KUBECONFIG={kubeconfig}
  eksgate token --cluster {CLUSTER} --gateway {stack.gateway_url} --oidc-token-file {stack.workdir}/ci-agent.token

Press Ctrl-C to stop everything.""", flush=True)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
    finally:
        print("\nstopping...", flush=True)
        stack.stop()
    return 0


def demo(args: Any) -> int:
    from eksgate.local.demo import run_demo
    return run_demo()
