"""The augment and calibrate benches end to end on scikit-learn digits (pip data, seconds), and the
classification pieces they stand on: the CLI train/calibrate paths, the cosine schedule, the small ResNets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trustvis import registry
from trustvis.bench.calibrate import run_calibrate_bench
from trustvis.bench.options import BenchOptions
from trustvis.cli import main
from trustvis.engine import load_method
from trustvis.engine.trainer import lr_factor
from trustvis.tasks.calibration import argmax_changed, calibrate_logits


def test_bench_augment_tiny_writes_tables_figures_and_reuses_runs(tmp_path, capsys):
    out = tmp_path / "aug"
    argv = ["bench", "augment", "--quick", "--preset", "tiny", "--steps", "2", "--datasets", "sklearn-digits",
            "--methods", "none,cutmix,dcutmix-K3", "--seeds", "0,1", "--out", str(out), "--set", "train.progress=false"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    conds = res["results"]["sklearn-digits"]
    assert list(conds) == ["none", "cutmix", "dcutmix-K3"]
    for r in conds.values():
        assert len(r["per_seed"]) == 2 and r["error"]["n"] == 2
        assert 0 <= r["error"]["mean"] <= 1 and r["error"]["std"] >= 0
        assert {"acc_noise", "acc_blur", "acc_jpeg", "nll", "ece"} <= set(r)
    unc = res["uncertainty"]["sklearn-digits"]
    assert set(unc) == {"none", "cutmix", "dcutmix-K3"}
    md = (out / "results.md").read_text()
    assert "± " in md and "AUROC mixing" in md and "dcutmix-K3` top-1 error" in md
    for f in res["figures"]:
        assert (out / f["file"]).stat().st_size > 1000
    assert "<table>" in (out / "report.html").read_text()
    # the second run reuses every trained run (same configs): nothing is retrained
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/model.safetensors")}
    assert len(stamps) == 6
    assert main(argv) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/*/model.safetensors")}


def test_bench_augment_rejects_unknown_condition(tmp_path, capsys):
    assert main(["bench", "augment", "--methods", "none,dcutmix-K9", "--out", str(tmp_path)]) == 2
    assert "choose from" in capsys.readouterr().err


def test_bench_calibrate_tiny_keeps_accuracy_for_ts_ets_pts(tmp_path):
    opts = BenchOptions(quick=True, preset="tiny", steps=3, out_dir=tmp_path / "cal", progress=False)
    out = run_calibrate_bench(opts, dataset="sklearn-digits", imbalances=(1.0, 10.0), detectors=False,
                              calibrator_iters=60)  # fmt: skip
    res = json.loads((out / "results.json").read_text())
    assert set(res["results"]) == {"sklearn-digits", "sklearn-digits-LT10"}
    lt = res["settings"]["sklearn-digits-LT10"]["train_counts"]
    assert max(lt) / min(lt) == pytest.approx(10, rel=0.15)
    for rows in res["results"].values():
        assert {"uncalibrated", "ts+ce", "ts+sctl", "cts+sctl", "pts+ce", "ets+sctl"} <= set(rows)
        for name, m in rows.items():
            if name.split("+")[0] in ("ts", "ets", "pts"):
                assert m["argmax_changed"] == 0, (
                    name
                )  # (a 3-step model has near-ties; acc may differ by them)
        sc = rows["ts+sctl"]["fit"]
        assert 0.1 <= sc["alpha"] <= np.log(10) / 2 + 1e-9 and 1.5 <= sc["beta"] <= 2.0
    assert "Accuracy unchanged by TS/ETS/PTS: yes" in (out / "results.md").read_text()
    assert len(list(out.glob("fig_reliability_*.png"))) == 2


def test_calibrate_logits_of_a_binary_detector():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    z = 6.0 * (y.float() - 0.5) + 3.0 * torch.randn(400, generator=g)  # over-confident logits of "fake"
    rows = calibrate_logits(z[:200].numpy(), y[:200].numpy(), z[200:].numpy(), y[200:].numpy(), max_iter=100)
    assert rows["ts+ce"]["nll"] < rows["uncalibrated"]["nll"]
    assert rows["ts+ce"]["argmax_changed"] == 0 and rows["ts+sctl"]["argmax_changed"] == 0


def test_argmax_changed_ignores_ties():
    probs = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]])
    assert argmax_changed(np.array([1, 1, 1]), probs) == 1  # only the last one really moved


def _logits_npz(path, n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = 5.0 * (rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y])
    np.savez(
        path, cal_logits=z[: n // 2], cal_labels=y[: n // 2], test_logits=z[n // 2 :], test_labels=y[n // 2 :]
    )
    return path


def test_cli_calibrate_logits_all_and_one_saved_method(tmp_path, capsys):
    npz = _logits_npz(tmp_path / "l.npz")
    assert main(["calibrate", "--logits", str(npz), "--max-iter", "60"]) == 0
    out = capsys.readouterr().out
    assert "ts+sctl" in out and "pts+ce" in out and "uncalibrated" in out
    folder = tmp_path / "cal"
    argv = [
        "calibrate",
        "--logits",
        str(npz),
        "--method",
        "sctl",
        "--calibrator",
        "cts",
        "--out",
        str(folder),
    ]
    assert main(argv) == 0
    assert (folder / "reliability.png").is_file() and (folder / "calibration.json").is_file()
    method = load_method(folder, expect_method="sctl")
    z = torch.as_tensor(np.load(npz)["test_logits"]).float()
    rows = json.loads((folder / "calibration.json").read_text())
    probs = method.predict({"logits": z})["probs"].numpy()
    acc = float((probs.argmax(1) == np.load(npz)["test_labels"]).mean())
    assert acc == pytest.approx(rows["cts+sctl"]["acc"])


def test_cli_calibrate_bad_inputs(tmp_path, capsys):
    assert main(["calibrate"]) == 2
    assert "exactly one" in capsys.readouterr().err
    np.savez(tmp_path / "x.npz", something=np.zeros(3))
    assert main(["calibrate", "--logits", str(tmp_path / "x.npz")]) == 2
    assert "cal_logits" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert main(["calibrate", "--logits", str(tmp_path / "bad.npz")]) == 2


def test_cli_train_classifier_then_calibrate_the_run(tmp_path, capsys):
    run = tmp_path / "clf"
    argv = ["train", "kmix", "--preset", "tiny", "--set", "data.name=sklearn-digits", "--steps", "3",
            "--set", "train.progress=false", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    assert "val_acc" in capsys.readouterr().out
    assert load_method(run).config.num_classes == 10  # taken from the data
    assert main(["calibrate", "--run", str(run), "--max-iter", "30"]) == 0
    assert "ts+sctl" in capsys.readouterr().out


def test_cli_train_rejects_a_calibrator(tmp_path, capsys):
    assert main(["train", "sctl", "--preset", "tiny", "--out", str(tmp_path / "x")]) == 2
    assert "trustvis calibrate" in capsys.readouterr().err


def test_cosine_schedule_with_warmup():
    assert lr_factor(0, 100, "cosine", warmup=10) == pytest.approx(0.1)
    assert lr_factor(9, 100, "cosine", warmup=10) == pytest.approx(1.0)
    assert lr_factor(10, 100, "cosine", warmup=10) == pytest.approx(1.0)
    assert lr_factor(55, 100, "cosine", warmup=10) == pytest.approx(0.5)
    assert lr_factor(100, 100, "cosine", warmup=10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(50, 100) == 1.0
    with pytest.raises(ValueError, match="choose from"):
        lr_factor(0, 100, "step")


@pytest.mark.parametrize("name, params", [("resnet8", 78_042), ("resnet20", 272_474)])
def test_cifar_resnets_shapes_and_weight_files(name, params, tmp_path):
    from safetensors.torch import save_file

    from trustvis.nn.backbones import build_classifier

    net = build_classifier(name, 10)
    assert sum(p.numel() for p in net.parameters()) == params
    assert net(torch.rand(2, 3, 28, 28)).shape == (2, 10)
    save_file({k: v.contiguous() for k, v in net.net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    other = build_classifier(name, 3, str(tmp_path / "w.safetensors"))  # every layer but the fresh head
    torch.testing.assert_close(other.net.features[0].weight, net.net.features[0].weight)
    save_file({"bogus": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="do not fit"):
        build_classifier(name, 3, str(tmp_path / "bad.safetensors"))


@pytest.mark.parametrize("name", ["mixup", "cutmix", "kmix"])
def test_mixing_methods_train_on_soft_targets(name):
    torch.manual_seed(0)
    method = registry.build(name, "tiny", num_classes=4)
    x, y = torch.rand(5, 3, 12, 12), torch.tensor([0, 1, 2, 3, 0])  # odd batch
    mixed, target = method.mix(x, y)
    assert mixed.shape == x.shape and target.shape == (5, 4)
    torch.testing.assert_close(target.sum(1), torch.ones(5))
    assert not torch.equal(mixed, x)
    out = method.training_step({"image": x, "label": y})
    assert torch.isfinite(out["loss"])


def test_kmix_uncertainty_method():
    method = registry.build("kmix", "tiny", num_classes=4).eval()
    u = method.uncertainty(torch.rand(6, 3, 12, 12), torch.rand(5, 3, 12, 12), draws=2,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert u.shape == (6,) and (u >= 0).all()


def test_random_translate_and_gaussian_noise():
    from trustvis.data.transforms import gaussian_noise, random_translate

    img = np.full((8, 8, 3), 200, np.uint8)
    torch.manual_seed(0)
    shifted = [random_translate(img, 2) for _ in range(20)]
    assert all(s.shape == img.shape for s in shifted)
    assert any((s == 0).any() for s in shifted)  # zero fill appears when shifted
    assert np.array_equal(random_translate(img, 0), img)
    a, b = gaussian_noise(img, 0.1, seed=3), gaussian_noise(img, 0.1, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, img)
    assert abs(float(a.astype(float).std()) - 25.5) < 5
