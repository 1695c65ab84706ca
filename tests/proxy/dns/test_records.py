"""``hearthgate dns records`` and the names DNS mode answers itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.catalog.providers import Catalog, Provider
from proxy.dns import names
from proxy.dns.config import parse_listen
from proxy.dns.records import FORMATS, parse_addresses, render
from proxy.dns.upstream import Upstream, parse_upstream, points_at_gate

HEARTHGATE = str(Path(sys.executable).with_name("hearthgate"))
ROOT = Path(__file__).resolve().parents[3]
CATALOG = Catalog([Provider("home-ollama", ("ollama.lan", "*.models.lan"), "openai")])
V4, V6 = parse_addresses(["192.168.1.2", "fd00::2"])


def test_every_catalog_host_points_at_the_gate_in_every_format() -> None:
    exact = {h for p in CATALOG.providers for h in p.hosts if not h.startswith("*")}
    for fmt in FORMATS:
        text = render(fmt, CATALOG.providers, [V4])
        missing = [h for h in exact if h not in text]
        assert not missing, (fmt, missing)
        assert "192.168.1.2" in text


@pytest.mark.parametrize(
    ("fmt", "lines"),
    [
        ("dnsmasq", ["host-record=api.openai.com,192.168.1.2", "host-record=api.openai.com,fd00::2",
                     "address=/models.lan/192.168.1.2", "local=/models.lan/",
                     "address=/use-application-dns.net/"]),
        ("unbound", ['  local-data: "api.openai.com. 300 IN A 192.168.1.2"',
                     '  local-data: "api.openai.com. 300 IN AAAA fd00::2"',
                     '  local-zone: "models.lan." redirect',
                     '  local-zone: "use-application-dns.net." always_nxdomain']),
        ("hosts", ["192.168.1.2 ollama.lan", "fd00::2 ollama.lan", "#   *.models.lan"]),
        ("pihole", ["192.168.1.2 api.anthropic.com", "#   address=/models.lan/192.168.1.2"]),
        ("adguard", ["    - domain: '*.models.lan'", "      answer: 'fd00::2'",
                     "#   ||use-application-dns.net^"]),
    ],
)  # fmt: skip
def test_format_lines(fmt: str, lines: list[str]) -> None:
    text = render(fmt, CATALOG.providers, [V4, V6]).splitlines()
    for line in lines:
        assert line in text, (fmt, line)


def test_block_doh_adds_the_resolvers() -> None:
    assert "address=/dns.google/" in render("dnsmasq", CATALOG.providers, [V4], block_doh=True)
    assert "dns.google" not in render("dnsmasq", CATALOG.providers, [V4])


def test_a_pattern_is_written_as_its_listed_names_and_named() -> None:
    odd = [
        Provider(
            "bedrock",
            ("bedrock-runtime.*.amazonaws.com",),
            "openai",
            dns_names=("bedrock-runtime.us-east-1.amazonaws.com",),
        )
    ]
    text = render("dnsmasq", odd, [V4]).splitlines()
    assert "host-record=bedrock-runtime.us-east-1.amazonaws.com,192.168.1.2" in text
    assert "#   bedrock-runtime.*.amazonaws.com" in text
    assert not any(line.startswith("address=/") and "amazonaws" in line for line in text)


def test_the_shipped_catalog_renders_in_every_format() -> None:
    catalog = Catalog()
    for fmt in FORMATS:
        text = render(fmt, catalog.providers, [V4, V6], block_doh=True)
        assert "api.openai.com" in text and "fd00::2" in text


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq is not installed")
def test_dnsmasq_accepts_the_records(tmp_path: Path) -> None:
    conf = tmp_path / "hearthgate.conf"
    conf.write_text(render("dnsmasq", CATALOG.providers, [V4, V6], block_doh=True))
    done = subprocess.run(
        ["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, done.stderr


def test_cli_prints_records_and_refuses_a_bad_address() -> None:
    args = [HEARTHGATE, "dns", "records", "--rules", str(ROOT / "rules" / "household.yaml")]
    done = subprocess.run([*args, "--format", "hosts", "--address", "10.0.0.2"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0 and "10.0.0.2 api.openai.com" in done.stdout
    bad = subprocess.run([*args, "--format", "hosts", "--address", "gate.lan"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode == 2 and "'gate.lan' is not an IPv4 or IPv6 address" in bad.stderr


def test_the_cli_offers_every_format() -> None:
    from proxy.cli import dns as cli_dns

    assert cli_dns.FORMATS == FORMATS


def test_addresses_are_checked() -> None:
    for bad in ("0.0.0.0", "224.0.0.1", "nope"):
        with pytest.raises(ValueError):
            parse_addresses([bad])
    with pytest.raises(ValueError, match="give the gate's address"):
        parse_addresses([])


@pytest.mark.parametrize(
    ("name", "canary", "doh"),
    [
        ("use-application-dns.net", True, False),
        ("USE-application-dns.net.", True, False),
        ("dns.google", False, True),
        ("abc123.dns.nextdns.io", False, True),
        ("notdns.google", False, False),
        ("google", False, False),
        ("api.openai.com", False, False),
    ],
)
def test_names_answered_by_the_gate(name: str, canary: bool, doh: bool) -> None:
    assert (names.is_canary(name), names.is_doh_resolver(name)) == (canary, doh)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.1.1.1", Upstream("1.1.1.1", 53)),
        ("1.1.1.1:5353", Upstream("1.1.1.1", 5353)),
        ("2606:4700::1111", Upstream("2606:4700::1111", 53)),
        ("[::1]:5300", Upstream("::1", 5300)),
    ],
)
def test_upstreams_parse(text: str, parsed: Upstream) -> None:
    assert parse_upstream(text) == parsed


@pytest.mark.parametrize("text", ["dns.google", "1.1.1.1:0", "1.1.1.1:x", "0.0.0.0", "[::1]x"])
def test_bad_upstreams_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_upstream(text)


def test_listen_and_loop_check() -> None:
    assert parse_listen("53") == ("", 53)
    assert parse_listen("192.168.1.2:53") == ("192.168.1.2", 53)
    assert parse_listen("[::1]:5353") == ("::1", 5353)
    for bad in ("gate.lan:53", "70000", "x"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    assert points_at_gate(Upstream("127.0.0.1", 53), "0.0.0.0", 53)  # every local address
    assert points_at_gate(Upstream("127.0.0.5", 53), "", 53)
    assert not points_at_gate(Upstream("127.0.0.1", 5353), "0.0.0.0", 53)
    assert not points_at_gate(Upstream("192.0.2.200", 53), "0.0.0.0", 53)
    assert points_at_gate(Upstream("10.9.9.9", 53), "10.9.9.9", 53)
    assert not points_at_gate(Upstream("127.0.0.1", 53), "10.9.9.9", 53)
