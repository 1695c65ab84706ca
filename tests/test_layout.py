"""The layout holds: no import cycles, and ``governance`` stays pure.

Every ``import`` and ``from ... import`` in ``governance/`` and ``proxy/`` is read with ``ast``,
wherever it stands (module level, inside a function, under ``TYPE_CHECKING``): a lazy import
that closes a circle is still a circle in the design. A ``from package import name`` counts as
an import of the submodule when ``name`` is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("governance", "proxy")

# What the pure core may never reach: the edges, the proxy, the disk's database, the network,
# processes, and the clock (time is passed in).
FORBIDDEN_IN_GOVERNANCE = (
    "proxy",
    "mitmproxy",
    "sqlite3",
    "aiosqlite",
    "psycopg",
    "socket",
    "ssl",
    "http",
    "urllib.request",
    "httpx",
    "asyncio",
    "subprocess",
    "time",
)
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


MODULES = all_modules()


def resolve_from(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = resolve_from(module, node, is_package)
            names.add(target)
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    names.add(f"{target}.{alias.name}")
    return names


def internal_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {name for name in imports_of(module, path) if name in MODULES}
        # importing a.b.c runs a/__init__ and a/b/__init__ first, but those are docstrings
        # only here (checked below), so they are not edges of their own.
        graph[module] = targets - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Depth-first search; returns one cycle as a list of modules, or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph[node]):
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        colour[node] = black
        return None

    for start in sorted(graph):
        if colour[start] == white and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(internal_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("governance")))
def test_governance_is_pure(module: str) -> None:
    bad = sorted(
        name
        for name in imports_of(module, MODULES[module])
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_GOVERNANCE)
    )
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("governance")))
def test_governance_reads_no_clock(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text())
    calls = [
        f"line {node.lineno}: {ast.unparse(node.func)}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
        and not node.args
        and not node.keywords
        and ast.unparse(node.func.value) in {"datetime", "date", "time", "dt"}
    ]
    assert not calls, f"{module} reads the clock: {calls}"


def test_package_inits_are_docstrings_that_say_what_may_be_imported() -> None:
    for module, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        assert doc, f"{module}/__init__.py has no docstring"
        assert "import" in doc.lower(), f"{module}/__init__.py does not say what it may import"
        assert len(tree.body) == 1, f"{module}/__init__.py holds code besides its docstring"


def test_rooms_stay_small() -> None:
    for package in {p.parent for m, p in MODULES.items() if m.startswith("proxy")}:
        count = len([p for p in package.glob("*.py") if p.name != "__init__.py"])
        assert count <= 15, f"{package.relative_to(ROOT)} holds {count} modules"


def test_lower_rooms_do_not_import_upper_ones() -> None:
    upper = {
        "proxy.catalog": ("proxy.addon", "proxy.gate", "proxy.store", "proxy.admin", "proxy.cli"),
        "proxy.rules": ("proxy.addon", "proxy.gate", "proxy.store", "proxy.admin", "proxy.cli"),
        "proxy.store": ("proxy.addon", "proxy.gate", "proxy.admin", "proxy.cli", "proxy.service"),
        "proxy.admin": ("proxy.cli", "proxy.service"),
        "proxy.dns": ("proxy.admin", "proxy.cli", "proxy.service", "proxy.addon"),
    }
    for module, path in MODULES.items():
        for room, banned in upper.items():
            if module == room or module.startswith(room + "."):
                bad = sorted(
                    name
                    for name in imports_of(module, path)
                    if any(name == b or name.startswith(b + ".") for b in banned)
                )
                assert not bad, f"{module} imports {bad}"
