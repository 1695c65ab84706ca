from __future__ import annotations

from pathlib import Path

import pytest

from proxy.store.sql.target import parse_url, target_of


def test_default_is_the_state_directorys_sqlite_file(tmp_path: Path) -> None:
    target = parse_url("", tmp_path)
    assert (target.kind, target.path, target.shared) == (
        "sqlite",
        tmp_path / "hearthgate.db",
        False,
    )


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/hg.db", Path("var/hg.db")),
        ("sqlite:////var/lib/hearthgate/hearthgate.db", Path("/var/lib/hearthgate/hearthgate.db")),
        ("sqlite:///./var/hearthgate.db", Path("var/hearthgate.db")),
    ],
)
def test_sqlite_urls_relative_and_absolute(url: str, path: Path) -> None:
    assert parse_url(url).path == path


def test_postgres_url_keeps_the_password_for_the_driver_but_never_shows_it() -> None:
    target = parse_url("postgres://gate:s3cret@db.lan:5433/hearthgate?sslmode=require")
    assert target.shared and target.dsn is not None and "s3cret" in target.dsn
    assert target.dsn.startswith("postgresql://")
    assert target.display == "postgresql://gate@db.lan:5433/hearthgate"
    assert "s3cret" not in repr(target)


@pytest.mark.parametrize(
    "url",
    ["mysql://x@h/db", "sqlite://relative.db", "postgresql://gate:pw@db.lan/", "nonsense://"],
)
def test_bad_urls_name_the_accepted_forms_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_url(url)
    assert "pw" not in str(err.value).replace("postgresql", "")
    assert "postgresql://" in str(err.value) or "PostgreSQL URL" in str(err.value)


def test_a_bare_path_is_a_state_directory(tmp_path: Path) -> None:
    assert target_of(tmp_path).path == tmp_path / "hearthgate.db"
    assert target_of(str(tmp_path)).path == tmp_path / "hearthgate.db"
