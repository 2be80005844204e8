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
    assert "trustvis.registry" in g["trustvis.cli.info"]
    assert any(m.startswith("trustvis.bench") for m in g["trustvis.cli.bench"])  # lazy, inside cmd_bench
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
            lambda m, t: _layer(t) == "cli" and _layer(m) != "cli" and m != "trustvis.__main__",
        ),
        (
            "only the bench command imports a bench",
            lambda m, t: _layer(m) == "cli" and _layer(t) == "bench" and m != "trustvis.cli.bench",
        ),
        (
            "tasks import no bench, cli or report module but the plotting helpers",
            lambda m, t: (
                _layer(m) == "tasks"
                and (
                    _layer(t) in ("bench", "cli")
                    or (_layer(t) == "report" and not t.startswith("trustvis.report.plots"))
                )
            ),
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


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return isinstance(node, ast.Tuple | ast.List | ast.Set) and all(_is_literal(e) for e in node.elts)


def _compares_task(node: ast.AST) -> bool:
    """``x.task == "detect"``, ``task in ("a", "b")``: a branch on a task's name written out."""
    if not isinstance(node, ast.Compare):
        return False
    parts = [node.left, *node.comparators]
    names = [
        p.id if isinstance(p, ast.Name) else p.attr for p in parts if isinstance(p, ast.Name | ast.Attribute)
    ]
    return any(n in ("task", "method_task") for n in names) and any(_is_literal(p) for p in parts)


def _named_strings(tree: ast.AST) -> list[ast.Constant]:
    """String constants in comparisons, in ``default=``/``choices=`` arguments and in list/tuple literals."""
    spots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            spots += [node.left, *node.comparators]
        elif isinstance(node, ast.keyword) and node.arg in ("default", "choices"):
            spots.append(node.value)
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            spots.append(node)
    return [c for s in spots for c in ast.walk(s) if isinstance(c, ast.Constant) and isinstance(c.value, str)]


def test_the_cli_does_not_branch_on_tasks_or_name_methods():
    """The CLI goes through the task objects: no ``if task == ...`` and no method name written out."""
    import json

    methods = {m["name"] for m in json.loads((SRC / "catalog.json").read_text(encoding="utf-8"))["methods"]}
    found = []
    for path in sorted((SRC / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if _compares_task(node):
                found.append(f"{path.name}:{node.lineno}: compares a task name")
        for node in _named_strings(tree):
            if node.value in methods:
                found.append(f"{path.name}:{node.lineno}: method name {node.value!r} written out")
    assert not found, "\n".join(found)


def test_the_task_check_is_not_blind():
    tree = ast.parse(
        "if spec.task == 'detect': pass\nif task in ('a', 'b'): pass\nif n == 1: pass\n"
        "if m.task == args.task: pass"
    )
    assert [_compares_task(n) for n in ast.walk(tree) if isinstance(n, ast.Compare)] == [
        True,
        True,
        False,
        False,
    ]
    tree = ast.parse("f(x, default='cnndet', choices=['a'])\ny = ('bihpf', 1)\ngetattr(m, 'lora')")
    assert {c.value for c in _named_strings(tree)} == {"cnndet", "a", "bihpf"}
