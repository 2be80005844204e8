"""``trustvis train STRATEGY`` runs the whole loop; ``trustvis active query / label / status`` with a person as the
oracle, through ``main(argv)`` on a tiny class-per-folder tree."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from trustvis.cli import main
from trustvis.data.io import save_png

LEVELS = {"dark": 40, "mid": 128, "bright": 215}


def _write(path: Path, level: int, rng) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(path, np.clip(level + rng.normal(0, 12, (16, 16, 3)), 0, 255).astype(np.uint8))


@pytest.fixture
def folders(tmp_path) -> Path:
    """ROOT/{train,test}/<class>/*.png and an unlabelled pool/ (file name = true class)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 4)):
        for c, level in LEVELS.items():
            for i in range(n):
                _write(tmp_path / "root" / split / c / f"{i}.png", level, rng)
    for i in range(12):
        c = list(LEVELS)[i % 3]
        _write(tmp_path / "pool" / f"{c}_{i}.png", LEVELS[c], rng)
    return tmp_path


def _fill(csv_path: Path, out: Path, n: int | None = None) -> Path:
    rows = list(csv.DictReader(csv_path.read_text().splitlines()))
    for r in rows[:n]:
        r["label"] = Path(r["path"]).name.split("_")[0]
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def test_simulated_loop_through_train(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "margin", "--preset", "tiny", "--set", "data.rounds=2", "--set", "train.progress=false",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "round 2: 40 labels" in text and "queried per class" in text
    state = json.loads((out / "active.json").read_text())
    assert [r["labels"] for r in state["rounds"]] == [20, 30, 40]
    assert main(["active", "status", str(out)]) == 0
    assert "simulated oracle" in capsys.readouterr().out
    assert main(["predict", str(out), str(tmp_path / "run" / "curves.png")]) == 0  # a classifier run
    with pytest.raises(SystemExit):
        main(["active", "query", str(out)])  # --pool is required
    assert main(["active", "query", str(out), "--pool", str(tmp_path)]) == 2
    assert "simulated loop" in capsys.readouterr().err


def test_user_oracle_query_label_round_trip(folders, capsys):
    run = folders / "run"
    assert main(["train", "entropy", "--preset", "tiny", "--data", str(folders / "root"), "--set", "data.oracle=user",
                 "--set", "train.progress=false", "--out", str(run)]) == 0  # fmt: skip
    assert "trustvis active query" in capsys.readouterr().out
    assert main(["active", "query", str(run), "--pool", str(folders / "pool"), "--k", "5"]) == 0
    queried = run / "queries" / "round-01.csv"
    rows = list(csv.DictReader(queried.read_text().splitlines()))
    assert (
        len(rows) == 5 and {r["label"] for r in rows} == {""} and [r["rank"] for r in rows] == list("12345")
    )
    filled = _fill(queried, folders / "labels.csv", n=4)
    assert main(["active", "label", str(run), str(filled)]) == 0
    out = capsys.readouterr().out
    assert "added 4 label(s) (1 row(s) still without a label)" in out and "round 1: 25 labels" in out
    state = json.loads((run / "active.json").read_text())
    assert len(state["user_labels"]) == 4 and len(state["rounds"]) == 2 and "pending" not in state
    # the next query never asks again for an image labelled already
    assert main(["active", "query", str(run), "--pool", str(folders / "pool"), "--k", "20"]) == 0
    again = list(csv.DictReader((run / "queries" / "round-02.csv").read_text().splitlines()))
    labelled = {e["path"] for e in state["user_labels"]}
    assert len(again) == 8 and not labelled & {str(Path(r["path"]).resolve()) for r in again}
    assert main(["active", "status", str(run)]) == 0
    assert "waiting for labels" in capsys.readouterr().out
