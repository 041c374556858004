"""No import cycle in src/unigs (issue 14 bar): the module-level imports of every module form a DAG.

Imports inside functions are not edges (they run later, when every module is loaded); imports under
`if TYPE_CHECKING:` are not either (they never run). Everything else at module level is, including imports
inside a module-level `try`/`if`, since they run when the module is first imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported: not in a def/lambda/class body of a
    function, not under `if TYPE_CHECKING:`."""
    found = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            else:
                visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def import_graph(root: Path, package: str = "unigs") -> dict[str, set[str]]:
    """`module -> modules of `package` it imports at module level`, for every module under `root/package`.
    `from a import b` points at `a.b` when that is a module, else at `a`; both also at the packages above
    them that the importer is not inside."""
    paths = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in module_level_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the module's own package upward
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            for target in (t for t in targets if t in paths):
                edges.add(target)
                # importing `a.b.c` first runs the packages `a` and `a.b`, unless they are the importer's
                # own packages (those are initialised before the importer runs)
                parts = target.split(".")
                for k in range(1, len(parts)):
                    package = ".".join(parts[:k])
                    if package in paths and not (name == package or name.startswith(package + ".")):
                        edges.add(package)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as `[a, b, …, a]`, or None (iterative depth-first search, sorted for a stable
    message)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_src_has_no_import_cycle():
    graph = import_graph(SRC)
    assert len(graph) > 50 and "unigs.cli" in graph
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in src/unigs: {' -> '.join(cycle)}"


def write_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("b_text, cycle", [
    ("from pkg import a\n", ["pkg.a", "pkg.b", "pkg.a"]),  # a submodule named in `from pkg import`
    ("from .a import f\n", ["pkg.a", "pkg.b", "pkg.a"]),  # relative
    ("try:\n    import pkg.a\nexcept ImportError:\n    pass\n", ["pkg.a", "pkg.b", "pkg.a"]),
    ("def f():\n    from pkg import a\n", None),  # deferred to call time: not a cycle
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n", None),
    ("import pkg.sub.leaf\n", ["pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.a"]),  # via a package __init__
    ("from pkg.sub import c\n", ["pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.a"]),
    ("import pkg.sub.c\nimport pkg\n", ["pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.a"]),
])
def test_cycle_finder_on_hand_made_packages(tmp_path, b_text, cycle):
    """The walker sees the cycles Python would trip over, and only those (`pkg.sub.own` imports its own
    package's `leaf` while `pkg.sub` imports `own`: no cycle)."""
    root = write_package(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import g\n",
                                    "pkg/b.py": b_text, "pkg/sub/__init__.py": "from pkg.sub import c, own\n",
                                    "pkg/sub/c.py": "import pkg.a\n", "pkg/sub/leaf.py": "",
                                    "pkg/sub/own.py": "import pkg.sub.leaf\n"})
    assert find_cycle(import_graph(root, "pkg")) == cycle
