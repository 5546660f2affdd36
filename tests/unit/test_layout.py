"""The package's shape: no import cycles in `lsp_server` (the server knows none of its
features; `app.py` composes them), and `engine` knows nothing about LSP."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules(package: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of `known` that `path` imports anywhere (in functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            inside = submodules & known.keys()
            found.update(inside)
            if len(inside) < len(submodules):  # names defined in the module itself
                found.add(node.module)
    return found & known.keys()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_lsp_server_has_no_import_cycle() -> None:
    modules = _modules("lsp_server")
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert "lsp_server.features.lifecycle" in graph["lsp_server.app"]
    assert not any(m.startswith("lsp_server.features") for m in graph["lsp_server.server"])
    assert _cycles(graph) == []


def test_the_engine_knows_nothing_about_lsp() -> None:
    for path in _modules("engine").values():
        names = {
            alias.name if isinstance(node, ast.Import) else node.module or ""
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        lsp = {n for n in names if n.split(".")[0] in ("lsp_server", "pygls", "lsprotocol")}
        assert not lsp, f"{path.relative_to(ROOT)} imports {sorted(lsp)}"
