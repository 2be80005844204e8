"""The adaptation bench end to end (tiny backbone, 2 steps, micro SynthBench) and its pieces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trustvis.bench import adapt
from trustvis.cli import main


def test_condition_overrides_and_errors():
    assert adapt.condition_overrides("linear") == ["train.trainable=heads", "train.lr=0.01"]
    assert adapt.condition_overrides("lora-r16") == ["lora.r=16", "lora.alpha=16", "train.lr=0.002"]
    assert adapt.condition_values("lora-r16") == {"lora": {"r": 16, "alpha": 16}, "train": {"lr": 2e-3}}
    with pytest.raises(ValueError, match="choose from"):
        adapt.condition_overrides("lora")


def test_condition_values_and_their_record_build_the_same_run():
    """results.json records a condition as --set lines; the bench applies its values typed: same config."""
    from trustvis.config import make_run_config, to_dict

    for cond in adapt.CONDITIONS:
        cv = adapt.condition_values(cond)
        typed = make_run_config("classifier", "tiny", train=cv.get("train"), lora=cv.get("lora"))
        assert to_dict(typed) == to_dict(
            make_run_config("classifier", "tiny", overrides=adapt.condition_overrides(cond))
        )


def test_adaptation_split_is_disjoint_by_source_photo(micro_synthbench):
    from trustvis.data.synthbench import build_synthbench

    root = build_synthbench("quick", progress=False)
    photo = np.array(json.loads((root / "manifest.json").read_text())["patch_photo_ids"]["test"])
    for family in ("ae_nearest", "dcgan"):
        s = adapt.adaptation_split(root, family, shots=2, seed=0)
        assert (s["adapt_labels"] == 0).sum() == 2 and (s["adapt_labels"] == 1).sum() == 2
        n_real_test = int((s["test_labels"] == 0).sum())
        assert 0 < n_real_test <= len(photo) - 2
        # no adaptation image appears among the test images
        flat = lambda a: {x.tobytes() for x in a}  # noqa: E731
        assert not flat(s["adapt_images"]) & flat(s["test_images"])


def test_bench_adapt_detect_part_through_the_cli(micro_synthbench, tmp_path, monkeypatch):
    out = tmp_path / "adapt"
    argv = ["bench", "adapt", "--quick", "--preset", "tiny", "--steps", "2", "--datasets", "detect",
            "--methods", "linear,full,lora-r2", "--out", str(out), "--set", "train.batch_size=4"]  # fmt: skip
    monkeypatch.setattr(adapt, "ADAPT_SHOTS", 2)  # the micro SynthBench has 8 test patches per class
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    conds = res["results"]["detect"]["conditions"]
    assert list(conds) == ["linear", "full", "lora-r2"]
    full, linear, lora = conds["full"], conds["linear"], conds["lora-r2"]
    assert linear["trainable_params"] < lora["trainable_params"] < full["trainable_params"]
    assert full["grads_mb"] > lora["grads_mb"] > 0 and linear["activations_mb"] <= full["activations_mb"]
    for r in conds.values():
        assert 0 <= r["unseen"]["ap"] <= 1 and r["step_ms"] > 0 and r["train_memory_mb"] > 0
    md = (out / "results.md").read_text()
    assert "lora-r2" in md and "trainable params" in md
    for f in res["figures"]:
        assert (out / f["file"]).is_file()
