"""``trustvis bench vit`` end to end with the tiny presets on two small settings."""

from __future__ import annotations

import json

import pytest

from trustvis.bench.vit import conditions_with_needs, steps_to
from trustvis.cli import main


def test_bench_vit_tiny(tmp_path):
    out = tmp_path / "bench"
    argv = ["-q", "bench", "vit", "--datasets", "stamps", "--preset", "tiny", "--steps", "4", "--seeds", "0,1",
            "--out", str(out), "--set", "train.progress=false", "--set", "train.eval_every=2"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    by = res["results"]["stamps"]
    assert list(by) == ["cnn", "vit", "deit-hard", "deit-soft", "aal", "aal-adv"]
    for r in by.values():
        assert 0 <= r["top1"]["mean"] <= 1 and len(r["seeds"]) == 2 and r["train_steps"] == 4  # equal budgets
        assert r["val_curve"]["steps"] == [2, 4]
    assert by["vit"]["steps_to_vit"]["reached"] == 2  # the plain ViT reaches its own final accuracy
    # the runs a condition needs: deit is taught by that seed's cnn run, aal-adv keeps that seed's aal links
    cfg = json.loads((out / "runs/stamps/deit-soft/seed1/model.json").read_text())["config"]["model"]
    assert cfg["teacher"].endswith("runs/stamps/cnn/seed1") and cfg["distill"] == "soft"
    data = {
        c: json.loads((out / f"runs/stamps/{c}/seed0/model.json").read_text())["config"]["data"] for c in by
    }
    assert all(d == data["vit"] for d in data.values())  # the teacher and every ViT see the same images
    adv = json.loads((out / "runs/stamps/aal-adv/seed1/model.json").read_text())["config"]["model"]
    assert adv["links_from"].endswith("runs/stamps/aal/seed1")
    files = {f["file"] for f in res["figures"]}
    assert {"fig_top1.png", "fig_val_stamps.png", "fig_links.png", "fig_attention.png"} <= files
    for f in files:
        assert (out / f).stat().st_size > 1000
    md = (out / "results.md").read_text()
    assert "aal" in md and "deit-hard" in md and (out / "report.html").is_file()
    # a second call reuses every finished run
    mtime = (out / "runs/stamps/aal/seed0/model.safetensors").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "runs/stamps/aal/seed0/model.safetensors").stat().st_mtime_ns == mtime


def test_conditions_bring_the_runs_they_need():
    assert conditions_with_needs(["deit-soft"]) == ["cnn", "deit-soft"]
    assert conditions_with_needs(["aal-adv", "vit"]) == ["vit", "aal", "aal-adv"]
    with pytest.raises(ValueError, match="aal-adv"):
        conditions_with_needs(["aal2"])


def test_steps_to_reach_an_accuracy():
    curve = [(50, 0.3), (100, 0.55), (150, 0.5), (200, 0.6)]
    assert steps_to(curve, 0.55) == 100
    assert steps_to(curve, 0.6) == 200
    assert steps_to(curve, 0.61) is None
