"""The emulator's pretend container processes for ``pods/exec`` (a test tool, not a shell).

Each pod gets a tiny deterministic filesystem and environment derived from its spec and the
seed, and a handful of commands:

``echo ARGS``, ``cat [FILE|-]...`` (no file: stdin until end-of-input), ``ls [DIR]``,
``env`` / ``printenv [NAME]``, ``exit N``, ``sleep SECONDS``, ``seq N`` (much text),
``head -c N /dev/urandom`` (deterministic binary bytes) or ``/dev/zero``, ``tail -f FILE``
(prints, then never ends), ``wc -c`` (counts
stdin), ``sh -c "ONE COMMAND"`` (split with shell quoting, no pipes). Anything else answers
as a container runtime does: ``executable file not found`` and exit code 127.

Planted on purpose, for masking tests: the ``shop`` namespace's ``web`` pods carry
``/etc/app/config.yaml`` with :data:`CONFIG_API_KEY` and the seeded database password.
Environment variables taken from Secrets are resolved as the kubelet would, so ``env`` in a
``worker`` pod prints ``DB_PASSWORD=...`` too.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Object = dict[str, Any]

# Planted in /etc/app/config.yaml of the shop web pods (fake; masking must catch it).
CONFIG_API_KEY = "AKIAIOSFODNN7EXAMPLE"
CONFIG_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
MAX_GENERATED_BYTES = 64 * 1024 * 1024  # seq/head never produce more than this


@dataclass
class ExecIO:
    """What a pretend process can touch: stdin, its two outputs, and a stop signal."""

    read_stdin: Callable[[float], bytes | None]  # b"" at end-of-input, None on timeout
    write_stdout: Callable[[bytes], None]
    write_stderr: Callable[[bytes], None]
    stopped: threading.Event  # the client went away or the emulator is stopping


def container_files(pod: Object, container: str) -> dict[str, bytes]:
    """The pod's files: a few system files, plus the planted config for shop web pods."""
    meta = pod.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    files = {
        "/etc/hostname": f"{name}\n".encode(),
        "/etc/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
        "/etc/resolv.conf": (
            f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
            "nameserver 172.20.0.10\noptions ndots:5\n"
        ).encode(),
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace": namespace.encode(),
    }
    labels = meta.get("labels") or {}
    if namespace == "shop" and labels.get("app") == "web":
        from .seed import DATABASE_URL  # the seed imports nothing from here

        files["/etc/app/config.yaml"] = (
            "# shop web front end\n"
            "listen: 0.0.0.0:80\n"
            "upstream: http://worker.shop.svc.cluster.local:8080\n"
            f"database_url: {DATABASE_URL}\n"
            "aws:\n"
            f"  access_key_id: {CONFIG_API_KEY}\n"
            f"  secret_access_key: {CONFIG_SECRET_KEY}\n"
            "cache_ttl_seconds: 300\n"
        ).encode()
        files["/etc/app/features.txt"] = b"checkout-v2=on\nreviews=off\n"
    return files


def container_env(
    pod: Object, container: str, read_secret: Callable[[str, str, str], str | None]
) -> list[str]:
    """``NAME=value`` lines as the kubelet would set them (Secret references resolved)."""
    meta = pod.get("metadata") or {}
    spec_env: list[Object] = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        if isinstance(c, dict) and c.get("name") == container:
            spec_env = [e for e in c.get("env") or [] if isinstance(e, dict)]
    lines = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"HOSTNAME={meta.get('name', '')}",
    ]
    for var in spec_env:
        value = var.get("value")
        ref = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
        if value is None and ref:
            value = read_secret(
                meta.get("namespace", ""), str(ref.get("name", "")), str(ref.get("key", ""))
            )
        lines.append(f"{var.get('name', '')}={value or ''}")
    lines += ["KUBERNETES_SERVICE_HOST=172.20.0.1", "KUBERNETES_SERVICE_PORT=443", "HOME=/root"]
    return lines


def secret_reader(
    get_secret: Callable[[str, str], Object | None],
) -> Callable[[str, str, str], str | None]:
    """Turn a Secret lookup into the ``read_secret`` that :func:`container_env` needs."""

    def read(namespace: str, name: str, key: str) -> str | None:
        secret = get_secret(namespace, name) or {}
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        encoded = (secret.get("data") or {}).get(key)
        return base64.b64decode(encoded).decode(errors="replace") if encoded else None

    return read


def pseudo_random_bytes(seed: str, count: int) -> Iterator[bytes]:
    """Deterministic 'random' bytes in 32 KiB pieces (SHA-256 in counter mode)."""
    produced, counter = 0, 0
    while produced < count:
        piece = b"".join(
            hashlib.sha256(f"{seed}:{counter + i}".encode()).digest() for i in range(1024)
        )[: count - produced]
        counter += 1024
        produced += len(piece)
        yield piece


class PretendContainer:
    """Runs one argv against a pod's pretend files and environment; returns the exit code."""

    def __init__(self, pod: Object, files: dict[str, bytes], env: list[str], io: ExecIO) -> None:
        self.pod = pod
        self.files = files
        self.env = env
        self.io = io

    def run(self, argv: list[str]) -> int:
        if not argv:
            self.io.write_stderr(b"exec: no command given\n")
            return 126
        name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
        handler = (
            getattr(self, f"_cmd_{name.replace('-', '_')}", None) if name.isidentifier() else None
        )
        if handler is None:
            self.io.write_stderr(
                f'OCI runtime exec failed: exec failed: unable to start container process: exec: "{argv[0]}": '
                "executable file not found in $PATH: unknown\n".encode()
            )
            return 127
        return int(handler(args))

    def _cmd_sh(self, args: list[str]) -> int:
        if len(args) != 2 or args[0] != "-c":
            self.io.write_stderr(b"sh: the emulator only runs 'sh -c \"ONE COMMAND\"'\n")
            return 2
        try:
            return self.run(shlex.split(args[1]))
        except ValueError as exc:
            self.io.write_stderr(f"sh: syntax error: {exc}\n".encode())
            return 2

    def _cmd_echo(self, args: list[str]) -> int:
        self.io.write_stdout((" ".join(args) + "\n").encode())
        return 0

    def _cmd_cat(self, args: list[str]) -> int:
        status = 0
        for path in args or ["-"]:
            if path == "-":
                self._copy_stdin()
            elif path in self.files:
                self.io.write_stdout(self.files[path])
            elif self._is_dir(path):
                self.io.write_stderr(f"cat: {path}: Is a directory\n".encode())
                status = 1
            else:
                self.io.write_stderr(f"cat: {path}: No such file or directory\n".encode())
                status = 1
        return status

    def _copy_stdin(self) -> None:
        while not self.io.stopped.is_set():
            data = self.io.read_stdin(0.1)
            if data == b"":
                return
            if data:
                self.io.write_stdout(data)

    def _cmd_wc(self, args: list[str]) -> int:
        if args != ["-c"]:
            self.io.write_stderr(b"wc: the emulator only supports 'wc -c' on stdin\n")
            return 1
        total = 0
        while not self.io.stopped.is_set():
            data = self.io.read_stdin(0.1)
            if data == b"":
                break
            total += len(data or b"")
        self.io.write_stdout(f"{total}\n".encode())
        return 0

    def _is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return path == "/" or any(f.startswith(prefix) for f in self.files)

    def _cmd_ls(self, args: list[str]) -> int:
        paths = [a for a in args if not a.startswith("-")] or ["/"]
        status = 0
        for path in paths:
            if path in self.files:
                self.io.write_stdout(f"{path}\n".encode())
            elif self._is_dir(path):
                prefix = path.rstrip("/") + "/"
                entries = sorted(
                    {f[len(prefix) :].split("/", 1)[0] for f in self.files if f.startswith(prefix)}
                )
                self.io.write_stdout("".join(f"{e}\n" for e in entries).encode())
            else:
                self.io.write_stderr(
                    f"ls: cannot access '{path}': No such file or directory\n".encode()
                )
                status = 2
        return status

    def _cmd_env(self, args: list[str]) -> int:
        self.io.write_stdout("".join(f"{line}\n" for line in self.env).encode())
        return 0

    def _cmd_printenv(self, args: list[str]) -> int:
        if not args:
            return self._cmd_env(args)
        values = dict(line.split("=", 1) for line in self.env)
        found = [values[a] for a in args if a in values]
        self.io.write_stdout("".join(f"{v}\n" for v in found).encode())
        return 0 if len(found) == len(args) else 1

    def _cmd_exit(self, args: list[str]) -> int:
        try:
            return int(args[0]) % 256 if args else 0
        except ValueError:
            self.io.write_stderr(f"sh: exit: Illegal number: {args[0]}\n".encode())
            return 2

    def _cmd_true(self, args: list[str]) -> int:
        return 0

    def _cmd_false(self, args: list[str]) -> int:
        return 1

    def _cmd_sleep(self, args: list[str]) -> int:
        try:
            seconds = float(args[0]) if args else -1.0
        except ValueError:
            seconds = -1.0
        if seconds < 0:
            self.io.write_stderr(b"sleep: invalid time interval\n")
            return 1
        # Ends early when the client goes away, as if the runtime tore the session down.
        self.io.stopped.wait(seconds)
        return 0

    def _cmd_seq(self, args: list[str]) -> int:
        try:
            last = int(args[-1]) if args else -1
        except ValueError:
            last = -1
        if last < 0:
            self.io.write_stderr(b"seq: the emulator only supports 'seq N'\n")
            return 1
        batch: list[str] = []
        produced = 0
        for i in range(1, last + 1):
            batch.append(f"{i}\n")
            if len(batch) == 4096 or i == last:
                chunk = "".join(batch).encode()
                produced += len(chunk)
                if self.io.stopped.is_set() or produced > MAX_GENERATED_BYTES:
                    return 141  # as if killed by SIGPIPE
                self.io.write_stdout(chunk)
                batch = []
        return 0

    def _cmd_tail(self, args: list[str]) -> int:
        if len(args) != 2 or args[0] != "-f" or args[1] not in self.files:
            self.io.write_stderr(b"tail: the emulator only supports 'tail -f FILE'\n")
            return 1
        self.io.write_stdout(self.files[args[1]])
        self.io.stopped.wait()  # follows forever: only the client leaving ends it
        return 0

    def _cmd_head(self, args: list[str]) -> int:
        if (
            len(args) != 3
            or args[0] != "-c"
            or not args[1].isdigit()
            or args[2] not in ("/dev/urandom", "/dev/zero")
        ):
            self.io.write_stderr(
                b"head: the emulator only supports 'head -c N /dev/urandom|/dev/zero'\n"
            )
            return 1
        count = min(int(args[1]), MAX_GENERATED_BYTES)
        if args[2] == "/dev/zero":
            pieces: Iterator[bytes] = (
                b"\0" * min(32768, count - i) for i in range(0, count, 32768)
            )
        else:
            pieces = pseudo_random_bytes((self.pod.get("metadata") or {}).get("name", ""), count)
        for piece in pieces:
            if self.io.stopped.is_set():
                return 141
            self.io.write_stdout(piece)
        return 0
