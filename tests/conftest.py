"""Shared test helpers: rules from YAML text, facts for a device, a UTC clock."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """One real PostgreSQL server for the session (Debian's packages; skipped without them)."""
    from tests.support.postgres import PostgresServer, find_bin

    bindir = find_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (tools/ensure-test-packages installs it)")
    server = PostgresServer(bindir).start()
    yield server
    server.destroy()


@pytest.fixture
def pg_url(postgres) -> str:  # type: ignore[no-untyped-def]
    """A database URL with an empty schema of its own, for one test."""
    return str(postgres.fresh_url())
