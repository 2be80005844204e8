"""Anomaly overlays a person can read (size, colour bar, score / threshold / verdict, the input's name),
and the predict JSON of thresholded tasks (the verdict's own word and the threshold), through ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trustvis.cli import main
from trustvis.report.plots import save_overlay
from trustvis.tasks import get_task
from trustvis.tasks.anomaly import overlay_names


def _big_image(h: int = 1500, w: int = 2000) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    img[600:700, 900:1000] = 255  # a bright defect
    return img


def test_overlay_of_a_large_image_fits_1024_px_and_keeps_its_aspect(tmp_path):
    img = _big_image()
    amap = np.zeros((150, 200))
    amap[60:70, 90:100] = 3.0
    plain = save_overlay(img, amap, tmp_path / "plain.png")
    w, h = Image.open(plain).size
    assert max(w, h) <= 1024 and (w - 4) / 2 / h == pytest.approx(2000 / 1500, rel=0.02)
    ann = save_overlay(img, amap, tmp_path / "ann.png", vmin=0.5, vmax=1.5, score=2.0, threshold=1.0,
                       verdict="anomalous", title="big.png")  # fmt: skip
    w2, h2 = Image.open(ann).size
    assert max(w2, h2) <= 1024 and w2 > h2
    assert max(Image.open(save_overlay(img, amap, tmp_path / "x.png", max_side=0)).size) == 2 * 2000 + 4
    with pytest.raises(ValueError, match="at least 400"):
        save_overlay(img, amap, tmp_path / "y.png", score=1.0, max_side=200)


def test_annotated_overlay_has_a_colour_bar_and_the_verdict(tmp_path):
    img = np.full((64, 64, 3), 128, np.uint8)
    amap = np.zeros((64, 64))
    plain = np.asarray(Image.open(save_overlay(img, amap, tmp_path / "p.png", vmin=0, vmax=1)))
    assert plain.shape == (64, 2 * 64 + 4, 3)  # pixels only
    ann = np.asarray(Image.open(save_overlay(img, amap, tmp_path / "a.png", vmin=0, vmax=2, score=1.5,
                                             threshold=1.0, verdict="anomalous", title="x.png")))  # fmt: skip
    assert ann.shape[0] >= 256  # small images are enlarged for reading
    # the colour bar: a column right of both panels running from the scale's red top to its blue bottom
    reds = (ann[..., 0] > 100) & (ann[..., 2] < 60) & (ann[..., 1] < 60)
    blues = (ann[..., 2] > 100) & (ann[..., 0] < 60) & (ann[..., 1] < 60)
    cols = np.flatnonzero(reds.any(0) & blues.any(0))
    assert cols.size and cols.min() > 2 * 256  # beyond the two 256-px panels
    col = cols[0]
    assert np.flatnonzero(reds[:, col]).mean() < np.flatnonzero(blues[:, col]).mean()  # red on top
    # the verdict in vermilion (score >= threshold) in the header above the panels
    header = ann[: ann.shape[0] - 256 - 10]
    vermilion = (np.abs(header.astype(int) - (213, 94, 0)).sum(-1) < 60).sum()
    assert vermilion > 20


def test_overlay_names_keep_the_input_name():
    files = [Path("a/photo.png"), Path("b/photo.jpg"), Path("c/other.png"), Path("d/PHOTO.png")]
    assert overlay_names(files) == ["photo_anomaly.png", "photo_anomaly_2.png", "other_anomaly.png",
                                    "PHOTO_anomaly_3.png"]  # fmt: skip
    assert overlay_names(["only.png"]) == ["only_anomaly.png"]  # no suffix without a shared stem


def _train(task_name: str, method: str, tmp_path: Path) -> tuple[Path, Path]:
    task = get_task(task_name)
    folder = task.tiny_folder(tmp_path / "data")
    run = tmp_path / "run"
    sets = [a for kv in task.tiny_overrides(folder) for a in ("--set", kv)]
    argv = ["train", method, "--preset", "tiny", "--out", str(run), *sets, "--set", "train.progress=false"]
    assert main(argv) == 0
    return run, folder


@pytest.fixture(scope="module")
def anomaly_run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny PaDiM run on the anomaly task's tiny folder: (run folder, data folder)."""
    return _train("anomaly", "padim", tmp_path_factory.mktemp("anomaly"))


def test_anomaly_predict_writes_named_readable_overlays_and_says_anomalous(anomaly_run, tmp_path, capsys):
    run, folder = anomaly_run
    inputs = tmp_path / "inputs"
    for sub in ("one", "two"):
        (inputs / sub).mkdir(parents=True)
        Image.open(folder / "abnormal" / "a0.png").save(inputs / sub / "same.png")
    Image.fromarray(_big_image()).save(inputs / "big photo.png")
    capsys.readouterr()
    assert main(["predict", str(run), str(inputs), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert not res["errors"] and len(res["results"]) == 3
    threshold = res["results"][0]["threshold"]
    for r in res["results"]:
        assert isinstance(r["anomalous"], bool) and "fake" not in r
        assert r["threshold"] == threshold and np.isfinite(r["threshold"])
        assert r["anomalous"] == (r["score"] >= r["threshold"])
        assert r["verdict"] == ("anomalous" if r["anomalous"] else "normal")
    maps = {Path(r["path"]).relative_to(inputs).as_posix(): Path(r["map"]) for r in res["results"]}
    assert maps["big photo.png"].name == "big photo_anomaly.png"
    assert {maps["one/same.png"].name, maps["two/same.png"].name} == {
        "same_anomaly.png",
        "same_anomaly_2.png",
    }
    assert all(p.parent == run / "maps" for p in maps.values())
    w, h = Image.open(maps["big photo.png"]).size
    assert max(w, h) <= 1024 and w > h  # a 2000 x 1500 input: reduced, still landscape


def test_overlay_side_is_an_option_of_predict(anomaly_run, tmp_path):
    from trustvis.engine import load_method
    from trustvis.tasks import PredictOptions

    run, _ = anomaly_run
    Image.fromarray(_big_image()).save(tmp_path / "big.png")
    task, method = get_task("anomaly"), load_method(run)
    opts = PredictOptions(threshold=float(method.threshold), overlay_side=1500)
    (rec,) = task.predict(method, [tmp_path / "big.png"], opts, run).records
    assert 1024 < max(Image.open(rec["map"]).size) <= 1500
    with pytest.raises(ValueError, match="overlay_side"):
        task.predict(method, [tmp_path / "big.png"], PredictOptions(threshold=1.0, overlay_side=100), run)


def test_detect_predict_json_has_the_threshold(tmp_path, capsys):
    run, folder = _train("detect", "cnndet", tmp_path)
    capsys.readouterr()
    assert main(["predict", str(run), str(folder), "--json", "--threshold", "0.25"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert res and all(r["threshold"] == 0.25 and r["fake"] == (r["score"] >= 0.25) for r in res)
