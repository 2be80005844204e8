"""Every preset that ``trustvis info METHOD`` lists builds offline, or its build fails in one line naming the
exact ``--set`` flag that makes it build (issue 20: ``trustvis train bihpf`` suggested ``weights=None``,
which the command line then refused).

Each case builds the method as ``trustvis train`` does (preset -> ``--set`` overrides -> ``build_method``),
once with the ImageNet weights this machine has and once with none found (the state of a fresh install
without ``trustvis[weights]`` or torchvision's cached files), where every ``weights="imagenet"`` preset must
fail and name the flag.
"""

from __future__ import annotations

import re

import pytest

from trustvis import registry
from trustvis.config import make_run_config
from trustvis.engine.checkpoint import build_method
from trustvis.nn import backbones

#: ``--set KEY=VALUE`` in a message; VALUE up to a space or a closing bracket
FLAG = re.compile(r"--set ([\w.]+=[^\s)]*)")
PLACEHOLDER = "/path/to/"  # "--set model.weights=/path/to/file.pth" names the form, not a value to pass

CASES = [(s.name, p) for s in registry.list_methods() for p in s.presets]


def _build(name: str, preset: str, sets: list[str]):
    return build_method(make_run_config(name, preset, overrides=sets))


def _builds_or_names_a_working_flag(name: str, preset: str) -> str:
    """ "built", or the flag the error named (after checking that it builds)."""
    try:
        _build(name, preset, [])
        return "built"
    except Exception as e:  # noqa: BLE001 -- any error must name what to pass
        msg = str(e)
    assert "\n" not in msg, f"{name}/{preset}: not one line: {msg}"
    flags = [f for f in FLAG.findall(msg) if PLACEHOLDER not in f]
    assert flags, f"{name}/{preset}: the error names no --set flag to pass: {msg}"
    for flag in flags:
        method = _build(name, preset, [flag])  # the suggested flag, exactly as printed, builds
        assert method is not None
    return flags[0]


def test_the_presets_cover_every_method_and_the_flag_pattern_reads_the_messages():
    assert {n for n, _ in CASES} == {s.name for s in registry.list_methods()}
    assert all({"default", "tiny"} <= set(s.presets) for s in registry.list_methods())
    err = str(backbones._missing_weights_error("resnet50"))
    assert [f for f in FLAG.findall(err) if PLACEHOLDER not in f] == ["model.weights=none"]


@pytest.mark.parametrize("name,preset", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_every_preset_builds_offline_or_names_a_working_flag(name, preset):
    _builds_or_names_a_working_flag(name, preset)


@pytest.mark.parametrize("name,preset", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_without_imagenet_weights_every_preset_still_builds_or_names_a_working_flag(
    name, preset, monkeypatch
):
    monkeypatch.setattr(backbones, "_imagenet_file", lambda _name: None)  # nothing found offline
    cfg = registry.get(name).make_config(preset)
    imagenet = [
        k for k in ("weights", "teacher_weights") if getattr(cfg, k, "") == "imagenet"
    ]  # a CNN or a teacher
    got = _builds_or_names_a_working_flag(name, preset)
    assert got == (f"model.{imagenet[0]}=none" if imagenet else "built"), (name, preset, got)


@pytest.mark.parametrize("value", ["none", "None", "", "''"])
def test_random_initialisation_is_spelled_the_same_everywhere(value, monkeypatch):
    """``--set model.weights=none`` (what the errors print), ``None``, an empty value and a literal ``''``
    (the README's form inside double quotes) all build ResNet-50 at random, in the CLI's path and in
    Python's ``registry.build``."""
    monkeypatch.setattr(backbones, "_imagenet_file", lambda _name: None)
    assert _build("cnndet", "default", [f"model.weights={value}"]) is not None
    assert registry.build("cnndet", "default", weights=value) is not None
    assert backbones.resolve_weights("resnet50", value) is None
    with pytest.raises(FileNotFoundError, match="weights file"):
        backbones.resolve_weights("resnet50", "nothing-here.pth")  # any other value is a file path
