"""Bad LoRA/PEFT adapter folders (issue 18, area E): each ends in a one-line ValueError/FileNotFoundError
that names the file and the problem, and the network it was loaded into is left as it was.

No command of the CLI loads a PEFT adapter (``trustvis train`` writes one; ``train.init_from`` reads a run
folder's ``model.safetensors``), so the cases go through :func:`trustvis.nn.lora.load_adapter`.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

from trustvis.config import LoraConfig
from trustvis.nn import lora as L


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


X = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def adapter(tmp_path):
    """A valid adapter folder for ``_net()`` (LoRA r=2 on both layers, B random) and its output."""
    m = _net()
    cfg = LoraConfig(r=2, alpha=4)
    L.inject_lora(m, cfg)
    with torch.no_grad():
        for _, layer in L.lora_layers(m):
            layer.lora_B.weight.normal_()
    folder = tmp_path / "adapter"
    L.save_adapter(m, folder, cfg)
    return folder, m.eval()(X)


def _edit_config(folder, **changes):
    path = folder / L.ADAPTER_CONFIG
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return path


def _refused(folder, *needles, exc=ValueError):
    """load_adapter fails with one line naming every needle; the network is untouched."""
    net = _net()
    net[0].bias.requires_grad_(False)  # a flag of the caller's, kept
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flags = {n: p.requires_grad for n, p in net.named_parameters()}
    with pytest.raises(exc) as info:
        L.load_adapter(net, folder)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert str(n) in msg, f"{n!r} not in {msg!r}"
    assert not any(isinstance(m, L.LoraLayer) for m in net.modules())  # injected adapters removed again
    assert net.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert {n: p.requires_grad for n, p in net.named_parameters()} == flags  # nothing frozen either
    return msg


def test_the_valid_folder_loads(adapter):
    folder, y = adapter
    net = _net()
    L.load_adapter(net, folder)
    assert torch.equal(net.eval()(X), y) and (y - _net()(X)).abs().max() > 1e-2
    # frozen as inject_lora (PEFT's get_peft_model) leaves a network: only the adapters train
    assert {n for n, p in net.named_parameters() if p.requires_grad} == {
        n for n, _ in net.named_parameters() if ".lora_" in n
    }


@pytest.mark.parametrize("content", [b"garbage\x00\x01", b'\x08\x00\x00\x00\x00\x00\x00\x00{"a":1}', b""])
def test_corrupt_weights_file(adapter, content):
    folder, _ = adapter
    (folder / L.ADAPTER_WEIGHTS).write_bytes(content)
    _refused(folder, folder / L.ADAPTER_WEIGHTS, "not a readable safetensors file")


def test_truncated_weights_file(adapter):
    folder, _ = adapter
    path = folder / L.ADAPTER_WEIGHTS
    path.write_bytes(path.read_bytes()[:-40])
    _refused(folder, path, "not a readable safetensors file")


def test_missing_weights_file(adapter):
    folder, _ = adapter
    (folder / L.ADAPTER_WEIGHTS).unlink()
    _refused(folder, folder / L.ADAPTER_WEIGHTS, "not found", exc=FileNotFoundError)


def test_targets_that_the_network_lacks(adapter):
    folder, _ = adapter
    _edit_config(folder, target_modules=["encoder.qkv", "proj"])
    _refused(folder, folder, "does not fit this network", "no module matched", "encoder.qkv")


def test_weights_for_a_layer_the_config_does_not_target(adapter):
    folder, _ = adapter
    _edit_config(folder, target_modules=["0"])  # the file still holds the adapter of layer 3
    _refused(folder, folder / L.ADAPTER_WEIGHTS, "does not fit this network", "unexpected", "3.lora_A.weight")


def test_rank_mismatch_between_config_and_weights(adapter):
    folder, _ = adapter
    _edit_config(folder, r=4, lora_alpha=8)
    _refused(folder, folder / L.ADAPTER_WEIGHTS, "has shape (2,", "the network (4,", "r=4")


def test_modules_to_save_that_the_network_lacks(adapter):
    folder, _ = adapter
    _edit_config(folder, modules_to_save=["classifier"])
    _refused(folder, folder / L.ADAPTER_CONFIG, "modules_to_save ['classifier']", "does not fit")


def test_non_finite_adapter_weights(adapter):
    from safetensors.torch import load_file, save_file

    folder, _ = adapter
    path = folder / L.ADAPTER_WEIGHTS
    state = load_file(str(path))
    state["base_model.model.3.lora_B.weight"][0, 0] = float("nan")
    save_file(state, str(path), {"format": "pt"})
    _refused(folder, path, "3.lora_B.weight", "non-finite")


def test_integer_adapter_weights(adapter):
    from safetensors.torch import load_file, save_file

    folder, _ = adapter
    path = folder / L.ADAPTER_WEIGHTS
    state = load_file(str(path))
    state["base_model.model.0.lora_A.weight"] = state["base_model.model.0.lora_A.weight"].to(torch.int32)
    save_file(state, str(path), {"format": "pt"})
    _refused(folder, path, "0.lora_A.weight", "I32", "not floating point")


@pytest.mark.parametrize(
    "text,needle",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got a list"),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_config_that_is_not_a_json_object(adapter, text, needle):
    folder, _ = adapter
    (folder / L.ADAPTER_CONFIG).write_bytes(text.encode("latin-1"))
    _refused(folder, folder / L.ADAPTER_CONFIG, needle)


def test_oversized_config(adapter):
    folder, _ = adapter
    with open(folder / L.ADAPTER_CONFIG, "r+b") as f:
        f.truncate(L.MAX_CONFIG_BYTES + 1)  # sparse: nothing is written
    _refused(folder, folder / L.ADAPTER_CONFIG, "is not an adapter config")


@pytest.mark.parametrize(
    "changes,needles",
    [
        ({"r": 0}, ["r=0", ">= 1"]),
        ({"r": "8"}, ["r='8'"]),
        ({"lora_alpha": -1}, ["lora_alpha=-1"]),
        ({"lora_dropout": 1.5}, ["lora_dropout=1.5"]),
        ({"target_modules": 3}, ["target_modules", "got 3"]),
        ({"target_modules": "conv[("}, ["not a valid regex"]),
        ({"rank_pattern": {"0": "two"}}, ["rank_pattern['0']='two'"]),
        ({"rank_pattern": {"0": 2.5}}, ["rank_pattern['0']=2.5", "positive int"]),
        ({"modules_to_save": "head"}, ["modules_to_save must be a list"]),
        ({"init_lora_weights": "pissa"}, ["init_lora_weights='pissa'", "rewrites the base weights"]),
        ({"init_lora_weights": "olora"}, ["init_lora_weights='olora'"]),
        ({"use_dora": True}, ["use_dora=True"]),
        ({"target_parameters": ["0.weight"]}, ["target_parameters"]),
        ({"layer_replication": [[0, 1]]}, ["layer_replication"]),
        ({"peft_type": "IA3"}, ["IA3", "not LoRA"]),
    ],
)  # fmt: skip
def test_invalid_or_unsupported_config_values(adapter, changes, needles):
    folder, _ = adapter
    path = _edit_config(folder, **changes)
    _refused(folder, path, *needles)


def test_bad_attention_factor_record(tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("att", nn.MultiheadAttention(8, 2))
    cfg = LoraConfig(r=2, targets=["att"])
    L.inject_lora(net, cfg)
    L.save_adapter(net, tmp_path, cfg)
    path = tmp_path / L.ADAPTER_WEIGHTS
    save_file(load_file(str(path)), str(path), {"format": "pt", L.MHA_FACTOR_KEY: "3"})
    fresh = nn.Sequential()
    fresh.add_module("att", nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError, match=re.escape(f"{path}: metadata {L.MHA_FACTOR_KEY}='3'")):
        L.load_adapter(fresh, tmp_path)
    assert isinstance(fresh.att, nn.MultiheadAttention) and isinstance(fresh.att.out_proj, nn.Linear)
    assert not any(isinstance(m, L.LoraLayer) for m in fresh.modules())
