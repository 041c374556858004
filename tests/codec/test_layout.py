"""Φ's layout: codec modules import each other without a circle, stay under 400 lines, and the reference
shares no code with the clean-up it checks."""

from __future__ import annotations

import ast
from pathlib import Path

import unigs.codec

ROOT = Path(unigs.codec.__file__).parent


def codec_imports() -> dict[str, set[str]]:
    """Module name (``unigs.codec.x``) → the codec modules it imports, at any depth in the file."""
    graph = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("unigs.codec"):
                for alias in node.names:  # `from unigs.codec import x` imports module x if there is one
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if (ROOT.parent.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                             or (ROOT.parent.parent / Path(*sub.split("."))).is_dir() else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("unigs.codec")}
        graph[name] = deps - {name}
    return graph


def test_no_import_circle_in_codec():
    graph = codec_imports()
    assert "unigs.codec.dichotomy" in graph and "unigs.codec._loops.groups" in graph
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for dep in graph.get(node, ()):
            assert state.get(dep) != 1, f"import circle: {' → '.join(path + [dep])}"
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_no_codec_file_over_400_lines():
    long = {p.name: n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_reference_shares_no_clean_up_code():
    deps = codec_imports()["unigs.codec.reference"]
    assert not deps & {"unigs.codec.cleanup", "unigs.codec.dichotomy", "unigs.codec.workscale",
                       "unigs.codec._loops", "unigs.codec._loops.groups", "unigs.codec._loops.pixels"}, deps
