"""A real PostgreSQL server for the tests, from Debian's packages, in a temporary directory.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``
(installed by ``tools/ensure-test-packages``) on a free loopback port, trusting local
connections. PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the
unprivileged ``nobody`` and is started as that user. ``fresh_url()`` gives each test a schema
of its own (``options=-csearch_path=...``), so tests share one server and never see each
other's tables. ``stop()`` / ``start_again()`` take the server away and bring it back for
the outage tests.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

USER = "hearthgate"
DBNAME = "hearthgate"


def find_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(found[0]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="hg-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._owner = pwd.getpwnam("nobody")
            os.chmod(self.root, 0o755)
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)

    @property
    def base_url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DBNAME}"

    def fresh_url(self) -> str:
        """A URL whose tables live in a new, empty schema of the shared database."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.base_url}?options={quote(f'-csearch_path={name}')}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        owner = self._owner
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(self.root)},
            timeout=120,
        )

    def start(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")
        self.start_again()
        import psycopg

        with psycopg.connect(
            f"postgresql://{USER}@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {DBNAME}")
        return self

    def start_again(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
