"""The Python API (issue 20): ``trustvis.load(run).predict(x)``, ``trustvis.build``, ``trustvis.list_methods``,
the lazy ``import trustvis`` and ``trustvis --version``.

One tiny run per task (detect, classify, anomaly), trained once for the module on the task's own tiny
folder. Every input kind must give the record the file route gives, and the file route the record of
``trustvis predict --json``: both go through one loop (:func:`trustvis.tasks.predict.predict_files`).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import trustvis
from trustvis import registry
from trustvis.cli import main
from trustvis.config import ConfigError
from trustvis.data.io import fit_array, load_image
from trustvis.engine.checkpoint import CheckpointError
from trustvis.tasks import get_task
from trustvis.tasks.predict import collect_files

#: task -> the method trained for it (cnndet tiny uses whole images: no crop of its own)
METHODS = {"detect": "cnndet", "classify": "classifier", "anomaly": "padim"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, list[Path]]]:
    """task -> (run folder, the image files of its tiny folder), each trained once with the tiny preset."""
    base = tmp_path_factory.mktemp("api")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTVIS_HOME", str(base / "home"))
        for name, method in METHODS.items():
            task = get_task(name)
            folder = task.tiny_folder(base / f"{name}_data")
            sets = [a for kv in task.tiny_overrides(folder) for a in ("--set", kv)]
            run = base / f"{name}_run"
            argv = ["-q", "train", method, "--preset", "tiny", "--out", str(run), *sets]
            assert main([*argv, "--set", "train.progress=false"]) == 0
            out[name] = (run, collect_files([folder]))
    return out


def _numbers(rec: dict) -> np.ndarray:
    """The numbers of a record: its score, or its class probabilities."""
    if "score" in rec:
        return np.array([rec["score"]])
    return np.array([t["prob"] for t in rec["top_k"]])


def assert_same(rec: dict, ref: dict, path: str | None) -> None:
    """``rec`` is the record ``ref`` (numbers within 1e-5), with ``path`` as its path."""
    assert rec["path"] == path
    assert set(rec) == set(ref)
    for key, want in ref.items():
        got = rec[key]
        if key == "path":
            continue
        if isinstance(want, float):
            assert got == pytest.approx(want, abs=1e-5), key
        elif isinstance(want, np.ndarray):
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=key)
        elif key == "top_k":
            assert [t["class"] for t in got] == [t["class"] for t in want]
            np.testing.assert_allclose([t["prob"] for t in got], [t["prob"] for t in want], atol=1e-5)
        else:
            assert got == want, key


def _kinds(pixels: np.ndarray) -> dict[str, object]:
    """Every in-memory form of the ``uint8 (H, W, 3)`` image ``pixels``."""
    t = torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    return {
        "numpy uint8": pixels,
        "numpy float32": pixels.astype(np.float32) / 255,
        "numpy float64": pixels / 255.0,
        "PIL": Image.fromarray(pixels),
        "torch uint8": t,
        "torch float32": t.float() / 255,
        "torch float64": t.double() / 255,
    }


# ------------------------------------------------------------------------------------------- predict


@pytest.mark.parametrize("task", list(METHODS))
def test_the_file_route_is_the_record_of_trustvis_predict_json(task, runs, capsys):
    run, files = runs[task]
    f = files[-1]
    rec = trustvis.load(run).predict(str(f))
    capsys.readouterr()
    assert main(["predict", str(run), str(f), "--json"]) == 0
    (ref,) = json.loads(capsys.readouterr().out)["results"]
    # the anomaly map: an array in the API, an overlay file (its path) on the command line
    assert isinstance(rec.pop("anomaly_map", None), np.ndarray) == (task == "anomaly")
    assert (ref.pop("map", None) is not None) == (task == "anomaly")
    assert rec == ref


@pytest.mark.parametrize("task", list(METHODS))
def test_every_input_kind_gives_the_record_of_its_file(task, runs):
    run, files = runs[task]
    p = trustvis.load(run)
    f, other = files[-1], files[0]  # different classes / real and fake / abnormal and normal
    ref = p.predict(f)
    assert ref["path"] == str(f)
    assert_same(p.predict(str(f)), ref, str(f))
    pixels = np.asarray(Image.open(f).convert("RGB"))
    for kind, x in _kinds(pixels).items():
        try:
            assert_same(p.predict(x), ref, None)
        except AssertionError as e:
            raise AssertionError(f"{kind}: {e}") from None
    assert_same(p.predict(Image.open(f)), ref, None)  # a lazily loaded PIL image
    # the comparison is not blind: another image scores otherwise
    assert np.abs(_numbers(p.predict(other)) - _numbers(ref)).max() > 1e-4


def test_gray_and_alpha_images_read_like_their_files(runs, tmp_path):
    run, files = runs["detect"]
    p = trustvis.load(run)
    rgb = np.asarray(Image.open(files[-1]).convert("RGB"))
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    Image.fromarray(gray).save(tmp_path / "gray.png")
    ref = p.predict(tmp_path / "gray.png")
    t = torch.from_numpy(gray.copy())
    for x in (gray, gray[:, :, None], gray / 255.0, t, t[None], Image.fromarray(gray)):
        assert_same(p.predict(x), ref, None)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)  # alpha: dropped
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    ref = p.predict(tmp_path / "rgba.png")
    for x in (rgba, torch.from_numpy(rgba.copy()).permute(2, 0, 1), Image.fromarray(rgba, "RGBA")):
        assert_same(p.predict(x), ref, None)
    assert ref["score"] == pytest.approx(p.predict(rgb)["score"], abs=1e-6)
    assert abs(ref["score"] - p.predict(gray)["score"]) > 1e-6  # gray is not the same image


def test_float_images_are_quantised_like_a_png_of_them():
    """``round(255 x)``: every uint8 level survives ``level / 255`` in any float type, and values between two
    levels go to the nearer one (the scores of a tiny model hardly tell one level from the next)."""
    from trustvis.api import _pixels

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    want = np.repeat(levels[:, :, None], 3, axis=2)
    for dtype in (np.float16, np.float32, np.float64):
        np.testing.assert_array_equal(_pixels((levels / 255).astype(dtype), "x"), want, err_msg=str(dtype))
        t = torch.from_numpy((levels / 255).astype(dtype))
        np.testing.assert_array_equal(_pixels(t, "x"), want, err_msg=str(dtype))
    np.testing.assert_array_equal(
        _pixels(torch.from_numpy(levels / 255).bfloat16()[:1, :2], "x")[0, :, 0], [0, 1]
    )
    np.testing.assert_array_equal(_pixels((levels[:, :15] + 0.45) / 255, "x")[:, :, 0], levels[:, :15])
    np.testing.assert_array_equal(_pixels((levels[:, :15] + 0.55) / 255, "x")[:, :, 0], levels[:, :15] + 1)


def test_a_list_gives_a_list_in_order(runs):
    run, files = runs["detect"]
    p = trustvis.load(run)
    a, b, c = files[0], files[-1], files[len(files) // 2]
    pix_b = np.asarray(Image.open(b).convert("RGB"))
    inputs = [a, pix_b, Image.open(c), str(a)]
    out = p.predict(inputs)
    assert isinstance(out, list) and len(out) == 4
    for rec, x, path in zip(out, inputs, [str(a), None, None, str(a)]):
        assert_same(rec, p.predict(x), path)
    assert len({round(r["score"], 6) for r in out[:3]}) == 3  # three different images, in their order
    assert p.predict(tuple(inputs[:2])) == out[:2]
    (one,) = p.predict([pix_b])
    assert_same(one, out[1], None)
    assert p.predict([]) == []


def test_large_images_are_fitted_like_files(runs, tmp_path):
    """``max_side``: an in-memory image is centre-cropped (detectors) or reduced (the others) as a file is."""
    run, _ = runs["detect"]
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    p = trustvis.load(run, max_side=24)
    ref = p.predict(tmp_path / "big.png")
    assert_same(p.predict(big), ref, None)
    assert_same(p.predict(torch.from_numpy(big).permute(2, 0, 1)), ref, None)
    whole = trustvis.load(run, max_side=0).predict(big)  # the fit matters to this model
    assert abs(whole["score"] - ref["score"]) > 1e-6
    photo = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    for fit in ("resize", "crop"):
        np.testing.assert_array_equal(
            fit_array(photo, 64, fit), load_image(tmp_path / "photo.png", max_side=64, fit=fit)
        )
    assert fit_array(photo, 0, "resize") is photo and fit_array(photo, 300, "crop") is photo


def test_anomaly_maps_are_arrays_unless_overlays_are_asked_for(runs, tmp_path, capsys):
    run, files = runs["anomaly"]
    p = trustvis.load(run)
    before = sorted(run.rglob("*"))
    rec = p.predict(files[0])
    assert sorted(run.rglob("*")) == before  # no overlay written anywhere
    amap = rec["anomaly_map"]
    assert isinstance(amap, np.ndarray) and amap.ndim == 2 and amap.dtype == np.float32
    assert np.isfinite(amap).all() and amap.std() > 0
    assert "map" not in rec
    rec = p.predict(np.asarray(Image.open(files[0]).convert("RGB")), maps_dir=tmp_path / "maps")
    assert Path(rec["map"]).parent == tmp_path / "maps" and Path(rec["map"]).is_file()
    np.testing.assert_allclose(rec["anomaly_map"], amap, atol=1e-5)
    # the command line keeps its overlays in RUN/maps and JSON-able records
    capsys.readouterr()
    assert main(["predict", str(run), str(files[0]), "--json"]) == 0
    (cli_rec,) = json.loads(capsys.readouterr().out)["results"]
    assert "anomaly_map" not in cli_rec and Path(cli_rec["map"]).parent == run / "maps"


def test_threshold_and_top_k_reach_the_task(runs):
    run, files = runs["detect"]
    p = trustvis.load(run)
    assert p.threshold == 0.5 and p.method_name == "cnndet" and p.task.name == "detect"
    assert trustvis.load(run, threshold=0.0).predict(files[0])["fake"] is True
    p.threshold = 1.5
    assert p.predict(files[0])["verdict"] == "real"
    run, files = runs["classify"]
    p = trustvis.load(run, top_k=2)
    assert p.threshold is None
    rec = p.predict(files[0])
    assert (
        len(rec["top_k"]) == 2 and rec["class"] in json.loads((run / "classes.json").read_text())["classes"]
    )
    run, _ = runs["anomaly"]
    assert trustvis.load(run).threshold == pytest.approx(float(trustvis.load(run).method.threshold))


# -------------------------------------------------------------------------------------- bad inputs


def _truncated(tmp: Path, src: Path) -> Path:
    path = tmp / "trunc.png"
    path.write_bytes(src.read_bytes()[:60])
    return path


BAD = [
    (lambda tmp, f: np.zeros((8, 8, 2), np.uint8), ["numpy array (8, 8, 2) uint8", "(H, W, C)"]),
    (lambda tmp, f: np.zeros((3, 8, 8)), ["numpy array (3, 8, 8) float64", "channels first"]),
    (lambda tmp, f: np.zeros((8, 8, 3), np.int64), ["dtype int64", "uint8"]),
    (lambda tmp, f: np.full((8, 8, 3), 2.0), ["float values must lie in [0, 1]", "[2, 2]"]),
    (lambda tmp, f: np.full((8, 8, 3), np.nan, np.float32), ["float32", "NaN"]),
    (lambda tmp, f: np.zeros((0, 8, 3), np.uint8), ["(0, 8, 3)", "empty"]),
    (lambda tmp, f: np.zeros((2, 8, 8, 3), np.uint8), ["(2, 8, 8, 3)", "list(images)"]),
    (lambda tmp, f: torch.zeros(8, 8, 3), ["torch tensor (8, 8, 3) float32", "channels last"]),
    (lambda tmp, f: torch.zeros(3, 8, 8, dtype=torch.int32), ["int32", "uint8"]),
    (lambda tmp, f: torch.zeros(2, 3, 8, 8), ["torch tensor (2, 3, 8, 8)", "list(images)"]),
    (lambda tmp, f: tmp / "missing.png", ["missing.png", "does not exist"]),
    (lambda tmp, f: _truncated(tmp, f), ["trunc.png", "corrupt or truncated"]),
    (lambda tmp, f: tmp, ["is a folder"]),
]  # fmt: skip


@pytest.mark.parametrize(("make", "needles"), BAD, ids=[n[0] for _, n in BAD])
def test_a_bad_input_raises_one_clear_line(make, needles, runs, tmp_path):
    run, files = runs["detect"]
    p = trustvis.load(run)
    x = make(tmp_path, files[0])
    with pytest.raises(ValueError) as e:
        p.predict(x)
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg
    if isinstance(x, Path):
        assert msg.startswith(str(x))
    # in a list, the message also says which input it is
    with pytest.raises(ValueError, match=r"^input 1 \("):
        p.predict([files[0], x])


@pytest.mark.parametrize("x", [3, b"\x89PNG", None, [[np.zeros((8, 8, 3), np.uint8)]]])
def test_what_is_no_image_is_a_type_error(x, runs):
    p = trustvis.load(runs["detect"][0])
    with pytest.raises(TypeError, match="is not an image: pass a file path, a PIL image"):
        p.predict(x)


def test_in_memory_inputs_are_checked_before_the_model_runs(runs):
    p = trustvis.load(runs["detect"][0])
    calls = []
    real = p.method.predict
    p.method.predict = lambda batch: calls.append(batch) or real(batch)
    good = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=r"input 2 \(numpy array \(16, 16\) int16\)"):
        p.predict([good, good, good.astype(np.int16)[:, :, 0]])
    assert calls == []
    p.predict(good)
    assert len(calls) == 1  # the probe sees the model's calls


def test_load_refuses_what_is_not_a_run(runs, tmp_path):
    _, files = runs["detect"]
    data = files[0].parent
    for folder in (data, tmp_path / "nowhere"):
        with pytest.raises(CheckpointError) as e:
            trustvis.load(folder)
        msg = str(e.value)
        assert isinstance(e.value, ValueError) and "\n" not in msg
        assert msg.startswith(str(folder)) and "not a trained run" in msg
    for kwargs, needle in [({"threshold": float("nan")}, "threshold"), ({"top_k": 0}, "top_k"),
                           ({"batch_size": "2"}, "batch_size"), ({"max_side": -1}, "max_side"),
                           ({"device": "tpu"}, "Unknown device")]:  # fmt: skip
        with pytest.raises(ValueError, match=needle):
            trustvis.load(runs["detect"][0], **kwargs)


# ------------------------------------------------------------------------------------ build, list


def test_build_takes_sections_and_model_fields():
    m = trustvis.build("cnndet", preset="tiny", blur_prob=0.25, train={"lr": 0.003})
    assert isinstance(m, registry.get("cnndet").cls)
    assert m.config.blur_prob == 0.25 and m.run_config.train.lr == 0.003
    assert m.config.backbone == "tiny"  # the preset's value stays
    same = trustvis.build("cnndet", preset="tiny", model={"blur_prob": 0.25})
    assert same.config == m.config
    assert trustvis.build("cnndet", preset="tiny").config.blur_prob == 0.1  # the tiny preset's


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"nope": 1}, ConfigError, "model.nope"),
        ({"train": {"lrr": 1}}, ConfigError, "train.lrr"),
        ({"blur_prob": "x"}, ConfigError, "model.blur_prob"),
        ({"train": {"steps": -5}}, ConfigError, "train.steps"),
        ({"preset": "huge"}, ConfigError, "choose from"),
        ({"train": 3}, TypeError, "train= takes a dict"),
        ({"blur_prob": 0.2, "model": {"blur_prob": 0.3}}, ConfigError, "given twice"),
    ],
)
def test_build_names_a_bad_override(kwargs, error, needle):
    with pytest.raises(error, match=needle):
        trustvis.build("cnndet", **{"preset": "tiny", **kwargs})


def test_build_unknown_method_lists_the_choices():
    with pytest.raises(KeyError, match="choose from"):
        trustvis.build("nope")


def test_a_model_field_named_like_a_run_section_is_set_through_model():
    """``build``'s rule: ``model=``, ``train=``, ``data=``, ``lora=`` are always the run's sections, so the lora
    method's own ``lora`` field (its adapter settings) is reached through ``model=``."""
    from trustvis.api import RUN_SECTIONS

    clash = {s.name: f.name for s in registry.list_methods() for f in dataclasses.fields(s.config)
             if f.name in RUN_SECTIONS}  # fmt: skip
    assert clash == {"lora": "lora"}  # a new clash: check that the rule still reads well for it
    m = trustvis.build("lora", preset="tiny", model={"lora": {"r": 3}})
    assert m.config.lora.r == 3 and m.run_config.lora.r == 0


def test_list_methods_is_the_registry():
    assert trustvis.list_methods() == sorted(s.name for s in registry.list_methods())
    assert trustvis.list_methods("anomaly") == [s.name for s in registry.list_methods("anomaly")]
    assert "cnndet" in trustvis.list_methods("detect") and "cnndet" not in trustvis.list_methods("anomaly")
    with pytest.raises(KeyError, match="choose from"):
        trustvis.list_methods("nope")


# ------------------------------------------------------------------------------ package, command line


def test_import_trustvis_stays_light():
    code = (
        "import sys, trustvis\n"
        "names = dir(trustvis); trustvis.__version__; trustvis.list_methods('detect')\n"
        "from trustvis import build, load, Predictor\n"
        "print('torch' in sys.modules)\n"
        "trustvis.build('cnndet', preset='tiny')\n"  # the probe is not blind: building needs torch
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_lazy_names():
    assert set(trustvis.__all__) == {"Predictor", "__version__", "build", "list_methods", "load"}
    assert set(trustvis.__all__) <= set(dir(trustvis))
    from trustvis import api, load

    assert load is api.load and trustvis.Predictor is api.Predictor
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        trustvis.nope  # noqa: B018


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"trustvis {trustvis.__version__}\n"
