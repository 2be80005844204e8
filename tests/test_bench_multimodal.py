"""``trustvis bench multimodal`` end to end on the installed digit images and spoken digits, with the tiny presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustvis.cli import main
from trustvis.report.headline import headline

pytestmark = pytest.mark.skipif(
    not Path("/usr/share/tuxpaint/stamps/symbols/math").is_dir(),
    reason="data not installed: tuxpaint-stamps-default (apt; scripts/setup.sh installs it)",
)


def test_bench_multimodal_tiny(tmp_path):
    out = tmp_path / "bench"
    argv = ["-q", "bench", "multimodal", "--preset", "tiny", "--seeds", "0,1", "--fractions", "1,0.1",
            "--out", str(out), "--set", "train.progress=false"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["fractions"] == [0.1, 1.0] and set(res["results"]) == {"xmodal", "latentreg", "jmvae"}
    for by in res["results"].values():
        assert set(by) == {"0.1", "1.0"}
        assert by["0.1"]["pairs"] < by["1.0"]["pairs"] == res["data"]["train_clips"]
        for r in by.values():
            for k in ("acc_speech_to_image", "acc_image_to_speech", "r1_speech_to_image"):
                assert 0 <= r[k]["mean"] <= 1 and r[k]["n"] == 2
    for name in ("xmodal", "latentreg"):  # the maps' budget: --steps or the preset's stage 2
        assert res["results"][name]["1.0"]["train_steps"] == res["assoc_steps"]
    # the seeds' VAEs are trained once and shared: one vaes run per seed, loaded (frozen) by xmodal and latentreg
    for seed in (0, 1):
        meta = json.loads((out / "runs" / f"seed{seed}" / "f0.1" / "xmodal" / "model.json").read_text())
        assert meta["config"]["model"]["vaes_from"] == str(out / "runs" / f"seed{seed}" / "vaes")
    # real and synthetic test speech are counted apart; the test voices are not training voices
    d = res["data"]
    assert d["test_clips_real"] > 0 and d["test_clips_synthetic"] > 0
    for kind in ("real", "synthetic"):
        assert not set(d["test_speakers"][kind]) & set(d["train_speakers"][kind])
    third = res["third_modality"]
    assert third["vaes_identical"] is True and all(r["vaes_identical"] for r in third["seeds"])
    assert third["fraction"] == 1.0 and 0 <= third["acc_speech_to_label"]["mean"] <= 1
    files = {f["file"] for f in res["figures"]}
    assert {"fig_acc_speech_to_image.png", "fig_acc_image_to_speech.png", "fig_generated.png"} <= files
    for f in files:
        assert (out / f).stat().st_size > 1000
    md = (out / "results.md").read_text()
    assert "real clips" in md and "synthetic" in md and "bit-identical afterwards: yes" in md
    h = headline(res)
    assert h is not None and len(h.rows) == 6 and h.rows[0][0] == "10 %"
    assert (out / "report.html").is_file()
