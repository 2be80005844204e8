"""Bad-input corpus, active learning (issue 23): every bad setting, label file or run folder ends in a one-line
message that names the file or the setting and the valid choices, and loses nothing.

Settings: an unknown pool, oracle or data set, data.initial 0 or larger than the pool, a dominant class the data
set does not have, a negative budget of rounds. Label CSVs: missing columns, an unknown class, a missing image,
no label filled, not UTF-8. Run folders: not an active run, a corrupt active.json, a simulated loop given to
`active label`, an unfinished loop rerun without --resume.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustvis.cli import main


def _err(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    msg = capsys.readouterr().err.strip()
    assert msg.count("\n") == 0, msg
    for n in needles:
        assert n in msg, f"{n!r} not in: {msg}"
    return msg


TRAIN = ["train", "entropy", "--preset", "tiny", "--set", "train.progress=false"]


@pytest.mark.parametrize(
    ("setting", "needles"),
    [
        ("data.pool=skewed", ("data.pool='skewed'", "balanced", "dominant", "longtail")),
        ("data.oracle=crowd", ("data.oracle='crowd'", "simulated", "user")),
        ("data.name=cifar10", ("data.name='cifar10'", "fashion-mnist")),
        ("data.initial=0", ("data.initial=0", ">= 1")),
        ("data.initial=5000", ("data.initial=5000", "pool holds")),
        ("data.rounds=-1", ("data.rounds=-1", ">= 0")),
        ("data.imbalance=0.5", ("data.imbalance=0.5", ">= 1")),
    ],
)
def test_bad_settings(tmp_path, capsys, setting, needles):
    out = tmp_path / "run"
    _err(capsys, [*TRAIN, "--set", setting, "--out", str(out)], *needles)
    assert not (out / "model.json").exists()


def test_dominant_class_out_of_range(tmp_path, capsys):
    _err(capsys, [*TRAIN, "--set", "data.pool=dominant", "--set", "data.dominant=12", "--out", str(tmp_path / "r")],
         "data.dominant=12", "0..9")  # fmt: skip


@pytest.fixture
def user_run(tmp_path):
    from trustvis.tasks import get_task

    root = get_task("classify").tiny_folder(tmp_path / "root")
    run = tmp_path / "run"
    assert main([*TRAIN, "--data", str(root), "--set", "data.oracle=user", "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("file,class\nx.png,dark\n", ("'path' and 'label' columns",)),
        ("path,label\n{img},purple\n", ("line 2", "'purple' is not a class", "bright")),
        ("path,label\n{missing},dark\n", ("line 2", "not found")),
        ("path,label\n{img},\n", ("no row has a label yet",)),
        ("path,label\n,dark\n", ("line 2", "without a path")),
    ],
)
def test_bad_label_files(user_run, tmp_path, capsys, text, needles):
    img = next((tmp_path / "root" / "dark").glob("*.png"))
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(text.format(img=img, missing=tmp_path / "gone.png"))
    before = (user_run / "active.json").read_bytes()
    _err(capsys, ["active", "label", str(user_run), str(csv_path)], str(csv_path), *needles)
    assert (user_run / "active.json").read_bytes() == before  # nothing added, nothing lost


def test_label_file_not_utf8(user_run, tmp_path, capsys):
    bad = tmp_path / "labels.csv"
    bad.write_bytes(b"path,label\n\xff\xfe,dark\n")
    _err(capsys, ["active", "label", str(user_run), str(bad)], str(bad), "cannot read")


def test_bad_run_folders(user_run, tmp_path, capsys):
    _err(capsys, ["active", "status", str(tmp_path)], str(tmp_path), "not an active-learning run")
    _err(capsys, ["active", "query", str(tmp_path), "--pool", str(tmp_path)], "not an active-learning run")
    state = user_run / "active.json"
    state.write_text("{not json")
    _err(capsys, ["active", "status", str(user_run)], str(state))
    state.write_text(json.dumps({"format": 99, "rounds": []}))
    _err(capsys, ["active", "status", str(user_run)], str(state), "format")


def test_empty_pool_folder(user_run, tmp_path, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    _err(capsys, ["active", "query", str(user_run), "--pool", str(empty)], str(empty), "no unlabelled image")


def test_unfinished_loop_needs_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    (out / "model.json").unlink()  # as if the loop had stopped before its end
    msg = _err(capsys, [*TRAIN, "--out", str(out)], str(out), "--resume")
    assert "unfinished active-learning loop" in msg
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 0
    assert (out / "model.json").is_file()


def test_simulated_run_refuses_labels(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    csv_path = Path(tmp_path / "l.csv")
    csv_path.write_text("path,label\n")
    _err(capsys, ["active", "label", str(out), str(csv_path)], "simulated loop", "data.oracle=user")
