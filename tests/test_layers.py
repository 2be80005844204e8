"""Import layering (DESIGN.md, "Layers"): upper layers use lower ones, never the reverse.

    cli → bench → tasks → engine and methods → nn / data / metrics / attacks → registry / config / atomic
    report renders results for cli and bench.

Every ``import`` in ``src/trustvis`` is read with :mod:`ast` (function-level imports included), so a lazy import
inside a function counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "trustvis"

LOWER = {"data", "metrics", "nn", "attacks"}
ABOVE_LOWER = {"engine", "methods", "tasks", "bench", "cli", "report"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the ``trustvis`` modules ``path`` imports (``from trustvis import x`` -> trustvis.x)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "trustvis"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "trustvis":
                continue
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names if mod == "trustvis"}
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


def test_the_scanner_sees_imports():
    """Not blind: known edges are found, lazy (function-level) ones included."""
    g = _graph()
    assert "trustvis.registry" in g["trustvis.cli"]
    assert any(m.startswith("trustvis.bench") for m in g["trustvis.cli"])  # lazy, inside cmd_bench
    assert "trustvis.methods.detect.base" in g["trustvis.methods.detect.cnndet"]


def _violations(rule) -> list[str]:
    return sorted(f"{m} imports {t}" for m, targets in _graph().items() for t in targets if rule(m, t))


@pytest.mark.parametrize(
    "name,rule",
    [
        (
            "data, metrics, nn and attacks import nothing above them",
            lambda m, t: _layer(m) in LOWER and _layer(t) in ABOVE_LOWER,
        ),
        (
            "the engine imports no method module (only the Method interface)",
            lambda m, t: _layer(m) == "engine" and _layer(t) == "methods" and t != "trustvis.methods.base",
        ),
        (
            "the engine and the methods import no task, bench, report or cli",
            lambda m, t: (
                _layer(m) in ("engine", "methods") and _layer(t) in ("tasks", "bench", "report", "cli")
            ),
        ),
        (
            "nothing but cli imports bench",
            lambda m, t: _layer(t) == "bench" and _layer(m) not in ("bench", "cli"),
        ),
        (
            "nothing but the entry point imports cli",
            lambda m, t: _layer(t) == "cli" and m not in ("trustvis.__main__", "trustvis.cli"),
        ),
        (
            "report imports no bench, task or cli",
            lambda m, t: _layer(m) == "report" and _layer(t) in ("bench", "tasks", "cli"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_layering(name, rule):
    bad = _violations(rule)
    assert not bad, f"{name}; violations:\n  " + "\n  ".join(bad)
