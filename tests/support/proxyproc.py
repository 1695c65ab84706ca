"""Run a proxy (bare ``mitmdump`` or ``hearthgate run``) as a subprocess for end-to-end tests.

::

    argv = [MITMDUMP, "--listen-host", "127.0.0.1", "--listen-port", "0", ...]
    with ProxyProcess.start(argv, env={"HEARTHGATE_TEST_UPSTREAM": fake.address}) as proxy:
        ca = proxy.wait_for_file(confdir / "mitmproxy-ca-cert.pem")
        client = httpx.Client(proxy=proxy.url, verify=ssl_context(ca))

The port is read from the proxy's own log line ("HTTP(S) proxy listening at 127.0.0.1:PORT."),
so ``--listen-port 0`` works and there is no race over a pre-picked free port. A proxy whose log
says something else can pass ``listen_pattern`` (a regex with a ``port`` group), or a fixed
``port`` (readiness is then "the port accepts TCP connections").

Every wait has a timeout; on any failure the subprocess (its whole process group) is stopped and
the error carries the proxy's output.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "DEFAULT_TIMEOUT",
    "MITMDUMP",
    "MITMPROXY_LISTEN_PATTERN",
    "ProxyProcess",
    "free_port",
    "ssl_context",
    "wait_until",
]

DEFAULT_TIMEOUT = 20.0
MITMDUMP = str(Path(sys.executable).with_name("mitmdump"))
"""``mitmdump`` next to the running interpreter, i.e. the venv's."""
MITMPROXY_LISTEN_PATTERN = r"(?i)proxy\b[^\n]*? listening at (?:\[[^\]]*\]|[^\s:\[]+):(?P<port>\d+)"
"""Matches mitmproxy's ``HTTP(S) proxy listening at 127.0.0.1:PORT.`` (also "Transparent Proxy",
"HTTP(S) proxy (upstream mode)", "reverse proxy to ..."); the first such line wins."""


def ssl_context(*ca_files: str | os.PathLike[str]) -> ssl.SSLContext:
    """A client context that trusts exactly the given PEM files (no system CAs).

    Built with ``ssl.create_default_context`` so it has the same defaults as httpx's own (on
    Python 3.13 that includes ``VERIFY_X509_STRICT``): hostname checking, CERT_REQUIRED.
    """
    if not ca_files:
        raise ValueError("ssl_context() needs at least one CA file")
    ctx = ssl.create_default_context(cafile=os.fspath(ca_files[0]))
    for ca in ca_files[1:]:
        ctx.load_verify_locations(cafile=os.fspath(ca))
    return ctx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (prefer ``--listen-port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ProxyProcess:
    """A proxy subprocess with its output captured (stdout and stderr merged)."""

    def __init__(self, popen: subprocess.Popen[str], argv: Sequence[str]) -> None:
        self.popen = popen
        self.argv = list(argv)
        self.port: int = 0
        self.host = "127.0.0.1"
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="proxy-output", daemon=True)
        self._reader.start()

    # -- starting ----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        port: int | None = None,
        listen_pattern: str = MITMPROXY_LISTEN_PATTERN,
        timeout: float = DEFAULT_TIMEOUT,
        host: str = "127.0.0.1",
        probe: bool = True,
    ) -> ProxyProcess:
        """Start ``argv`` and return once it listens (see :meth:`spawn` for ``env``).

        If ``port`` is None the port is taken from the first output line matching
        ``listen_pattern``; then readiness means the port accepts a TCP connection. A
        transparent-mode proxy passes ``probe=False``: a connection that did not come through
        a NAT redirect has no original destination, and mitmproxy exits on the error it logs
        when that happens during start-up. On failure or timeout the process is stopped and
        the error carries its output.
        """
        proc = cls.spawn(argv, env, cwd=cwd)
        try:
            if port is None:
                match = proc.wait_for_output(listen_pattern, timeout=timeout)
                proc.port = int(match["port"])
            else:
                proc.port = port
            if probe:
                proc._wait(
                    lambda: _port_open(proc.port, host), timeout, f"port {proc.port} to accept"
                )
            proc.host = host
        except BaseException:
            proc.stop()
            raise
        return proc

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
    ) -> ProxyProcess:
        """Start ``argv`` without waiting for anything (e.g. when it is expected to fail).

        ``env`` is added on top of ``os.environ``, from which proxy variables are removed so
        they cannot leak into the child.
        """
        full_env = {
            k: v
            for k, v in os.environ.items()
            if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        }
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        popen = subprocess.Popen(
            list(argv),
            env=full_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # own process group: stop() can take children down too
        )
        return cls(popen, argv)

    # -- inspection --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``httpx.Client(proxy=...)``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._lock:
                self._lines.append(line)

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if not self.alive():
                self._reader.join(timeout=2)
                raise RuntimeError(
                    f"proxy exited with code {self.popen.returncode} while waiting for {what}; "
                    f"argv={self.argv}\n--- output ---\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {timeout:.0f}s waiting for {what}; argv={self.argv}\n"
                    f"--- output ---\n{self.output}"
                )
            time.sleep(0.02)

    def wait_for_output(self, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        """Wait until the captured output matches ``pattern``; return the first match."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def check() -> bool:
            m = regex.search(self.output)
            if m:
                found.append(m)
            return m is not None

        self._wait(check, timeout, f"output matching {pattern!r}")
        return found[0]

    def wait_for_file(self, path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> Path:
        p = Path(path)
        self._wait(lambda: p.is_file() and p.stat().st_size > 0, timeout, f"file {p}")
        return p

    # -- stopping ----------------------------------------------------------------------------

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the process to exit by itself and return its exit code.

        On timeout it is stopped and TimeoutError raised.
        """
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(
                f"still running after {timeout:.0f}s; argv={self.argv}\n"
                f"--- output ---\n{self.output}"
            ) from None
        self._reader.join(timeout=2)
        return code

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL after ``timeout``; return the exit code."""
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=5)
        # No signal once the leader is reaped: its pid (= our group id) may then be reused.
        self._reader.join(timeout=2)
        return self.popen.returncode

    def _signal(self, sig: signal.Signals) -> None:
        # Only called while the leader is alive and unreaped, so the group id is still ours.
        try:
            os.killpg(self.popen.pid, sig)  # the session created by start_new_session
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
