"""The catalog as data: the shipped services.yaml, its validation, host patterns, overrides."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import get_args

import pytest
import yaml

from governance.facts import Category
from governance.schema import ApiName, CategoryName, ProviderDef
from proxy.catalog.hosts import HostIndex, parse_host
from proxy.catalog.services import (
    API_SHAPES,
    SHARED_HOSTS,
    Catalog,
    CatalogError,
    Provider,
    builtin_providers,
    load_builtin,
    load_services,
    packed_text,
    provider_from_def,
)

ROOT = Path(__file__).resolve().parents[3]
SERVICES = builtin_providers()
CATALOG = Catalog()

# Names below shared suffixes that must stay DIRECT / unmatched: a wildcard or pattern that
# catches one of these would send a whole cloud or a whole company's products to the rule.
SHARED_BELOW = [
    "s3.us-east-1.amazonaws.com",
    "ec2.eu-west-1.amazonaws.com",
    "bedrock.us-east-1.amazonaws.com",
    "lambda.us-east-1.amazonaws.com",
    "storage.googleapis.com",
    "www.googleapis.com",
    "youtube.googleapis.com",
    "maps.googleapis.com",
    "mail.google.com",
    "docs.google.com",
    "classroom.google.com",
    "translate.google.com",
    "lens.google.com",
    "www.bing.com",
    "outlook.office.com",
    "teams.microsoft.com",
    "management.azure.com",
    "myvault.vault.azure.net",
    "raw.githubusercontent.com",
    "gist.github.com",
    "cdn.discordapp.com",
    "web.whatsapp.com",
    "www.snapchat.com",
    "huggingface.co",
    "cdn-lfs.huggingface.co",
    "api.cloudflare.com",
    "dash.cloudflare.com",
    "www.khanacademy.org",
    "brainly.com",
]


def _doc(*entries: dict[str, object]) -> str:
    return yaml.safe_dump({"services": list(entries)})


def _entry(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "box",
        "display": "Box",
        "category": "assistant",
        "api": "web",
        "hosts": ["box.example.com"],
        "note": "The box.",
        "docs": ["https://box.example.com/docs"],
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


# --- the shipped file -------------------------------------------------------------------


def test_data_file_ships_in_the_package() -> None:
    assert resources.files("proxy.catalog").joinpath("services.yaml").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "services.yaml" in config["tool"]["setuptools"]["package-data"]["proxy.catalog"]


YAML = (ROOT / "proxy" / "catalog" / "services.yaml").read_bytes()


def fields(services: tuple[Provider, ...]) -> list[tuple[object, ...]]:
    return [tuple(getattr(p, f) for f in Provider.__slots__) for p in services]  # docs too


def test_the_packed_copy_is_current_and_ships() -> None:
    packed = ROOT / "proxy" / "catalog" / "services.json"
    assert packed.read_text() == packed_text(YAML), (
        "proxy/catalog/services.json is behind services.yaml: run `make schema`"
    )
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "services.json" in config["tool"]["setuptools"]["package-data"]["proxy.catalog"]
    assert fields(builtin_providers()) == fields(load_services(YAML.decode()))


def test_the_packed_copy_is_read_only_for_the_bytes_it_was_written_from() -> None:
    packed = packed_text(YAML).encode()
    assert fields(load_builtin(YAML, packed)) == fields(load_services(YAML.decode()))
    # it is what is read while it matches: a packed copy that differs shows through ...
    doc = json.loads(packed)
    doc["services"] = doc["services"][:1]
    assert [p.name for p in load_builtin(YAML, json.dumps(doc).encode())] == ["openai"]
    # ... and never once the YAML changed (an edit not yet packed), nor when it is broken
    edited = YAML.replace(b"name: openai\n", b"name: openai-edited\n", 1)
    assert load_builtin(edited, packed)[0].name == "openai-edited"
    for broken in (b"", b"{", b"[]", json.dumps({**doc, "services": [{}]}).encode(), None):
        assert fields(load_builtin(YAML, broken)) == fields(load_services(YAML.decode()))


def test_at_least_eighty_services_with_hosts_of_their_own() -> None:
    assert len([s for s in SERVICES if s.hosts]) >= 80


def test_every_category_has_services() -> None:
    counts = {c.value: 0 for c in Category}
    for service in SERVICES:
        counts[service.category] += 1
    assert all(counts.values()), counts


def test_names_and_hosts_are_unique() -> None:
    names = [s.name for s in SERVICES]
    assert len(names) == len(set(names))
    hosts = [h for s in SERVICES for h in s.hosts]
    assert len(hosts) == len(set(hosts)), sorted(h for h in hosts if hosts.count(h) > 1)


def test_categories_and_api_shapes_are_known_everywhere() -> None:
    assert set(get_args(CategoryName)) == {c.value for c in Category}
    assert set(API_SHAPES) == set(get_args(ApiName))
    for service in SERVICES:
        assert service.category in {c.value for c in Category}, service.name
        assert service.api in API_SHAPES, service.name


def test_every_entry_has_a_display_name_a_note_and_docs() -> None:
    for service in SERVICES:
        assert service.display and service.note, service.name
        assert service.docs and all(d.startswith("https://") for d in service.docs), service.name
        if not service.hosts:  # a service living on shared hosts says so
            assert "cannot be separated" in service.note, service.name


@pytest.mark.parametrize("host", sorted(SHARED_HOSTS) + SHARED_BELOW)
def test_no_shared_host_is_matched(host: str) -> None:
    assert CATALOG.match(host) is None, f"{host} matched {CATALOG.match(host)}"


def test_hosts_are_written_normalised_and_parse() -> None:
    for service in SERVICES:
        for host in service.hosts:
            assert parse_host(host).text == host, (service.name, host)


def test_every_pattern_lists_names_for_dns_tools() -> None:
    for service in SERVICES:
        specs = [parse_host(h) for h in service.hosts]
        for spec in specs:
            if spec.kind == "pattern":
                assert any(spec.matches(n) for n in service.dns_names), spec.text
        for name in service.dns_names:
            assert CATALOG.match(name) is service or CATALOG.match(name) == service, name


def test_each_exact_host_finds_its_own_service() -> None:
    for service in SERVICES:
        for host in service.hosts:
            spec = parse_host(host)
            probe = host if spec.kind == "exact" else host.replace("*", "zz9")
            found = CATALOG.match(probe)
            assert found is not None and found.name == service.name, (probe, found)


# --- validation of the document -------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([_entry(), _entry(hosts=["other.example.com"])], "'box' is used twice"),
        ([_entry(), _entry(name="box2")], "listed by both 'box' and 'box2'"),
        ([_entry(category="friends")], "category 'friends' is not one of api, assistant"),
        ([_entry(api="grpc")], "api 'grpc' is not one of openai"),
        ([_entry(hosts=["www.google.com"])], "'www.google.com', a host shared"),
        ([_entry(hosts=["*.googleapis.com"])], "a host shared"),
        ([_entry(hosts=["*.amazonaws.com"])], "a host shared"),
        ([_entry(hosts=["x-*.a.b"], dns_names=[])], "list the names it stands for"),
        ([_entry(hosts=["x-*.a.b"], dns_names=["y-1.a.b"])], "matches none of the entry's"),
        ([_entry(hosts=["a.*"])], "literal domain"),
        ([_entry(hosts=["Box.Example.com"])], "write it as 'box.example.com'"),
        ([_entry(hosts=["https://box.example.com"])], "is not a host name"),
        ([_entry(homepage="x")], "unknown field(s) homepage"),
        ([_entry(note=None)], "missing note"),
        ([_entry(note="  ")], "note must be a non-empty string"),
        ([_entry(docs=["http://box.example.com"])], "is not an https:// address"),
        ([_entry(docs=[])], "docs must not be empty"),
        ([_entry(name="Box")], "name must be lower-case"),
        (["just a string"], "each service is a mapping"),
    ],
)
def test_bad_catalog_documents_are_refused_with_the_entry(
    entries: list[object], message: str
) -> None:
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_services(yaml.safe_dump({"services": entries}))


@pytest.mark.parametrize("text", ["", "services: []", "[1, 2]", "services: [\n", "other: 1"])
def test_malformed_documents_are_refused(text: str) -> None:
    with pytest.raises(CatalogError, match="services.yaml"):
        load_services(text)


def test_a_valid_document_loads_with_every_field() -> None:
    [service] = load_services(
        _doc(
            _entry(
                hosts=["box.example.com", "*.box.example.net", "llm-*.example.org"],
                dns_names=["llm-eu.example.org"],
                note="The box,\n  on two lines.",
            )
        )
    )
    assert service == Provider(
        "box",
        ("box.example.com", "*.box.example.net", "llm-*.example.org"),
        "web",
        "assistant",
        "Box",
        "The box, on two lines.",
        ("llm-eu.example.org",),
    )
    assert service.docs == ("https://box.example.com/docs",)


# --- host patterns ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "host", "hit"),
    [
        ("*-aiplatform.googleapis.com", "us-central1-aiplatform.googleapis.com", True),
        ("*-aiplatform.googleapis.com", "aiplatform.googleapis.com", False),
        ("*-aiplatform.googleapis.com", "-aiplatform.googleapis.com", False),
        ("*-aiplatform.googleapis.com", "a.b-aiplatform.googleapis.com", False),
        ("*-aiplatform.googleapis.com", "us-aiplatform.googleapis.com.evil.net", False),
        ("bedrock-runtime.*.amazonaws.com", "bedrock-runtime.eu-west-1.amazonaws.com", True),
        ("bedrock-runtime.*.amazonaws.com", "bedrock-runtime.amazonaws.com", False),
        ("bedrock-runtime.*.amazonaws.com", "bedrock-runtime.a.b.amazonaws.com", False),
        ("bedrock-runtime.*.amazonaws.com", "x.bedrock-runtime.a.amazonaws.com", False),
        ("llm-*-eu.example.org", "llm-7-eu.example.org", True),
        ("llm-*-eu.example.org", "llm--eu.example.org", False),
        ("*.gpu-*.example.org", "a.b.gpu-1.example.org", True),
        ("*.gpu-*.example.org", "gpu-1.example.org", False),
    ],
)
def test_patterns_match_within_one_label(pattern: str, host: str, hit: bool) -> None:
    spec = parse_host(pattern)
    assert spec.kind == "pattern" and spec.matches(host) is hit
    index: HostIndex[str] = HostIndex([(spec, "x")])
    assert (index.find(host) == "x") is hit


def test_most_specific_entry_wins() -> None:
    index: HostIndex[str] = HostIndex(
        (parse_host(h), v)
        for h, v in [
            ("*.example.org", "wide"),
            ("*-ai.example.org", "pattern"),
            ("eu-ai.example.org", "exact"),
            ("*.sub.example.org", "narrow"),
            ("x-*.sub.example.org", "narrow-pattern"),
        ]
    )
    assert index.find("eu-ai.example.org") == "exact"
    assert index.find("us-ai.example.org") == "pattern"  # a pattern before "*." at one anchor
    assert index.find("www.example.org") == "wide"
    assert index.find("a.sub.example.org") == "narrow"
    assert index.find("x-1.sub.example.org") == "narrow-pattern"
    assert index.find("example.org") is None


def test_allow_hosts_patterns_cover_in_label_patterns() -> None:
    patterns = Catalog().allow_hosts_patterns()

    def allowed(hostport: str) -> bool:
        return any(re.search(p, hostport, re.IGNORECASE) for p in patterns)

    assert allowed("me-west9-aiplatform.googleapis.com:443")
    assert allowed("bedrock-runtime.il-central-1.amazonaws.com")
    assert not allowed("x.us-aiplatform.googleapis.com:443")
    assert not allowed("s3.us-east-1.amazonaws.com:443")


def _near_misses(host: str) -> list[str]:
    """A catalog host made concrete, and the names around it a merged regex could confuse."""
    name = host.replace("*.", "a.b.").replace("*", "x")
    head, _, rest = name.partition(".")
    names = [
        name,
        "www." + name,
        name[1:],
        "x" + name,
        name + "x",
        name + ".evil.net",
        head + "-" + rest,
        rest,
        head[:-1] + "." + rest if len(head) > 1 else rest,
    ]
    return [n for n in names if not n.startswith(".")]  # not a name a connection carries


def test_merged_allow_hosts_regex_agrees_with_the_catalog_on_every_host() -> None:
    # allow_hosts is one trie-merged regex; it must accept exactly what match() knows.
    [pattern] = CATALOG.allow_hosts_patterns()
    merged = re.compile(pattern, re.IGNORECASE)
    checked = 0
    for provider in CATALOG.providers:
        for host in provider.hosts:
            for name in _near_misses(host):
                known = CATALOG.match(name) is not None
                for form in (name, f"{name}:443", f"{name}.:8443"):
                    assert (merged.search(form) is not None) == known, (host, form)
                    checked += 1
    assert checked > 2000


def test_host_specs_list_every_host_with_its_service() -> None:
    specs = CATALOG.host_specs()
    assert {(p.name, s.text) for p, s in specs} == {
        (p.name, h) for p in CATALOG.providers for h in p.hosts
    }
    kinds = {s.kind for _, s in specs}
    assert kinds == {"exact", "suffix", "pattern"}


# --- the rules file's providers ----------------------------------------------------------


def test_rules_entry_keeps_the_builtin_fields_it_leaves_out() -> None:
    builtin = CATALOG.get("character-ai")
    assert builtin is not None
    merged = provider_from_def(ProviderDef(name="character-ai", hosts=["c.ai"]), builtin)
    assert (merged.api, merged.category, merged.display) == ("web", "companion", "Character.AI")
    assert merged.hosts == ("c.ai",)


@pytest.mark.parametrize(
    ("fields", "api", "category"),
    [
        ({}, "openai", "api"),
        ({"api": "web"}, "web", "assistant"),
        ({"api": "web", "category": "companion"}, "web", "companion"),
        ({"category": "homework"}, "openai", "homework"),
    ],
)
def test_new_rules_entry_defaults(fields: dict[str, str], api: str, category: str) -> None:
    found = provider_from_def(
        ProviderDef.model_validate({"name": "pal", "hosts": ["pal.lan"]} | fields)
    )
    assert (found.api, found.category) == (api, category)


@pytest.mark.parametrize(
    "host", ["llm-*.example.org", "bedrock-runtime.*.example.com", "*.lan", "ollama.lan"]
)
def test_rules_file_accepts_host_patterns(host: str) -> None:
    assert ProviderDef(name="pal", hosts=[host]).hosts == [host]


@pytest.mark.parametrize("host", ["a.*.org", "llm.*", "**.x.org", "x.org:80", "https://x.org"])
def test_rules_file_refuses_bad_patterns(host: str) -> None:
    with pytest.raises(ValueError, match="is not a host name or pattern"):
        ProviderDef(name="pal", hosts=[host])
