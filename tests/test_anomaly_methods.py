"""PaDiM and FYD invariants (spec anomaly.md): identity STNs at init, stop-gradient, Mahalanobis scoring,
pasted defects score above normal patches, thresholds and maps through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trustvis import registry
from trustvis.methods.anomaly.fyd import STN, compose, fine_alignment_loss, invert, params_to_theta, warp
from trustvis.methods.anomaly.padim import PadimScorer, gaussian_smooth


@pytest.mark.parametrize(
    "mode", ["affine", "rotation", "translation", "rotation_translation", "rotation_translation_scale"]
)
def test_stns_start_at_the_identity(mode):
    x = torch.rand(3, 8, 12, 12)
    stn = STN(8, mode, max_shift=0.25, max_scale=1.25)
    theta = stn.theta(x)
    torch.testing.assert_close(theta, torch.eye(2, 3).expand(3, 2, 3), rtol=0, atol=0)
    torch.testing.assert_close(warp(x, theta), x, rtol=0, atol=1e-6)


def test_fyd_at_init_sees_the_plain_backbone_features():
    m = registry.build("fyd", "tiny").eval()
    x = torch.rand(2, 3, 32, 32)
    taps, cums, warped = m.aligned(x)
    plain = m.backbone(x)
    for a, b in zip(taps, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    for c in cums:
        torch.testing.assert_close(c, torch.eye(2, 3).expand(2, 2, 3), rtol=0, atol=1e-6)


def test_affine_helpers_compose_and_invert():
    p = torch.tensor([[0.3, 0.5, -0.2, 0.4]])
    a = params_to_theta(p, "rotation_translation_scale", 0.25, 1.25)
    b = params_to_theta(torch.tensor([[-0.1, 0.2, 0.3, -0.5]]), "rotation_translation_scale", 0.25, 1.25)
    torch.testing.assert_close(compose(a, invert(a)), torch.eye(2, 3)[None], rtol=0, atol=1e-6)
    # warping by a then by b equals one warp by compose(a, b) (smooth image, interior points)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 48), torch.linspace(-1, 1, 48), indexing="ij")
    img = torch.stack([torch.sin(2 * xx) + yy, torch.cos(3 * yy) * xx])[None]
    two = warp(warp(img, a), b)
    one = warp(img, compose(a, b))
    assert (two - one)[..., 12:36, 12:36].abs().max() < 0.05
    assert (
        params_to_theta(torch.tensor([[0.0, 9.0, 9.0]]), "rotation_translation", 0.25, 1.25)[0, :, 2]
        .abs()
        .max()
        <= 0.25
    )


def test_fine_alignment_loss_stops_gradients_at_the_targets():
    g = torch.Generator().manual_seed(0)
    p_a, p_b, z_a, z_b = (torch.randn(2, 4, 3, 3, generator=g, requires_grad=True) for _ in range(4))
    loss = fine_alignment_loss(p_a, z_a, p_b, z_b)
    loss.backward()
    assert z_a.grad is None and z_b.grad is None  # the stop-gradient branch receives nothing
    assert p_a.grad.abs().sum() > 0 and p_b.grad.abs().sum() > 0
    same = torch.randn(2, 4, 3, 3)
    assert fine_alignment_loss(same, same, same, same).item() == pytest.approx(-1.0)


def test_fyd_training_step_moves_only_the_trainable_parts():
    m = registry.build("fyd", "tiny")
    m.train()
    backbone = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        out = m.training_step({"image": torch.rand(4, 3, 32, 32)})
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert {"loss", "loss_fa", "loss_ica"} <= set(out)
    for k, v in m.backbone.state_dict().items():
        assert torch.equal(v, backbone[k]), k  # frozen weights and BatchNorm statistics
    assert m.image_stn.fc.weight.abs().sum() > 0  # the STNs did move


def test_padim_scorer_is_the_mahalanobis_distance():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(50, 3, 2, 2, generator=g)
    scorer = PadimScorer(3, 2, 2, eps=0.01)
    scorer.fit([train[:20], train[20:]])
    x = torch.randn(1, 3, 2, 2, generator=g)
    f = train[:, :, 1, 0].double()  # position (1, 0) = flat index 2
    cov = torch.cov(f.T) + 0.01 * torch.eye(3, dtype=torch.float64)
    d = x[0, :, 1, 0].double() - f.mean(0)
    expected = torch.sqrt(d @ torch.linalg.inv(cov) @ d)
    assert scorer(x)[0, 1, 0].item() == pytest.approx(expected.item(), rel=1e-4)
    a = torch.zeros(1, 21, 21)
    a[0, 10, 10] = 1.0
    assert gaussian_smooth(a, 2.0).sum().item() == pytest.approx(1.0, abs=1e-5)


def test_padim_scores_a_pasted_defect_above_normal_patches():
    from skimage import data

    brick, gravel = data.brick(), data.gravel()  # 512x512 gray, CC0
    rng = np.random.default_rng(0)

    def crops(rows: slice, n: int) -> torch.Tensor:
        img = brick[rows]
        ys, xs = rng.integers(0, img.shape[0] - 32, n), rng.integers(0, 512 - 32, n)
        c = np.stack([img[y : y + 32, x : x + 32] for y, x in zip(ys, xs)]).astype(np.float32) / 255
        return torch.from_numpy(c)[:, None].expand(-1, 3, -1, -1).contiguous()

    torch.manual_seed(0)  # the tiny backbone is randomly initialised
    m = registry.build("padim", "tiny")
    m.fit([{"image": crops(slice(0, 300), 64)}])
    m.eval()
    normal = crops(slice(320, 512), 16)
    defect = normal.clone()
    defect[:, :, 8:28, 8:28] = torch.from_numpy(
        gravel[100:120, 100:120].astype(np.float32) / 255
    )  # cut-paste
    s_normal = m.predict({"image": normal})["score"]
    out = m.predict({"image": defect})
    assert (out["score"] > s_normal).float().mean() >= 0.8  # paired: the same crop with and without the patch
    amap = out["anomaly_map"]
    assert amap.shape == (16, 32, 32)
    rise = amap - m.predict({"image": normal})["anomaly_map"]  # what the patch added, per pixel
    assert rise[:, 8:28, 8:28].mean() > rise[:, 29:, :].mean()  # the map points at the patch


def test_train_predict_anomaly_run_through_the_cli(tmp_path, capsys):
    from PIL import Image

    from trustvis.cli import main

    out = tmp_path / "run"
    assert main(["-q", "train", "padim", "--preset", "tiny", "--out", str(out), "--set", "data.name=textures",
                 "--set", "train.progress=false"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "threshold" in printed
    meta = json.loads((out / "model.json").read_text())
    assert meta["method"] == "padim"
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((40, 40, 3)) * 255).astype(np.uint8)).save(
            imgs / f"{i}.png"
        )
    (imgs / "broken.png").write_bytes(b"not an image")
    assert main(["predict", str(out), str(imgs), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["results"]) == 2 and len(res["errors"]) == 1
    for r in res["results"]:
        assert np.isfinite(r["score"]) and (tmp_path / "run" / "maps").is_dir()
        assert Image.open(r["map"]).size[0] >= 40
