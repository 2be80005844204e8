"""Bad-input corpus, image ↔ speech runs (issue 25): every bad file, folder or setting ends in a correct result or a
one-line error naming the file or field, and nothing good is lost.

predict of a corrupt, empty (0 bytes), silent or NaN .wav, a text file named .ogg and a non-image .png among good
images and clips (an 8 kHz stereo clip and a 5 s clip are good: resampled, mixed, cut); folders without speech/ or
image/, with class folders that differ between the modalities, with no readable clip or image, with a few bad files
among good ones; data settings (name, images, sources, fraction, seconds, root) and model settings (modalities,
vae_steps, vaes_from, latent) that no run can use.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from badcli import assert_clear_error

from trustvis import registry
from trustvis.config import ConfigError, make_run_config, to_dict
from trustvis.engine.checkpoint import save_final
from trustvis.tasks import PredictOptions, TaskError, get_task
from trustvis.tasks.multimodal import read_folder, tiny_multimodal_folder

LAYOUT = "ROOT/{train,val,test}/{image,speech}/<class>/*"


def _one_line(msg: str, *needles: str) -> str:
    assert "\n" not in msg, msg
    for n in needles:
        assert str(n) in msg, f"{n!r} not named in: {msg}"
    return msg


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tiny_multimodal_folder(tmp_path_factory.mktemp("mm") / "data")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """An (untrained) tiny xmodal run for 0.5 s clips, saved as training saves it."""
    run = make_run_config("xmodal", "tiny", overrides=["model.frames=51"])
    out = tmp_path_factory.mktemp("run") / "xmodal"
    save_final(registry.get("xmodal").cls(run.model), out, to_dict(run), 0)
    return out


def _wave(seconds: float = 0.5, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture
def inputs(tmp_path, folder) -> dict[str, Path]:
    """Good and bad predict inputs, good ones first in their kind."""
    d = tmp_path / "in"
    d.mkdir()
    f = {
        "good.wav": folder / "test" / "speech" / "1" / "dee_1.wav",
        "good.png": folder / "test" / "image" / "2" / "0.png",
        "stereo8k.wav": d / "stereo8k.wav",
        "long.wav": d / "long.wav",
        "corrupt.wav": d / "corrupt.wav",
        "empty.wav": d / "empty.wav",
        "silent.wav": d / "silent.wav",
        "nan.wav": d / "nan.wav",
        "notes.ogg": d / "notes.ogg",
        "text.png": d / "text.png",
    }
    sf.write(str(f["stereo8k.wav"]), np.stack([_wave(0.5, 8000), 0.5 * _wave(0.5, 8000)], 1), 8000)
    sf.write(str(f["long.wav"]), _wave(5.0), 16000)
    f["corrupt.wav"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(200)))
    f["empty.wav"].write_bytes(b"")
    sf.write(str(f["silent.wav"]), np.zeros(8000, np.float32), 16000)
    nan = _wave()
    nan[100] = np.nan
    sf.write(str(f["nan.wav"]), nan, 16000, subtype="FLOAT")
    f["notes.ogg"].write_text("not audio at all")
    f["text.png"].write_text("not an image")
    return f


GOOD = {"good.wav": "speech", "good.png": "image", "stereo8k.wav": "speech", "long.wav": "speech"}
BAD = {
    "corrupt.wav": "not a readable audio file",
    "empty.wav": "not a readable audio file",
    "silent.wav": "silent",
    "nan.wav": "NaN or infinite",
    "notes.ogg": "not a readable audio file",
    "text.png": "Cannot read image",
}


def test_predict_names_each_bad_file_in_one_line_and_keeps_the_good_ones(run_dir, inputs, caplog):
    from trustvis.engine import load_method

    order = ["corrupt.wav", "good.wav", "empty.wav", "silent.wav", "good.png", "text.png", "nan.wav",
             "stereo8k.wav", "notes.ogg", "long.wav"]  # fmt: skip
    files = [inputs[k] for k in order]
    with caplog.at_level(logging.WARNING):
        pred = get_task("multimodal").predict(load_method(run_dir), files, PredictOptions(), run_dir)
    assert [r["path"] for r in pred.records] == [str(inputs[k]) for k in order if k in GOOD]
    assert [r["modality"] for r in pred.records] == [GOOD[k] for k in order if k in GOOD]
    assert all(len(r["z"]) == r["dim"] == 4 and np.isfinite(r["z"]).all() for r in pred.records)
    assert [e["path"] for e in pred.errors] == [str(inputs[k]) for k in order if k in BAD]
    for e in pred.errors:
        _one_line(e["error"], e["path"], BAD[Path(e["path"]).name])
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert all(str(inputs[k]) in warned for k in BAD)


def test_predict_cli_jsonl_gives_error_rows_for_the_bad_files(run_dir, inputs, capsys):
    from trustvis.cli import main

    capsys.readouterr()
    assert main(["predict", str(run_dir), *map(str, inputs.values()), "--jsonl"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    good = [r for r in rows if "error" not in r]
    bad = [r for r in rows if "error" in r]
    assert sorted(r["path"] for r in good) == sorted(str(inputs[k]) for k in GOOD)
    assert sorted(r["path"] for r in bad) == sorted(str(inputs[k]) for k in BAD)
    assert rows == good + bad  # errors last
    for r in bad:
        _one_line(r["error"], r["path"])


def test_predict_cli_with_only_bad_files_fails_and_names_them(run_dir, inputs, capsys):
    from trustvis.cli import main

    capsys.readouterr()
    assert main(["predict", str(run_dir), str(inputs["empty.wav"]), str(inputs["text.png"]), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"] == [] and [e["path"] for e in doc["errors"]] == [
        str(inputs["empty.wav"]),
        str(inputs["text.png"]),
    ]


def test_predict_refuses_depth_maps_and_folders_without_inputs(run_dir, inputs, tmp_path, cli):
    from trustvis.engine import load_method

    with pytest.raises(TaskError, match="depth maps"):
        get_task("multimodal").predict(
            load_method(run_dir), [inputs["good.png"]], PredictOptions(depth=[inputs["good.png"]]), run_dir
        )
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("x")
    res = cli(["predict", run_dir, tmp_path / "none"])
    assert_clear_error(res, "no input files", str(tmp_path / "none"), "wav", "png")


# ----------------------------------------------------------------------------------------------------
# folder layouts


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


@pytest.mark.parametrize("kind", ["no speech", "no image", "other classes", "no classes", "no clip", "no image file",
                                  "missing root"])  # fmt: skip
def test_folder_layout_errors_name_the_folder(kind, folder, tmp_path):
    root = _copy(folder, tmp_path)
    train = root / "train"
    needles: tuple[str, ...]
    if kind == "no speech":
        shutil.rmtree(train / "speech")
        needles = (f"{root}: no train/speech folder", LAYOUT)
    elif kind == "no image":
        shutil.rmtree(train / "image")
        needles = (f"{root}: no train/image folder", LAYOUT)
    elif kind == "other classes":
        (train / "speech" / "2").rename(train / "speech" / "two")
        needles = (str(train), "same class folders", "'2'", "'two'")
    elif kind == "no classes":
        for d in (train / "image").iterdir():
            shutil.rmtree(d)
        needles = (str(train), "same class folders", "image/ has []")
    elif kind == "no clip":
        for w in (train / "speech").rglob("*.wav"):
            w.write_bytes(b"RIFF junk")
        needles = (str(train / "speech"), "none of the 6 clips could be read")
    elif kind == "no image file":
        for p in (train / "image").rglob("*.png"):
            p.write_text("not an image")
        needles = (str(train), "no readable image", str(train / "image"))
    else:
        root = tmp_path / "nowhere"
        needles = (str(root), "no image folder", LAYOUT)
    with pytest.raises(ConfigError) as e:
        read_folder(root, "train", 0.5)
    _one_line(str(e.value), *needles)


def test_a_few_bad_files_are_skipped_and_named(folder, tmp_path, caplog):
    root = _copy(folder, tmp_path)
    bad_clip = root / "test" / "speech" / "0" / "dee_0.wav"
    bad_clip.write_bytes(b"")
    bad_image = root / "test" / "image" / "1" / "2.png"
    bad_image.write_text("not an image")
    with caplog.at_level(logging.WARNING):
        data = read_folder(root, "test", 0.5)
    assert len(data.images) == 11 and len(data.speech) == 5 and data.speech.shape[1:] == (40, 51)
    assert sorted(str(p) for p, _ in data.skipped) == sorted([str(bad_clip), str(bad_image)])
    assert (
        sorted(data.speech_labels.tolist()) == [0, 1, 1, 2, 2]
        and (np.bincount(data.image_labels) == [4, 3, 4]).all()
    )
    for _, why in data.skipped:
        _one_line(why)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert str(bad_clip) in warned and str(bad_image) in warned


def test_eval_names_the_skipped_files(folder, tmp_path, run_dir, capsys):
    from trustvis.cli import main

    root = _copy(folder, tmp_path)
    bad = root / "test" / "speech" / "2" / "eve_2.wav"
    bad.write_bytes(b"RIFF junk")
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--data", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 unreadable file(s)" in out and str(bad) in out
    assert "n_clips_real" in out and re.search(r"n_clips_real\s*\|?\s*5\b", out), out


def test_eval_of_a_folder_without_its_test_split_is_a_clear_error(folder, tmp_path, run_dir, cli):
    root = _copy(folder, tmp_path)
    shutil.rmtree(root / "test" / "speech")
    res = cli(["eval", run_dir, "--data", root])
    assert_clear_error(res, str(root), "test/speech")


# ----------------------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize(
    ("setting", "needles"),
    [
        ("data.name=nope", ("data.name='nope'", "'digits'", "'folder'")),
        ("data.images=bad", ("data.images='bad'", "opencv-digits", "sklearn-digits")),
        ("data.sources=[bad]", ("data.sources=['bad']", "tuxpaint", "asterisk", "espeak-ng", "flite")),
        ("data.sources=[]", ("data.sources=[]", "tuxpaint")),
        ("data.fraction=2", ("data.fraction=2.0", "[0, 1]")),
        ("data.fraction=-0.1", ("data.fraction=-0.1", "[0, 1]")),
        ("data.seconds=0", ("data.seconds=0.0", "[0.1, 10]")),
        ("data.name=folder", ("data.name=folder", "data.root")),
    ],
)
def test_bad_data_settings_name_the_field_and_the_choices(setting, needles):
    with pytest.raises(ConfigError) as e:
        make_run_config("xmodal", "tiny", overrides=[setting])
    _one_line(str(e.value), *needles)


@pytest.mark.parametrize(
    ("method", "setting", "needles"),
    [
        ("xmodal", "model.modalities=[image]", ("model.modalities=['image']", "at least 2", "'speech'", "'label'")),
        ("xmodal", "model.modalities=[image,video]", ("model.modalities=['image', 'video']", "'speech'")),
        ("xmodal", "model.modalities=[image,image]", ("model.modalities=['image', 'image']", "different")),
        ("latentreg", "model.modalities=[speech]", ("model.modalities=['speech']", "at least 2")),
        ("xmodal", "model.vae_steps=-1", ("model.vae_steps=-1", ">= 0")),
        ("xmodal", "model.label_latent=0", ("model.label_latent=0", ">= 1")),
        ("jmvae", "model.latent=0", ("model.latent=0", ">= 1")),
        ("xmodal", "model.speech_sigma=0", ("model.speech_sigma=0", "> 0")),
    ],
)  # fmt: skip
def test_bad_model_settings_are_one_line_errors_and_leave_no_run(
    method, setting, needles, folder, tmp_path, cli
):
    if setting != "model.label_latent=0":
        with pytest.raises(ConfigError) as e:
            registry.get(method).cls(make_run_config(method, "tiny", overrides=[setting]).model)
        _one_line(str(e.value), *needles)
    else:  # only refused when the label modality is used
        registry.get(method).cls(make_run_config(method, "tiny", overrides=[setting]).model)
        setting = f"{setting} model.modalities=[image,speech,label]"
    out = tmp_path / "run"
    sets = [a for kv in get_task("multimodal").tiny_overrides(folder) for a in ("--set", kv)]
    sets += [a for kv in setting.split() for a in ("--set", kv)]
    res = cli(["train", method, "--preset", "tiny", "--out", out, *sets, "--set", "train.progress=false"])
    assert_clear_error(res, *needles)
    assert not out.exists()


def test_vaes_from_a_missing_run_is_a_clear_error(folder, tmp_path, cli):
    out = tmp_path / "run"
    sets = [a for kv in get_task("multimodal").tiny_overrides(folder) for a in ("--set", kv)]
    res = cli(["train", "xmodal", "--preset", "tiny", "--out", out, *sets, "--set", f"model.vaes_from={tmp_path}",
               "--set", "train.progress=false"])  # fmt: skip
    assert_clear_error(res, f"model.vaes_from={tmp_path}", "not a finished xmodal run")
    assert not out.exists()


def test_no_pairs_for_the_associators_is_a_clear_error(folder, tmp_path, cli):
    out = tmp_path / "run"
    sets = [a for kv in get_task("multimodal").tiny_overrides(folder) for a in ("--set", kv)]
    res = cli(["train", "latentreg", "--preset", "tiny", "--out", out, *sets, "--set", "data.fraction=0",
               "--set", "train.progress=false"])  # fmt: skip
    assert_clear_error(res, "data.fraction=0.0", "pairs none of the 6 training clips")
    assert not out.exists()


@pytest.mark.parametrize("modalities", ["[image,label]", "[speech,label]"])
def test_a_run_without_speech_or_image_is_refused_or_finishes(modalities, folder, tmp_path, cli):
    out = tmp_path / "run"
    sets = [a for kv in get_task("multimodal").tiny_overrides(folder) for a in ("--set", kv)]
    res = cli(["train", "xmodal", "--preset", "tiny", "--out", out, *sets, "--set", f"model.modalities={modalities}",
               "--set", "train.progress=false"])  # fmt: skip
    if res.code == 0:
        assert (out / "model.json").is_file()
    else:
        assert_clear_error(res, "model.modalities")
        assert not out.exists()


def test_eval_on_a_one_class_folder_names_the_folder(run_dir, tmp_path, cli):
    root = tiny_multimodal_folder(tmp_path / "one", classes=1)
    res = cli(["eval", run_dir, "--data", root])
    assert_clear_error(res, str(root))


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--lora", "r=2"], "give LoRA targets explicitly"),
        (["--set", "train.trainable=heads"], "no classification head"),
    ],
)
def test_lora_and_linear_probe_without_a_backbone_are_one_line_errors(flags, needle, folder, tmp_path, cli):
    out = tmp_path / "run"
    sets = [a for kv in get_task("multimodal").tiny_overrides(folder) for a in ("--set", kv)]
    res = cli(
        ["train", "xmodal", "--preset", "tiny", "--out", out, *sets, *flags, "--set", "train.progress=false"]
    )
    assert_clear_error(res, needle)
    assert not out.exists()
