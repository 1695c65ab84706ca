"""Where the database is: ``--database URL`` (or ``HEARTHGATE_DATABASE``) read once.

``sqlite:///path`` (absolute: ``sqlite:////var/lib/hearthgate/hearthgate.db``; relative:
``sqlite:///var/hearthgate.db``) or ``postgresql://user:pass@host:port/dbname`` (also
``postgres://``, and libpq's ``?sslmode=...`` style options). Without one, the database is
``<state-dir>/hearthgate.db``. A bare path where a target is expected means a state
directory, as everywhere before PostgreSQL existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DB_NAME = "hearthgate.db"
ENV = "HEARTHGATE_DATABASE"


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "sqlite" | "postgresql"
    path: Path | None = None  # the SQLite file
    dsn: str | None = None  # the PostgreSQL connection string, password included

    @property
    def shared(self) -> bool:
        """Several gates may use this database at once (and do their locking there)."""
        return self.kind == "postgresql"

    @property
    def display(self) -> str:
        """The URL without its password: safe for logs, ``/healthz`` and error messages."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        from urllib.parse import urlsplit, urlunsplit  # for a URL only: a SQLite file needs none

        parts = urlsplit(self.dsn or "")
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit((parts.scheme, user + host, parts.path, "", ""))

    def __repr__(self) -> str:  # never a password in a traceback or a log line
        return f"Target({self.display!r})"


def sqlite_in(state_dir: str | Path) -> Target:
    return Target("sqlite", path=Path(state_dir) / DB_NAME)


def target_of(value: Target | str | Path) -> Target:
    """A target from what callers hold: a Target, a database URL, or a state directory."""
    if isinstance(value, Target):
        return value
    text = str(value)
    if "://" in text:
        return parse_url(text)
    return sqlite_in(value)


def parse_url(url: str, state_dir: str | Path | None = None) -> Target:
    """A ``--database`` value; ValueError with the accepted forms when it is none of them."""
    text = url.strip()
    if not text:
        if state_dir is None:
            raise ValueError("no database given")
        return sqlite_in(state_dir)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme == "sqlite":
        path = text.split("://", 1)[1]
        if not path.startswith("/") or path == "/":
            raise ValueError(_FORMS.format(url=_masked(text)))
        return Target("sqlite", path=Path(path[1:]))  # sqlite:///rel, sqlite:////abs
    if scheme in ("postgresql", "postgres"):
        from urllib.parse import urlsplit

        parts = urlsplit(text)
        if not (parts.hostname or "host=" in parts.query) or not parts.path.strip("/"):
            raise ValueError(
                f"{_masked(text)}: a PostgreSQL URL names a host and a database, "
                "as postgresql://USER:PASSWORD@HOST:5432/DBNAME"
            )
        return Target("postgresql", dsn="postgresql" + text[len(scheme) :])
    raise ValueError(_FORMS.format(url=_masked(text)))


_FORMS = (
    "{url}: not a database URL; use sqlite:///RELATIVE/PATH.db, sqlite:////ABSOLUTE/PATH.db "
    "or postgresql://USER:PASSWORD@HOST:5432/DBNAME"
)


def _masked(text: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(text)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return text
