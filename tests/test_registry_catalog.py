"""The stored catalog (``trustvis/catalog.json``, read by ``list``, ``info`` and ``--help`` without importing
torch) matches the live registry; and those commands really import no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from trustvis import registry

CATALOG = Path(registry.__file__).resolve().parent / registry.CATALOG_FILE


def test_catalog_matches_the_registry():
    stored = json.loads(CATALOG.read_text(encoding="utf-8"))
    live = json.loads(json.dumps(registry.build_catalog()))
    assert stored == live, (
        "src/trustvis/catalog.json is out of date (a method, preset or config field changed); "
        "regenerate it with `python -m trustvis.registry`"
    )


def test_catalog_is_not_blind():
    live = registry.build_catalog()
    names = {m["name"] for m in live["methods"]}
    assert {s.name for s in registry.list_methods()} == names
    bihpf = next(m for m in live["methods"] if m["name"] == "bihpf")
    assert (
        bihpf["presets"]["quick"]["train"]["steps"] == registry.get("bihpf").presets["quick"].train["steps"]
    )
    assert bihpf["file"] == "methods/detect/bihpf.py"


def _imports_torch(argv: list[str]) -> tuple[bool, str]:
    code = (
        "import sys\nfrom trustvis.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', 'torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return out.stdout.strip().splitlines()[-1].startswith("TORCH"), out.stdout + out.stderr


def test_help_list_and_info_do_not_import_torch():
    for argv in (["--help"], ["list"], ["info", "bihpf"], ["bench", "--help"], ["train", "--help"]):
        torch_loaded, out = _imports_torch(argv)
        assert not torch_loaded, f"`trustvis {' '.join(argv)}` imported torch:\n{out[-2000:]}"


def test_the_torch_probe_is_not_blind():
    torch_loaded, _ = _imports_torch(["data", "status", "--json"])  # reads weights status: imports torch
    assert torch_loaded
