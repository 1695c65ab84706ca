"""The deployment recipes (deploy/, systemd/), each checked by the tool that understands it.

systemd-analyze checks the unit, nft the router ruleset, dnsmasq the DNS recipe, promtool the
Prometheus configuration and alert rules, node the PAC file. A test whose tool is missing is
skipped on a developer's machine and fails in CI (CI=true), where `make test` installs the
tools first with tools/ensure-deploy-tools. The rest are plain Python: the generated files
are current, and the dashboard and alerts use only the metrics of SPEC section 8, which the
gate really exports.
"""

from __future__ import annotations

import configparser
import importlib.util
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from mitmproxy import options
from mitmproxy.addons import block
from mitmproxy.proxy.mode_servers import WireGuardServerInstance
from mitmproxy.proxy.mode_specs import ProxyMode, WireGuardMode

from proxy.catalog.providers import Catalog
from proxy.cli.main import build_parser
from proxy.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = ROOT / "systemd" / "hearthgate.service"
NFT = DEPLOY / "nftables" / "hearthgate.nft"
DNSMASQ = DEPLOY / "dnsmasq" / "hearthgate.conf"
PAC = DEPLOY / "pac" / "proxy.pac"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "hearthgate.json"
WIREGUARD = DEPLOY / "wireguard"
SEVERAL = DEPLOY / "several-gates"
GATE_UNITS = sorted(SEVERAL.glob("hearthgate-*.service"))

# SPEC section 8, as Prometheus stores them (counters end in _total).
_COUNTERS = "decisions tokens rules_reloads decision_log_written decision_log_dropped"
SPEC_METRICS = {
    "counter": {f"hearthgate_{n}" for n in f"{_COUNTERS} override_attempts errors".split()},
    "gauge": {"hearthgate_emergency_active", "hearthgate_decision_log_queue_depth"},
    "histogram": {"hearthgate_decision_duration_seconds"},
}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
SERIES = {
    name + suffix
    for kind, names in SPEC_METRICS.items()
    for name in names
    for suffix in SUFFIXES[kind]
}

# SPEC section 12 (several gates): which gate, and whether it reaches the shared database
SEVERAL_GATES_SERIES = {"hearthgate_database_up", "hearthgate_gate_info"}

PROMQL_FUNCTIONS = set(
    "sum max min avg count rate increase irate histogram_quantile sort sort_desc topk bottomk"
    " clamp_min max_over_time min_over_time absent vector scalar".split()
)
PROMQL_WORDS = set(
    "by without on ignoring group_left group_right and or unless bool offset".split()
)


# ---- helpers ----------------------------------------------------------------------------


def need(name: str) -> str:
    """The path of tool *name*; skips the test without it (fails in CI, which installs it)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path:
        return path
    message = f"{name} is not installed (run tools/ensure-deploy-tools as root to add it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def load_generator() -> ModuleType:
    path = DEPLOY / "pac" / "generate.py"
    spec = importlib.util.spec_from_file_location("hearthgate_pac_generate", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unit_entries() -> dict[str, list[str]]:
    """The unit's [Service] settings, continuation lines joined: name -> values in order."""
    text = UNIT.read_text().replace("\\\n", " ")
    entries: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value.strip())
    return entries


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads; AssertionError on an unknown function."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)  # matchers, ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?", text):
        word, is_call = match.group(0).rstrip("( \t"), match.group(1)
        if is_call:
            assert word in PROMQL_FUNCTIONS, f"unknown PromQL function {word!r} in {expr!r}"
        elif word not in PROMQL_WORDS:
            names.add(word)
    return names


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and query:
            found = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
            assert found, f"templating query {query!r}: expected label_values(metric, label)"
            exprs.append(found.group(1))
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


# ---- systemd ----------------------------------------------------------------------------


def systemd_root(tmp_path: Path) -> Path:
    """A file-system root in which `systemd-analyze verify --root` can check the unit.

    verify insists that ExecStart's program exists and is executable, and the unit names the
    installed path /opt/hearthgate/.venv/bin/hearthgate, which a developer's machine or CI
    does not have. Rewriting ExecStart would verify a different unit; instead the unit is
    verified as it is, inside a throwaway root that has an executable stand-in at exactly
    that path. --root also makes verify look up the units it depends on (sysinit.target and
    the like) inside that root, so the machine's own unit directory is copied in beside it.
    """
    root = tmp_path / "root"
    program = Path(shlex.split(unit_entries()["ExecStart"][0])[0].lstrip("-@:+!"))
    stand_in = root / program.relative_to("/")
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    units = next(
        (
            d
            for d in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
            if (d / "sysinit.target").exists()
        ),
        None,
    )
    if units is None:
        pytest.skip("this machine has no systemd unit directory to verify against")
    shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "lib").symlink_to("usr/lib")  # absolute links in there may say /lib/systemd
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    return root


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = need("systemd-analyze")
    root = systemd_root(tmp_path)
    result = run(tool, "verify", f"--root={root}", "--man=no", UNIT.name)
    # verify exits 0 on unknown or malformed settings ("Unknown key ..., ignoring"), so any
    # message about the unit counts as a failure too.
    complaints = [line for line in result.stderr.splitlines() if "hearthgate" in line]
    assert result.returncode == 0 and not complaints, result.stderr


def test_unit_is_hardened(tmp_path: Path) -> None:
    tool = need("systemd-analyze")
    root = systemd_root(tmp_path)
    result = run(tool, "security", "--offline=yes", f"--root={root}", UNIT.name)
    if "--offline" in result.stderr and result.returncode != 0:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    # 0 is sealed, 10 is root with everything; 1.5 with systemd 252. A network service
    # cannot go far below that (it needs sockets and the network), and must not drift up;
    # the margin is for newer systemd versions, which weigh a few more settings.
    assert float(found.group(1)) <= 2.5, result.stdout


def test_unit_settings_fit_the_gate() -> None:
    entries = unit_entries()
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        # binding 53, 80 and 443 for DNS mode, and nothing else
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "StateDirectory": "hearthgate",
        "ConfigurationDirectory": "hearthgate",
        "Restart": "on-failure",
        "SystemCallFilter": "@system-service",
    }.items():
        assert value in entries.get(key, []), f"{key}={value} missing from the unit"
    assert entries.get("DynamicUser") == ["yes"] or entries.get("User") == ["hearthgate"]
    families = set(entries["RestrictAddressFamilies"][0].split())
    assert families == set("AF_INET AF_INET6 AF_UNIX AF_NETLINK".split())  # netlink: ip neigh
    assert entries["MemoryMax"]
    env = dict(item.split("=", 1) for item in entries["Environment"])

    argv = shlex.split(entries["ExecStart"][0])
    assert argv[:2] == ["/opt/hearthgate/.venv/bin/hearthgate", "run"]
    args = build_parser().parse_args(argv[1:])
    assert str(args.rules) == env["HEARTHGATE_RULES"] == "/etc/hearthgate/household.yaml"
    assert str(args.state_dir) == env["HEARTHGATE_STATE_DIR"] == "/var/lib/hearthgate"
    gate_port = re.search(r"define GATE_PORT = (\d+)", NFT.read_text())
    assert gate_port and args.listen_port == int(gate_port.group(1)), "unit and nftables differ"
    assert args.listen_host == "", "listen on IPv4 and IPv6: the router recipe redirects both"
    for mode in args.mode:
        ProxyMode.parse(mode)
    opts = options.Options()
    block.Block().load(opts)  # the addon that declares block_global
    opts.set(*args.sets)  # a misspelt option or a bad value raises here


def test_documented_modes_are_valid_mitmproxy_modes() -> None:
    texts = [UNIT.read_text(), (WIREGUARD / "README.md").read_text()]
    specs = {m for text in texts for m in re.findall(r"--mode (\S+?)`?(?:\s|$)", text)}
    modes = [ProxyMode.parse(spec) for spec in specs]  # ValueError on a bad spec
    wireguard = [mode for mode in modes if mode.type_name == "wireguard"]
    assert {"regular", "transparent"} <= specs and wireguard
    for mode in wireguard:
        assert isinstance(mode, WireGuardMode) and mode.custom_listen_port
        # hearthgate names the device after the key file: alice-phone.conf is "alice-phone"
        assert Path(mode.data).suffix == ".conf" and Path(mode.data).stem.endswith(
            ("-phone", "-tablet")
        ), mode.full_spec


def test_shell_scripts_parse() -> None:
    for script in (ROOT / "tools" / "ensure-deploy-tools", DEPLOY / "bin" / "hearthgate"):
        result = run("sh", "-n", script)
        assert result.returncode == 0, result.stderr
        assert os.access(script, os.X_OK), f"{script} is not executable"


# ---- nftables and dnsmasq ---------------------------------------------------------------


def variant_b(text: str) -> str:
    """The ruleset with the commented "VARIANT B" lines (LLM addresses only) switched on."""
    lines, changed = [], 0
    for line in text.splitlines():
        body = line.strip()
        if body.startswith(("tcp dport { 80, 443 } redirect", "udp dport 443 reject")):
            line, changed = line.replace(body, "# " + body), changed + 1
        elif re.match(r"# ip6? daddr @llm[46] ", body):
            line, changed = line.replace("# ", "", 1), changed + 1
        lines.append(line)
    assert changed == 6, "expected 2 default lines and 4 commented VARIANT B lines"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("variant", ["A", "B"])
def test_nftables_ruleset_passes_nft_check(variant: str, tmp_path: Path) -> None:
    nft = need("nft")
    ruleset = NFT
    if variant == "B":
        ruleset = tmp_path / "hearthgate-b.nft"
        ruleset.write_text(variant_b(NFT.read_text()))
    # `nft -c` only checks, but it asks the kernel. Inside a new, empty network namespace
    # (unshare -rn) it cannot touch this machine's own firewall even by mistake, and works
    # without root where user namespaces are allowed.
    unshare = shutil.which("unshare")
    result = run(unshare, "-rn", nft, "-c", "-f", ruleset) if unshare else None
    if result is None or "unshare" in result.stderr:
        result = run(nft, "-c", "-f", ruleset)
    if "Operation not permitted" in result.stderr and os.environ.get("CI") != "true":
        pytest.skip("nft -c needs root or user namespaces here")
    assert result.returncode == 0, result.stderr


def test_nftables_and_dnsmasq_agree() -> None:
    ruleset, dns = NFT.read_text(), DNSMASQ.read_text()
    assert "table inet hearthgate {" in ruleset
    for name in ("llm4", "llm6"):
        assert re.search(rf"^\s*set {name} {{", ruleset, re.M), f"set {name} missing"
    specs = set(re.findall(r"^nftset=/[^#\n]+/(\S+)$", dns, re.M))
    assert specs == {"4#inet#hearthgate#llm4,6#inet#hearthgate#llm6"}
    live = [line.strip() for line in ruleset.splitlines() if not line.strip().startswith("#")]
    assert "tcp dport { 80, 443 } redirect to :$GATE_PORT" in live
    assert "udp dport 443 reject with icmpx type port-unreachable" in live


def test_dnsmasq_config_passes_dnsmasq_test() -> None:
    dnsmasq = need("dnsmasq")
    result = run(dnsmasq, "--test", "-C", DNSMASQ)
    assert result.returncode == 0, result.stderr


def test_dnsmasq_host_list_is_current() -> None:
    gen = load_generator()
    text = DNSMASQ.read_text()
    assert gen.update_block(text, gen.render_dnsmasq(gen.providers())) == text, (
        "deploy/dnsmasq/hearthgate.conf is behind the catalog: run deploy/pac/generate.py"
    )
    covered = {d for line in re.findall(r"^nftset=/(.+)/\S+$", text, re.M) for d in line.split("/")}
    for provider, spec in Catalog().host_specs():
        if spec.kind == "pattern":  # dnsmasq matches whole labels: the listed names stand in
            names = [n for n in provider.dns_names if spec.matches(n)]
            assert names, f"{provider.name}: {spec.text} has no dns_names"
            assert set(names) <= covered, spec.text
        else:
            assert spec.anchor in covered, spec.text


# ---- PAC --------------------------------------------------------------------------------


def test_pac_file_is_current() -> None:
    gen = load_generator()
    assert gen.render_pac(gen.providers()) == PAC.read_text(), (
        "deploy/pac/proxy.pac is behind the catalog: run deploy/pac/generate.py"
    )
    assert run(sys.executable, DEPLOY / "pac" / "generate.py", "--check").returncode == 0


def pac_cases() -> dict[str, str]:
    """Host -> what the PAC file must answer, by the gate's own catalog lookup."""
    catalog = Catalog()
    # near misses, other sites, and how browsers may spell a host
    hosts = set(
        "example.com www.google.com github.com openai.com azure.com openai.azure.com"
        " api.openai.com.example.net xapi.openai.com notclaude.ai claude.ai. API.OpenAI.com"
        " eu.myco.openai.azure.com".split()
    )
    for provider, spec in catalog.host_specs():
        if spec.kind == "suffix":
            hosts.add("myco." + spec.anchor)
        elif spec.kind == "pattern":  # a name of it, and near misses around its stars
            hosts.update(n for n in provider.dns_names if spec.matches(n))
            hosts.add(spec.text.replace("*", "zz9-new"))
            hosts.add(spec.text.replace("*", "a.b"))
            hosts.add("x." + spec.text.replace("*", "q"))
        else:
            hosts.add(spec.text)
    return {host: "PROXY gate.lan:8080" if catalog.match(host) else "DIRECT" for host in hosts}


def test_pac_routes_llm_hosts_to_the_gate(tmp_path: Path) -> None:
    node = need("node")
    script = tmp_path / "proxy.js"  # node --check wants a .js name
    script.write_text(PAC.read_text())
    result = run(node, "--check", script)
    assert result.returncode == 0, result.stderr
    cases = pac_cases()
    harness = tmp_path / "harness.js"
    harness.write_text(
        # the browsers' helpers the PAC file may use, as Mozilla defines them
        "function dnsDomainIs(host, domain) {\n"
        "  return host.length >= domain.length &&\n"
        "    host.substring(host.length - domain.length) == domain;\n}\n"
        "function shExpMatch(str, exp) {\n"
        "  var re = exp.replace(/[.+^${}()|[\\]\\\\]/g, '\\\\$&')"
        ".replace(/\\*/g, '.*').replace(/\\?/g, '.');\n"
        "  return new RegExp('^' + re + '$').test(str);\n}\n"
        "function isPlainHostName(host) { return host.indexOf('.') < 0; }\n"
        + PAC.read_text()
        + f"\nvar hosts = {json.dumps(sorted(cases))};\nvar out = {{}};\n"
        "hosts.forEach(function (h) { out[h] = FindProxyForURL('https://' + h + '/', h); });\n"
        "console.log(JSON.stringify(out));\n"
    )
    result = run(node, harness)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    wrong = {h: answers[h] for h in cases if answers[h] != cases[h]}
    assert not wrong, f"PAC answers that differ from the gate's catalog: {wrong}"
    assert answers["api.openai.com"] == answers["chatgpt.com"] == "PROXY gate.lan:8080"
    assert answers["example.com"] == "DIRECT"


# ---- Prometheus -------------------------------------------------------------------------


def test_prometheus_config_passes_promtool() -> None:
    promtool = need("promtool")
    result = run(promtool, "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    job = next(job for job in scrape if job["job_name"] == "hearthgate")
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8090"]  # the --admin default


def test_alert_rules_pass_promtool_check() -> None:
    promtool = need("promtool")
    result = run(promtool, "check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests() -> None:
    promtool = need("promtool")
    result = run(promtool, "test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_where_it_fires() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in alert_rules()}
    assert {"HearthgateDown", "HearthgateDecisionLogDropping"} <= names
    assert names == firing, f"alerts never tested firing: {names - firing}"


def test_queries_parse_as_promql(tmp_path: Path) -> None:
    promtool = need("promtool")
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        re.sub(r"\$__\w+", "5m", e).replace("$device", ".*") for e in dashboard_exprs(dashboard)
    ]
    # promtool has no command to check a lone query; recording rules are queries it checks
    records = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(promtool, "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_use_only_spec_metrics() -> None:
    for expr in dashboard_exprs(json.loads(DASHBOARD.read_text())):
        assert metric_names(expr) <= SERIES | SEVERAL_GATES_SERIES, f"not a SPEC metric in {expr!r}"
    for rule in alert_rules():
        # `up` is Prometheus' own: whether the scrape of the gate worked
        assert metric_names(rule["expr"]) <= SERIES | {"up"}, rule["expr"]


def test_spec_metrics_are_what_the_gate_exports() -> None:
    metrics = Metrics()
    metrics.bind_state(lambda: False, lambda: 0, lambda: 0, lambda: 0)
    exported = {
        kind: {f.name for f in metrics.registry.collect() if f.type == kind}
        for kind in SPEC_METRICS
    }
    for kind, names in SPEC_METRICS.items():
        assert names <= exported[kind], f"{kind}s missing: {names - exported[kind]}"


# ---- Grafana ----------------------------------------------------------------------------


def test_several_gates_metrics_are_what_the_gate_exports() -> None:
    metrics = Metrics()
    metrics.bind_database(lambda: True, "gate-a", "postgresql")
    exported = {f.name for f in metrics.registry.collect()}
    assert SEVERAL_GATES_SERIES <= exported


def test_every_dashboard_query_can_be_narrowed_to_one_gate() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names[0] == "instance"
    for expr in [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]:
        for selector in re.findall(r"hearthgate_\w+(\{[^}]*\})?", expr):
            assert 'instance=~"$instance"' in selector, expr


def test_dashboard_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"] and panel["gridPos"]["w"] > 0, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source and target["expr"], panel["title"]


def test_dashboard_has_the_panels_parents_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = {p["title"]: p for p in dashboard["panels"] if p["type"] != "row"}
    exprs = {title: " ".join(t["expr"] for t in p["targets"]) for title, p in panels.items()}
    by_action = panels["Decisions by action and device"]
    assert by_action["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert "by (action, device)" in exprs["Decisions by action and device"]
    assert 'action="block"' in exprs["Blocked by stage"]
    assert "by (device" in exprs["Tokens by device"]
    latency = exprs["Decision latency"]
    assert "histogram_quantile(0.5," in latency and "histogram_quantile(0.99," in latency
    assert panels["Emergency override"]["type"] == "stat"
    log = exprs["Decision log: queue and losses"]
    assert "hearthgate_decision_log_queue_depth" in log
    assert "hearthgate_decision_log_dropped_total" in log


# ---- WireGuard --------------------------------------------------------------------------


def test_wireguard_peer_template_matches_mitmproxy() -> None:
    peer = configparser.ConfigParser()
    peer.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    peer.read_string((WIREGUARD / "peer-template.conf").read_text())
    assert set(peer["Interface"]) >= {"PrivateKey", "Address", "DNS"}
    assert set(peer["Peer"]) >= {"PublicKey", "AllowedIPs", "Endpoint"}
    # the addresses mitmproxy gives every client, from the configuration it prints
    printed = inspect.getsource(WireGuardServerInstance.client_conf)
    for key in ("Address", "DNS"):
        found = re.search(rf"{key} = (\S+)", printed)
        assert found and peer["Interface"][key] == found.group(1), key
    allowed = {ip.strip() for ip in peer["Peer"]["AllowedIPs"].split(",")}
    assert allowed == {"0.0.0.0/0", "::/0"}, "all traffic through the gate, IPv6 included"


# ---- several gates on one PostgreSQL (deploy/several-gates/) ---------------------------


def test_two_gate_units_exist_and_differ_only_where_they_must() -> None:
    assert [u.name for u in GATE_UNITS] == ["hearthgate-a.service", "hearthgate-b.service"]
    entries = [_entries_of(u) for u in GATE_UNITS]
    for key in ("StateDirectory", "ExecStart"):
        assert entries[0][key] != entries[1][key], key
    for unit in entries:
        argv = shlex.split(unit["ExecStart"][0])
        assert "--instance" in argv and "--database" not in argv  # the password stays off argv
        assert unit["EnvironmentFile"] == ["/etc/hearthgate/database.env"]
        assert "postgresql.service" in unit["After"][0]
        args = build_parser().parse_args(argv[1:])
        assert args.instance in ("gate-a", "gate-b")
    hardening = {"ProtectSystem", "NoNewPrivileges", "CapabilityBoundingSet", "SystemCallFilter"}
    main = unit_entries()
    for unit in entries:
        assert {k: unit[k] for k in hardening} == {k: main[k] for k in hardening}


@pytest.mark.parametrize("unit", GATE_UNITS, ids=lambda p: p.name)
def test_gate_units_pass_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    tool = need("systemd-analyze")
    root = systemd_root(tmp_path)
    shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    env = root / "etc/hearthgate/database.env"
    env.parent.mkdir(parents=True, exist_ok=True)
    env.write_text("HEARTHGATE_DATABASE=postgresql://hearthgate:x@127.0.0.1:5432/hearthgate\n")
    result = run(tool, "verify", f"--root={root}", "--man=no", unit.name)
    complaints = [line for line in result.stderr.splitlines() if "hearthgate" in line]
    assert result.returncode == 0 and not complaints, result.stderr


def test_several_gates_prometheus_config_passes_promtool_and_names_each_gate() -> None:
    promtool = need("promtool")
    result = run(promtool, "check", "config", "prometheus.yml", cwd=SEVERAL)
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = yaml.safe_load((SEVERAL / "prometheus.yml").read_text())["scrape_configs"]
    [job] = [j for j in scrape if j["job_name"] == "hearthgate"]
    found = {c["labels"]["instance"]: c["targets"] for c in job["static_configs"]}
    admin = {}
    for unit in GATE_UNITS:
        args = build_parser().parse_args(shlex.split(_entries_of(unit)["ExecStart"][0])[1:])
        admin[args.instance] = [f"127.0.0.1:{args.admin.rsplit(':', 1)[1]}"]
    assert found == admin


def _entries_of(path: Path) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries
