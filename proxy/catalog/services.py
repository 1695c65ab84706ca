"""The catalog of AI services: the shipped data file, the rules file's additions, lookups.

The built-in services live in ``services.yaml`` beside this module, one entry per service
(name, display name, category, API shape, hosts, a note on what a host-level rule covers,
the documentation the hosts were checked against). The file is read and validated once, the
first time a ``Catalog`` is built (``hearthgate run`` does that at start); a mistake in it
stops the program with the entry's name and what is wrong. ``services.json`` beside it is the
same services validated, under the SHA-256 of the YAML they came from (``make schema``
writes it): read instead when the hash matches, it spares a command PyYAML and the
validation (80 ms on a slow box); after an edit of the YAML it is ignored until written again.

``Catalog(extra)`` is the built-in list with the rules file's ``providers:`` added, an extra
replacing the built-in entry of its name. ``Catalog.match(host)`` is the hot-path lookup
(see ``hosts.HostIndex``); ``Catalog.host_specs()`` lists every host and pattern with its
service for the generators (PAC file, DNS records).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, get_args

from governance.facts import ApiName, Category
from proxy.catalog.hosts import HostIndex, HostSpec, normalize_host, parse_host, trie_regex

if TYPE_CHECKING:
    from governance.schema import ProviderDef
    from governance.snapshot import Snapshot

__all__ = [
    "API_SHAPES",
    "CATEGORIES",
    "SHARED_HOSTS",
    "Catalog",
    "CatalogError",
    "Provider",
    "builtin_providers",
    "catalog_for",
    "load_services",
    "provider_from_def",
]

DATA_FILE = "services.yaml"
PACKED_FILE = "services.json"
API_SHAPES: tuple[str, ...] = get_args(ApiName)
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)

# Hosts that serve far more than one AI product: a host-level rule there would block (or
# send through the gate) search, mail, video, school work or a whole cloud. No built-in entry
# may match one of these; a service that lives only on such a host says so in its note.
SHARED_HOSTS: frozenset[str] = frozenset(
    """
    google.com www.google.com googleapis.com www.googleapis.com storage.googleapis.com
    fonts.googleapis.com content.googleapis.com oauth2.googleapis.com labs.google
    gstatic.com www.gstatic.com googleusercontent.com youtube.com www.youtube.com
    bing.com www.bing.com microsoft.com www.microsoft.com login.microsoftonline.com
    office.com m365.cloud.microsoft azure.com management.azure.com portal.azure.com
    blob.core.windows.net windows.net
    amazonaws.com s3.amazonaws.com s3.us-east-1.amazonaws.com ec2.us-east-1.amazonaws.com
    aws.amazon.com amazon.com
    github.com api.github.com githubusercontent.com raw.githubusercontent.com
    huggingface.co cdn-lfs.huggingface.co
    cloudflare.com api.cloudflare.com workers.dev
    apple.com icloud.com
    facebook.com www.facebook.com instagram.com www.instagram.com whatsapp.com
    whatsapp.net messenger.com
    x.com twitter.com snapchat.com tiktok.com discord.com discord.gg reddit.com
    duckduckgo.com brainly.com khanacademy.org quizlet.com chegg.com
    canva.com adobe.com www.adobe.com adobe.io notion.so
    openai.com www.openai.com
    """.split()
)

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_URL = re.compile(r"https://[^\s]+")
_FIELDS = {"name", "display", "category", "api", "hosts", "dns_names", "note", "docs"}
_REQUIRED = ("name", "display", "category", "api", "hosts", "note", "docs")


class CatalogError(ValueError):
    """The shipped catalog file is unusable; the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class Provider:
    """One AI service: how the gate recognises it and what its requests look like."""

    name: str
    hosts: tuple[str, ...]  # names and patterns (see proxy.catalog.hosts), lower-case
    api: str  # an API_SHAPES value: how request bodies are read ("web": host level only)
    category: str = Category.API.value  # a CATEGORIES value
    display: str = ""  # the name a parent knows ("Character.AI"); the name when empty
    note: str = ""  # what a host-level rule covers, and what it cannot
    dns_names: tuple[str, ...] = ()  # names a pattern stands for, for tools without patterns
    docs: tuple[str, ...] = field(default=(), compare=False)  # where the hosts were checked

    @property
    def title(self) -> str:
        return self.display or self.name


def _fail(where: str, message: str) -> CatalogError:
    return CatalogError(f"{DATA_FILE}: {where}: {message}")


def _strings(where: str, key: str, value: object, *, empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, f"{key} must be a list of non-empty strings")
    if not value and not empty:
        raise _fail(where, f"{key} must not be empty")
    return tuple(value)


def _service(index: int, entry: object) -> Provider:
    where = f"entry {index + 1}"
    if not isinstance(entry, dict):
        raise _fail(where, "each service is a mapping (name, display, category, ...)")
    name = entry.get("name")
    if isinstance(name, str):
        where = f"entry {index + 1} ({name})"
    unknown = sorted(str(k) for k in entry if k not in _FIELDS)
    missing = [k for k in _REQUIRED if k not in entry]
    if unknown or missing:
        parts = [f"unknown field(s) {', '.join(unknown)}"] if unknown else []
        parts += [f"missing {', '.join(missing)}"] if missing else []
        raise _fail(where, "; ".join(parts))
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _fail(where, "name must be lower-case letters, digits, '-', '_' or '.'")
    for key in ("display", "note"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise _fail(where, f"{key} must be a non-empty string")
    if entry["category"] not in CATEGORIES:
        raise _fail(where, f"category {entry['category']!r} is not one of {', '.join(CATEGORIES)}")
    if entry["api"] not in API_SHAPES:
        raise _fail(where, f"api {entry['api']!r} is not one of {', '.join(API_SHAPES)}")
    hosts = _strings(where, "hosts", entry["hosts"])
    docs = _strings(where, "docs", entry["docs"], empty=False)
    for url in docs:
        if not _URL.fullmatch(url):
            raise _fail(where, f"docs: {url!r} is not an https:// address")
    specs = []
    for host in hosts:
        try:
            spec = parse_host(host)
        except ValueError as exc:
            raise _fail(where, str(exc)) from None
        if spec.text != host:
            raise _fail(where, f"host {host!r}: write it as {spec.text!r}")
        specs.append(spec)
    dns_names = _strings(where, "dns_names", entry.get("dns_names", []))
    patterns = [s for s in specs if s.kind == "pattern"]
    for dns_name in dns_names:
        if not any(s.matches(dns_name) for s in patterns):
            raise _fail(where, f"dns_names: {dns_name!r} matches none of the entry's patterns")
    for spec in patterns:
        if not any(spec.matches(n) for n in dns_names):
            raise _fail(where, f"host {spec.text!r}: list the names it stands for in dns_names")
    return Provider(
        name=name,
        hosts=hosts,
        api=entry["api"],
        category=entry["category"],
        display=entry["display"].strip(),
        note=" ".join(entry["note"].split()),
        dns_names=dns_names,
        docs=docs,
    )


def load_services(text: str) -> tuple[Provider, ...]:
    """The services of a catalog document; CatalogError naming the first problem."""
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{DATA_FILE}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"services"}:
        raise CatalogError(f"{DATA_FILE}: expected a mapping with one key, services")
    entries = data["services"]
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{DATA_FILE}: services must be a non-empty list")
    services = tuple(_service(i, e) for i, e in enumerate(entries))
    _check_unique(services)
    return services


def _check_unique(services: Sequence[Provider]) -> None:
    names: set[str] = set()
    owner: dict[str, str] = {}
    for service in services:
        if service.name in names:
            raise CatalogError(f"{DATA_FILE}: the name {service.name!r} is used twice")
        names.add(service.name)
        for host in service.hosts:
            if host in owner:
                raise CatalogError(
                    f"{DATA_FILE}: host {host!r} is listed by both {owner[host]!r} "
                    f"and {service.name!r}"
                )
            owner[host] = service.name
    index = HostIndex((parse_host(h), s.name) for s in services for h in s.hosts)
    for shared in sorted(SHARED_HOSTS):
        if (found := index.find(shared)) is not None:
            raise CatalogError(
                f"{DATA_FILE}: {found!r} matches {shared!r}, a host shared with much more "
                "than one AI service; say in its note that it cannot be separated instead"
            )


@lru_cache(maxsize=1)
def builtin_providers() -> tuple[Provider, ...]:
    """The services of the shipped data file, read and validated on first use."""
    here = resources.files("proxy.catalog")
    try:
        packed: bytes | None = here.joinpath(PACKED_FILE).read_bytes()
    except OSError:
        packed = None
    return load_builtin(here.joinpath(DATA_FILE).read_bytes(), packed)


def load_builtin(source: bytes, packed: bytes | None) -> tuple[Provider, ...]:
    """The services of the YAML ``source``: from ``packed`` (services.json) when it was
    written from these very bytes, else validated from the YAML."""
    try:
        doc = json.loads(packed) if packed is not None else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("source_sha256") == _sha256(source):
        try:
            return tuple(_unpacked(entry) for entry in doc["services"])
        except (KeyError, TypeError):
            pass  # written by another version: the YAML decides
    return load_services(source.decode("utf-8"))


def packed_text(source: bytes) -> str:
    """services.json for the YAML ``source``: its services validated, under its SHA-256."""
    services = load_services(source.decode("utf-8"))
    doc = {
        "$comment": f"written from {DATA_FILE} by `make schema`; do not edit",
        "source_sha256": _sha256(source),
        "services": [{f: getattr(p, f) for f in Provider.__slots__} for p in services],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unpacked(entry: dict[str, Any]) -> Provider:
    """A Provider from its packed fields (``packed_text``): the JSON lists back to tuples."""
    return Provider(**{f: _frozen(entry[f]) for f in Provider.__slots__})


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _checked(provider: Provider) -> tuple[Provider, list[HostSpec]]:
    """*provider* with normalised hosts and their parsed forms; ValueError naming it."""
    specs = []
    for host in provider.hosts:
        try:
            specs.append(parse_host(host))
        except ValueError as exc:
            raise ValueError(
                f"provider {provider.name!r}: {exc} (write a host name, '*.suffix', or a "
                "'*' inside a label; no port, scheme or path)"
            ) from None
    return replace(provider, hosts=tuple(s.text for s in specs)), specs


class Catalog:
    """Built-in services plus the rules file's; an extra replaces a built-in of its name."""

    __slots__ = ("_providers", "_specs", "_index", "_by_name")

    def __init__(
        self, extra: Iterable[Provider] = (), builtin: Sequence[Provider] | None = None
    ) -> None:
        extras = {p.name: p for p in extra}  # the last one of a name wins
        base = builtin_providers() if builtin is None else builtin
        kept = [p for p in base if p.name not in extras]
        checked = [_checked(p) for p in kept + list(extras.values())]
        self._providers = tuple(p for p, _ in checked)
        self._specs = tuple((p, s) for p, specs in checked for s in specs)
        # extras come last, so they win a host written the same way
        self._index: HostIndex[Provider] = HostIndex((s, p) for p, s in self._specs)
        self._by_name = {p.name: p for p in self._providers}

    @property
    def providers(self) -> tuple[Provider, ...]:
        return self._providers

    def get(self, name: str) -> Provider | None:
        return self._by_name.get(name)

    def categories(self) -> dict[str, str]:
        """Service name -> category, for the log and statistics."""
        return {p.name: p.category for p in self._providers}

    def names_in(self, category: str) -> tuple[str, ...]:
        """The names of the services of *category*."""
        return tuple(p.name for p in self._providers if p.category == category)

    def match(self, host: str | None) -> Provider | None:
        """The service of *host*: the exact name first, then the most specific pattern."""
        return self._index.find(normalize_host(host))

    def host_specs(self) -> tuple[tuple[Provider, HostSpec], ...]:
        """Every host and pattern with its service, in catalog order (for generators)."""
        return self._specs

    def allow_hosts_patterns(self) -> list[str]:
        """mitmproxy's ``allow_hosts``: one regex for exactly the catalog hosts, any port.

        mitmproxy ``re.search``es every pattern against up to four "host:port" forms of each
        new connection, so one merged regex (shared prefixes folded into a trie) costs a few
        microseconds where a pattern per host cost milliseconds with a hundred services.
        """
        if not self._specs:
            return []
        body = trie_regex(sorted({s.regex for _, s in self._specs}))
        return ["^" + body + r"\.?(?::\d+)?\Z"]


def provider_from_def(defn: ProviderDef, builtin: Provider | None = None) -> Provider:
    """A rules-file ``providers:`` entry as a Provider; fields left out keep the built-in's."""
    api = defn.api or (builtin.api if builtin else "openai")
    default_category = Category.ASSISTANT.value if api == "web" else Category.API.value
    return Provider(
        name=defn.name,
        hosts=tuple(h.lower() for h in defn.hosts),
        api=api,
        category=defn.category or (builtin.category if builtin else default_category),
        display=defn.display or (builtin.display if builtin else ""),
        note=defn.note or (builtin.note if builtin else ""),
    )


def catalog_for(snap: Snapshot) -> Catalog:
    """The built-in catalog plus the rules file's ``providers:``."""
    builtin = {p.name: p for p in builtin_providers()}
    return Catalog(provider_from_def(d, builtin.get(d.name)) for d in snap.rules.providers)


if __name__ == "__main__":  # `make schema`: print services.json for the shipped YAML
    import sys

    sys.stdout.write(packed_text(resources.files("proxy.catalog").joinpath(DATA_FILE).read_bytes()))
