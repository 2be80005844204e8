"""The detection bench end to end on a micro SynthBench (seconds), through the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from trustvis.cli import main
from trustvis.data import synthbench


def test_bench_detect_quick_writes_results_figures_and_report(micro_synthbench, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = [
        "bench",
        "detect",
        "--quick",
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--out",
        str(out),
        "--set",
        "train.log_every=1",
        "--attack-images",
        "3",
        "--queries",
        "20",
    ]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["methods"]) == {"cnndet", "bihpf", "frepgan", "fingerprintnet", "d4", "npr"}
    # adversarial table: every detector plus D4's single adversarially trained model, same budgets
    assert set(res["adversarial"]) == set(res["methods"]) | {"d4 (single AT model)"}
    for row in res["adversarial"].values():
        assert set(row) == {"pgd-l2", "pgd-linf", "hsja"}
        for a, r in row.items():
            assert r["n"] == 3 and r["adv_acc"] <= r["clean_acc"] and r["eps"] == res["attacks"]["budgets"][a]
        assert row["hsja"]["mean_queries"] <= 20
    assert res["families"] == list(synthbench.FAMILIES) and res["train_family"] == "ae_tconv"
    for m in res["methods"].values():
        assert set(m["clean"]) == set(res["families"])
        assert set(m["robustness"]) == set(res["degradations"])
        assert 0 <= m["mean_unseen"]["ap"] <= 1 and m["throughput_img_s"] > 0 and m["params"] > 0
        assert m["train_steps"] == 2
    for f in res["figures"]:
        assert (out / f["file"]).stat().st_size > 1000, f
    md = (out / "results.md").read_text()
    assert "trustvis bench detect --quick" in md and ("beats" in md or "does not beat" in md)
    assert "## Adversarial accuracy" in md and "d4 (single AT model)" in md
    assert "data:image/png;base64," in (out / "report.html").read_text()
    train_log = [json.loads(x) for x in (out / "runs" / "cnndet" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in train_log if r["split"] == "train"] == [1, 2]  # --set reached every method

    # a second run reuses the trained runs instead of training again
    mtime = (out / "runs" / "cnndet" / "model.safetensors").stat().st_mtime_ns
    assert main([*argv, "--methods", "cnndet"]) == 0
    assert (out / "runs" / "cnndet" / "model.safetensors").stat().st_mtime_ns == mtime


def test_bench_rejects_unknown_and_non_detector_methods(micro_synthbench, tmp_path, capsys):
    assert main(["bench", "detect", "--quick", "--methods", "nope", "--out", str(tmp_path)]) == 2
    assert "choose from" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse refuses an unknown bench and lists the benches
        main(["bench", "segment", "--out", str(tmp_path)])
    assert exit_.value.code == 2 and "invalid choice: 'segment'" in capsys.readouterr().err


def test_interrupted_run_of_another_config_is_restarted(micro_synthbench, tmp_path, capsys):
    """Checkpoints left by an interrupted run with a different config must not be resumed into the bench."""
    out = tmp_path / "bench"
    run = out / "runs" / "cnndet"
    argv = ["train", "cnndet", "--preset", "tiny", "--steps", "3", "--out", str(run), "--set", "train.progress=false",
            "--set", "model.blur_prob=0.3"]  # fmt: skip
    assert main(argv) == 0
    (run / "model.json").unlink()  # as if it had been interrupted before the end
    bench = ["bench", "detect", "--quick", "--preset", "tiny", "--steps", "2", "--methods", "cnndet", "--out",
             str(out), "--attack-images", "0", "--set", "train.log_every=1"]  # fmt: skip
    assert main(bench) == 0
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [s for s in steps if s is not None][:2] == [1, 2]  # trained from step 0 again, 2 steps
    res = json.loads((out / "results.json").read_text())
    assert res["methods"]["cnndet"]["train_steps"] == 2 and res["adversarial"] == {}


def test_bench_detect_v2_runs_seeds_on_clean_and_wild_with_false_alarms(micro_synthbench_v2, tmp_path):
    out = tmp_path / "bench2"
    argv = ["bench", "detect", "--quick", "--data-version", "v2", "--preset", "tiny", "--steps", "2", "--methods",
            "cnndet,npr,d4", "--seeds", "0,1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["data"]["version"] == "v2" and res["families"] == list(synthbench.FAMILIES_V2)
    assert res["seeds"] == [0, 1] and set(res["conditions"]) == {"clean", "wild"}
    for name, m in res["methods"].items():
        assert [r["seed"] for r in m["seeds"]] == [0, 1]
        assert (out / "runs" / f"{name}-seed1" / "model.safetensors").is_file()
        for cond in ("clean", "wild"):
            aps = [r[cond]["mean_unseen"]["ap"] for r in m["seeds"]]
            stat = m[cond]["mean_unseen"]["ap"]
            assert stat["n"] == 2 and abs(stat["mean"] - sum(aps) / 2) < 1e-12
            assert set(m[cond]["per_family"]) == set(res["families"])
            far = [r[cond]["false_alarm_rate"] for r in m["seeds"]]
            assert all(0 <= f <= 1 for f in far) and m[cond]["false_alarm_rate"]["n"] == 2
        assert all(r["clean"]["n_real"] == r["wild"]["n_real"] == micro_synthbench_v2.n_test for r in m["seeds"])
    # the false-alarm rate is the share of real test photos scored at or above the run's validation threshold
    import numpy as np

    from trustvis.data.io import load_image
    from trustvis.engine import load_method

    method = load_method(out / "runs" / "npr-seed1")
    root = synthbench.synthbench_path("quick", version="v2")
    reals = [load_image(p) for p in sorted((root / "test_wild" / "vae" / "0_real").glob("*.png"))]
    with torch.no_grad():
        scores = torch.sigmoid(method.logits(torch.stack([method.make_transform(False)(x) for x in reals]))).numpy()
    rec = res["methods"]["npr"]["seeds"][1]
    assert rec["wild"]["false_alarm_rate"] == pytest.approx(np.mean(scores >= rec["val_threshold"]), abs=1e-9)
    for f in res["figures"]:
        assert (out / f["file"]).stat().st_size > 1000, f
    md = (out / "results.md").read_text()
    assert "SynthBench v2" in md and "## AP per generator family (wild)" in md and "false alarms" in md
    assert "`d4`" in md and ("ties `cnndet`" in md or "beats `cnndet`" in md or "does not beat `cnndet`" in md)
    assert "inr_codec" in md and "bpp" in md  # the codec family's rate and quality from the manifest


def test_bench_detect_v2_refuses_v1_only_settings(micro_synthbench_v2, tmp_path, capsys):
    assert main(["bench", "detect", "--quick", "--seeds", "0,1", "--out", str(tmp_path)]) != 0
    assert "--seeds applies to --data-version v2" in capsys.readouterr().err
    assert main(["bench", "detect", "--data-version", "v2", "--synthbench", "demo", "--out", str(tmp_path)]) != 0
    assert "v2 has no size 'demo'" in capsys.readouterr().err
