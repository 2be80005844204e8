"""``trustvis bench active`` end to end on sklearn digits with the tiny presets; a rerun reuses the loops."""

from __future__ import annotations

import json
import time

from trustvis.cli import main


def test_bench_active_tiny(tmp_path):
    out = tmp_path / "bench"
    argv = ["-q", "bench", "active", "--dataset", "sklearn-digits", "--preset", "tiny", "--methods",
            "entropy,vabal", "--seeds", "0,1", "--out", str(out), "--set", "train.progress=false",
            "--set", "data.rounds=2"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["results"]) == {"balanced", "dominant"}
    dom = res["pools"]["dominant"]
    assert dom["per_class"][0] == max(dom["per_class"]) and dom["size"] < res["pools"]["balanced"]["size"]
    for pool, by in res["results"].items():
        assert set(by) == {"entropy", "vabal"}
        for r in by.values():
            assert r["labels"] == [20, 30, 40]  # same budgets for every strategy
            assert sum(r["queried_per_class"]) == 2 * 2 * 10  # 2 seeds x 2 rounds x 10
            assert 0 <= r["aulc"]["balanced_acc"]["mean"] <= 1 and len(r["seeds"]) == 2
        # the same seed draws the same initial labels for every strategy
        firsts = {json.dumps(json.loads((out / "runs" / pool / m / "seed0" / "active.json").read_text())["initial"])
                  for m in by}  # fmt: skip
        assert len(firsts) == 1
    for f in res["figures"]:
        assert (out / f["file"]).stat().st_size > 1000
    md = (out / "results.md").read_text()
    assert "vabal" in md and "AULC" in md and (out / "report.html").is_file()
    t0 = time.perf_counter()
    assert main(argv) == 0  # every loop is reused
    assert time.perf_counter() - t0 < 30
    assert (
        json.loads((out / "results.json").read_text())["results"]["balanced"]["vabal"]["seeds"]
        == (res["results"]["balanced"]["vabal"]["seeds"])
    )
