"""``trustvis bench reid`` end to end on the tiny photo retrieval set with the tiny presets."""

from __future__ import annotations

import json

from trustvis.cli import main


def test_bench_reid_tiny(tmp_path):
    out = tmp_path / "bench"
    argv = ["-q", "bench", "reid", "--datasets", "photoreid", "--size", "tiny", "--preset", "tiny", "--steps", "8",
            "--seeds", "0,1", "--out", str(out), "--set", "train.progress=false", "--set", "train.log_every=1"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    by = res["results"]["photoreid"]
    assert set(by) == {"finetune", "fixbase", "rollback"}
    for r in by.values():
        assert 0 <= r["map"]["mean"] <= 1 and 0 <= r["rank1"]["mean"] <= 1 and len(r["seeds"]) == 2
        assert r["train_steps"] == 8  # equal budgets
        assert r["cmc"] == sorted(r["cmc"])  # CMC never falls
    files = {f["file"] for f in res["figures"]}
    assert {"fig_cmc_photoreid.png", "fig_grad_photoreid.png", "fig_examples_photoreid.png"} <= files
    for f in files:
        assert (out / f).stat().st_size > 1000
    assert "rollback" in (out / "results.md").read_text() and (out / "report.html").is_file()
