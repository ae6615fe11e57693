"""The package's import graph has one circle, the documented core (docs/ARCHITECTURE.md): the
tensor's methods call the ops and the ops make tensors. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CORE = {
    "wally.autograd", "wally.autograd.anomaly_mode", "wally.autograd.function",
    "wally.autograd.gradients", "wally.autograd.versions", "wally.linalg", "wally.ops",
    "wally.ops_index", "wally.ops_math", "wally.ops_shape", "wally.tensor",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "wally").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in the file (``from a import b``
    counts ``a.b`` where that is a module, else ``a``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in modules else base)
    return {m for m in out if m in modules and m != name}


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_only_import_circle_is_the_core():
    circles = _circles(_graph())
    assert circles == [CORE], [sorted(c) for c in circles]


def test_the_check_sees_a_circle_when_there_is_one():
    graph = _graph()
    graph["wally.geometric.edges"] = graph["wally.geometric.edges"] | {"wally.geometric.utils"}
    circles = _circles(graph)
    assert any({"wally.geometric.edges", "wally.geometric.utils"} <= c for c in circles)
