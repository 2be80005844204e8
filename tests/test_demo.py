"""``trustvis demo`` end to end on a micro SynthBench (seconds), through the CLI."""

from __future__ import annotations

import csv
import json
import math

from trustvis.cli import main
from trustvis.data import synthbench


def test_demo_prints_results_scores_and_report(micro_synthbench, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(synthbench.SIZES, "demo", micro_synthbench)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "2"]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert set(res["methods"]) == {"cnndet", "d4"} and res["data"]["size"] == "demo"
    assert res["degradations"] == [] and res["adversarial"] == {}  # the demo's time budget
    assert all(m["train_steps"] == 2 for m in res["methods"].values())
    # the headline table carries the bench's numbers, not other ones
    for name, m in res["methods"].items():
        row = next(line for line in printed.splitlines() if line.startswith(name + " "))
        assert f"{m['mean_unseen']['ap']:.3f}" in row
    assert "seed method" in printed and "baseline" in printed
    with open(out / "samples.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    truths = [r["truth"] for r in rows]
    assert truths.count("real") == 3 and truths.count("fake") == 3
    for r in rows:
        assert (out / "samples" / r["image"]).is_file()
        for name in ("cnndet", "d4"):
            assert 0.0 <= float(r[f"{name} p(fake)"]) <= 1.0 and math.isfinite(float(r[f"{name} p(fake)"]))
            assert f"{float(r[f'{name} p(fake)']):.3f}" in printed
    assert str(out / "report.html") in printed and (out / "report.html").stat().st_size > 10_000
    assert "make bench-detect" in printed
    d4 = json.loads((out / "runs" / "d4" / "model.json").read_text())["config"]["model"]
    assert d4["saliency_steps"] == 1  # a third of the 2 steps: the ensemble phase is reached
