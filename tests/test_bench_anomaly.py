"""The anomaly bench end to end (tiny backbones, 2 FYD steps) through the CLI."""

from __future__ import annotations

import json

import pytest

from trustvis.cli import main
from trustvis.data.anomaly import available_textures


def _argv(out, datasets: str) -> list[str]:
    return ["bench", "anomaly", "--quick", "--preset", "tiny", "--steps", "2", "--datasets", datasets,
            "--out", str(out), "--set", "train.progress=false"]  # fmt: skip


def test_bench_anomaly_writes_metrics_figures_and_overlays(tmp_path):
    out = tmp_path / "anomaly"
    assert main(_argv(out, "textures")) == 0
    res = json.loads((out / "results.json").read_text())
    tex = res["results"]["textures"]
    for name in ("padim", "fyd"):
        for key in ("image_auroc", "pixel_auroc", "aupro", "f1_max", "accuracy"):
            assert 0.0 <= tex[name][key] <= 1.0, (name, key)
        assert tex[name]["n_test"] > 0 and tex[name]["images_per_second"] > 0
    for f in res["figures"]:
        assert (out / f["file"]).is_file()
    assert any((out / "overlays" / "textures" / "fyd").iterdir())
    md = (out / "results.md").read_text()
    assert "image AUROC" in md and "FYD" in md
    # one model per texture; the set's row is the mean of the per-texture records
    cats = available_textures()
    assert set(tex["fyd"]["categories"]) == set(cats)
    assert (out / "runs" / "textures" / cats[0] / "padim" / "model.json").is_file()
    mean = sum(r["image_auroc"] for r in tex["padim"]["categories"].values()) / len(cats)
    assert tex["padim"]["image_auroc"] == pytest.approx(mean)
    assert "Per texture" in md
    # a second run reuses every trained model and gives the same numbers
    assert main(_argv(out, "textures")) == 0
    again = json.loads((out / "results.json").read_text())["results"]
    assert again["textures"]["fyd"]["image_auroc"] == tex["fyd"]["image_auroc"]


@pytest.mark.slow
def test_bench_anomaly_on_elpv(tmp_path):
    pytest.importorskip("elpv_dataset")
    out = tmp_path / "elpv"
    assert main(_argv(out, "elpv-mono")) == 0
    res = json.loads((out / "results.json").read_text())["results"]["elpv-mono"]
    for r in res.values():
        assert "pixel_auroc" not in r and 0.0 <= r["image_auroc"] <= 1.0  # ELPV has image labels only


def test_bench_anomaly_pooled_trains_one_model_for_all_textures(tmp_path):
    out = tmp_path / "pooled"
    assert main([*_argv(out, "textures"), "--methods", "padim", "--pooled"]) == 0
    res = json.loads((out / "results.json").read_text())["results"]["textures"]["padim"]
    assert "categories" not in res and (out / "runs" / "textures" / "padim" / "model.json").is_file()


def test_epoch_steps_round_up_and_never_reach_zero():
    from trustvis.bench.anomaly import epoch_steps

    assert epoch_steps(100, 16, 6) == 38  # 600 images / 16 = 37.5 -> 38
    assert epoch_steps(1, 16, 1) == 1 and epoch_steps(0, 16, 6) == 1
