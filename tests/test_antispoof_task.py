"""The antispoof task end to end: RecaptureBench splits and protocols, predict with depth maps, eval, bench."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from trustvis.cli import main
from trustvis.data import recapturebench as rb
from trustvis.tasks import get_task


@dataclass
class _Frame:
    name: str
    scene: str
    rgb: np.ndarray
    depth: np.ndarray


def _frames():
    seq = [
        _Frame(f"seq/{i}", "seq", np.zeros((40, 60, 3), np.uint8), np.ones((40, 60), np.float32))
        for i in range(30)
    ]
    one = [_Frame("one", "one", np.zeros((50, 100, 3), np.uint8), np.ones((50, 100), np.float32))]
    return seq + one


def test_split_regions_share_no_source_pixel():
    """Sequence frames go to one split each (with a frame left out between blocks); a one-frame scene is cut
    into disjoint bands."""
    frames = _frames()
    regions = rb.split_regions(frames)
    owner: dict[tuple[int, int], str] = {}
    for split, by_scene in regions.items():
        assert set(by_scene) == {"seq", "one"}
        for regs in by_scene.values():
            for r in regs:
                for x in range(r.x0, r.x1):
                    key = (r.frame, x)
                    assert owner.setdefault(key, split) == split, f"column {key} in {owner[key]} and {split}"
    seq_frames = {s: {r.frame for r in regions[s]["seq"]} for s in rb.SPLITS}
    assert seq_frames["train"] == set(range(17)) and seq_frames["test"] == set(range(23, 30))
    assert max(seq_frames["train"]) + 1 < min(seq_frames["val"])  # a gap frame between blocks


def test_plane_residual_tells_planes_from_objects():
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    plane = 1.0 + 0.01 * xx + 0.02 * yy
    bump = plane - 0.2 * np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 30.0)
    assert rb.plane_residual(plane) < 1e-6
    assert rb.plane_residual(bump) > 0.01
    assert rb.plane_residual(np.zeros((8, 8))) == float("inf")


def test_protocol_displays():
    displays = ["a", "b", "c", "d"]
    assert rb.protocol_displays("unseen", "train", displays, ["a", "b"]) == ["a", "b"]
    assert rb.protocol_displays("unseen", "test", displays, ["a", "b"]) == ["c", "d"]
    assert rb.protocol_displays("seen", "test", displays, ["a", "b"]) == displays
    with pytest.raises(ValueError, match="choose from"):
        rb.protocol_displays("sideways", "test", displays)
    with pytest.raises(ValueError, match="unknown training display"):
        rb.protocol_displays("unseen", "train", displays, ["zzz"])


# ----------------------------------------------------------------------------------------------------
# a tiny RecaptureBench, built once


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return rb.build_recapturebench("tiny", progress=False, home_dir=home), home


def test_tiny_recapturebench_layout_manifest_and_splits(tiny_bench):
    from trustvis.data.display import DISPLAY_TYPES
    from trustvis.data.rgbd import read_rgbd_folder

    root, _ = tiny_bench
    man = rb.load_manifest(root)
    assert man["version"] == rb.VERSION and rb.verify_recapturebench(root, check_hashes=True) == []
    cfg = rb.SIZES["tiny"]
    assert len(DISPLAY_TYPES) >= 8
    for split in rb.SPLITS:
        folder = read_rgbd_folder(root / split)
        assert not folder.skipped
        assert sum(it.label == 0 for it in folder.items) == cfg.n_real[split]
        assert sum(it.label == 1 for it in folder.items) == cfg.n_spoof[split] * len(DISPLAY_TYPES)
    # no source region (frame, columns) is used by two splits, for reals and for the spoofs' content
    used: dict[str, list[tuple[str, int, int]]] = {s: [] for s in rb.SPLITS}
    for smp in man["samples"]:
        y, x, s = smp["box"]
        used[smp["split"]].append((smp["frame"], x, x + s))
    for a in rb.SPLITS:
        for b in rb.SPLITS:
            if a < b:
                for fa, a0, a1 in used[a]:
                    for fb, b0, b1 in used[b]:
                        assert fa != fb or a1 <= b0 or b1 <= a0, f"{a} and {b} share pixels of {fa}"
    # the rebuild is reused (same config): same folder, manifest untouched
    mtime = (root / "manifest.json").stat().st_mtime_ns
    assert rb.build_recapturebench("tiny", progress=False, home_dir=root.parent.parent) == root
    assert (root / "manifest.json").stat().st_mtime_ns == mtime


def test_protocol_pairs_select_and_balance(tiny_bench):
    root, _ = tiny_bench
    train = rb.protocol_pairs(root, "train", "unseen")
    test = rb.protocol_pairs(root, "test", "unseen")
    train_media = {m for m, lab in zip(train.media, train.labels) if lab == 1}
    test_media = {m for m, lab in zip(test.media, test.labels) if lab == 1}
    assert train_media <= set(rb.TRAIN_DISPLAYS) and not (test_media & set(rb.TRAIN_DISPLAYS))
    assert test_media  # every unseen display is tested
    n_real = int((train.labels == 0).sum())
    assert abs(int((train.labels == 1).sum()) - n_real) <= len(train_media)  # balanced
    seen_test = rb.protocol_pairs(root, "test", "seen")
    assert {m for m, lab in zip(seen_test.media, seen_test.labels) if lab == 1} >= set(rb.TRAIN_DISPLAYS)


# ----------------------------------------------------------------------------------------------------
# predict with depth maps


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("antispoof")
    task = get_task("antispoof")
    folder = task.tiny_folder(base / "data")
    run = base / "run"
    sets = [a for kv in task.tiny_overrides(folder) for a in ("--set", kv)]
    assert main(["-q", "train", "mtofnet", "--preset", "tiny", "--out", str(run), *sets, "--steps", "3",
                 "--set", "train.progress=false"]) == 0  # fmt: skip
    return run, folder


def test_predict_pairs_explicit_depth_and_errors(tiny_run, tmp_path, capsys):
    run, folder = tiny_run
    rgb = sorted((folder / "spoof" / "screen-a").glob("*_rgb.png"))
    depth = [p.with_name(p.name.replace("_rgb", "_depth")) for p in rgb]
    assert main(["predict", str(run), str(rgb[0]), "--depth", str(depth[0]), "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)["results"]
    assert rec["depth"] == str(depth[0]) and 0 <= rec["score"] <= 1 and isinstance(rec["spoof"], bool)
    from trustvis.engine import load_method

    stored = float(load_method(run).threshold)  # the validation EER threshold, stored with the weights
    assert math.isfinite(stored) and rec["threshold"] == pytest.approx(stored)
    # a missing depth map, an unreadable one: error rows naming the file; the good pair is scored
    lone = tmp_path / "lone_rgb.png"
    lone.write_bytes(rgb[1].read_bytes())
    bad = tmp_path / "bad_rgb.png"
    bad.write_bytes(rgb[2].read_bytes())
    (tmp_path / "bad_depth.png").write_bytes(b"not a png")
    assert main(["predict", str(run), str(rgb[0]), str(lone), str(bad), "--jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    errors = {r["path"]: r["error"] for r in lines if "error" in r}
    assert len(lines) == 3 and len(errors) == 2
    assert "lone_depth.png" in errors[str(lone)] and "not found" in errors[str(lone)]
    assert "bad_depth.png" in errors[str(bad)]
    # --depth count mismatch: one line, exit 2
    assert main(["predict", str(run), str(rgb[0]), str(rgb[1]), "--depth", str(depth[0])]) == 2
    assert "1 depth map(s) for 2 RGB image(s)" in capsys.readouterr().err
    # a folder of pairs: one record per pair
    assert main(["predict", str(run), str(folder), "--jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == len(list(folder.rglob("*_rgb.png"))) and all("error" not in r for r in lines)


def test_depth_flag_is_refused_by_image_runs(tmp_path, capsys):
    task = get_task("detect")
    folder = task.tiny_folder(tmp_path / "data")
    run = tmp_path / "run"
    sets = [a for kv in task.tiny_overrides(folder) for a in ("--set", kv)]
    assert (
        main(
            [
                "-q",
                "train",
                "cnndet",
                "--preset",
                "tiny",
                "--out",
                str(run),
                *sets,
                "--set",
                "train.progress=false",
            ]
        )
        == 0
    )
    capsys.readouterr()
    img = next(folder.rglob("*.png"))
    assert main(["predict", str(run), str(img), "--depth", str(img)]) == 2
    assert "antispoof" in capsys.readouterr().err


def test_eval_reports_per_medium_rates(tiny_run, capsys):
    run, folder = tiny_run
    assert main(["eval", str(run), "--data", str(folder), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "screen-a" in out and "screen-b" in out and "APCER" in out and "mean over media" in out
    res = json.loads((run / "eval.json").read_text())
    assert set(res["per_medium"]) == {"screen-a", "screen-b"}
    assert res["per_medium"]["screen-a"]["n_attack"] == 4


# ----------------------------------------------------------------------------------------------------
# the bench


def test_bench_antispoof_tiny(tiny_bench, tmp_path, capsys):
    _, home = tiny_bench
    out = tmp_path / "bench"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTVIS_HOME", str(home))
        assert main(["-q", "bench", "antispoof", "--recapturebench", "tiny", "--preset", "tiny", "--steps", "2",
                     "--seeds", "0", "--methods", "mtofnet,depthcnn", "--out", str(out),
                     "--set", "train.progress=false"]) == 0  # fmt: skip
    res = json.loads((out / "results.json").read_text())
    assert set(res["results"]) == {"unseen", "seen"}
    unseen = res["results"]["unseen"]["mtofnet"]
    assert not set(unseen["per_medium"]) & set(rb.TRAIN_DISPLAYS)
    assert set(res["results"]["seen"]["depthcnn"]["per_medium"]) >= set(rb.TRAIN_DISPLAYS)
    for f in res["figures"]:
        assert (out / f["file"]).stat().st_size > 1000
    assert (out / "report.html").is_file() and "ACER" in (out / "results.md").read_text()


def test_torchrun_two_processes_train_mtofnet(tmp_path):
    """``torchrun --nproc_per_node 2 -m trustvis train mtofnet``: DDP on the gloo backend, rank 0 writes."""
    import os
    import subprocess
    import sys

    folder = get_task("antispoof").tiny_folder(tmp_path / "data").parent
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "trustvis",
           "-q", "train", "mtofnet", "--preset", "tiny", "--data", str(folder), "--out", str(out), "--steps", "3",
           "--set", "train.progress=false", "--set", "train.batch_size=2", "--set", "train.log_every=1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRUSTVIS_HOME": str(tmp_path / "home")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]  # rank 0 alone writes
    assert (out / "model.json").is_file()
