"""``hearthgate db migrate`` and ``--database`` on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.cli.main import main
from proxy.store import schema
from proxy.store.db import Db


def test_migrate_creates_then_reports_up_to_date_on_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "elsewhere" / "gate.db"
    args = ["db", "migrate", "--state-dir", str(tmp_path), "--database", f"sqlite:///{db}"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["backend"], out["from"], out["to"]) == ("sqlite", 0, len(schema.MIGRATIONS))
    assert db.exists() and not (tmp_path / "hearthgate.db").exists()
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_bad_database_url_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "mysql://gate:hunter2@db/hg"
    assert main(["db", "migrate", "--state-dir", str(tmp_path), "--database", url]) == 2
    err = capsys.readouterr().err
    assert "postgresql://USER:PASSWORD@HOST" in err and "hunter2" not in err
    assert main(["emergency", "status", "--state-dir", str(tmp_path), "--database", url]) == 2


def test_an_unreachable_server_is_reported_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://gate:hunter2@127.0.0.1:9/hg"  # the discard port: nothing listens
    assert main(["db", "migrate", "--state-dir", str(tmp_path), "--database", url]) == 1
    err = capsys.readouterr().err
    assert "cannot open postgresql://gate@127.0.0.1:9/hg" in err and "hunter2" not in err


@pytest.mark.postgres
def test_migrate_and_commands_use_postgres_from_the_environment(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTHGATE_DATABASE", pg_url)
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    common = ["--state-dir", str(tmp_path), "--rules", str(rules)]
    assert main(["db", "migrate", *common]) == 0
    assert "migrated from version 0" in capsys.readouterr().out
    assert (
        main(["emergency", "on", "--minutes", "5", "--reason", "exam", "--as", "mom", *common]) == 0
    )
    with Db(pg_url) as db:
        assert db.row("SELECT activated_by FROM emergency") == {"activated_by": "mom"}
    assert not (tmp_path / "hearthgate.db").exists()


def test_run_exits_1_when_its_database_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    url = "postgresql://gate:hunter2@127.0.0.1:9/hg"
    argv = ["run", "--rules", str(rules), "--state-dir", str(tmp_path), "--database", url]
    assert main([*argv, "--listen-port", "0", "--admin", "127.0.0.1:0"]) == 1
    err = capsys.readouterr().err
    assert "postgresql://gate@127.0.0.1:9/hg cannot be used" in err and "hunter2" not in err
