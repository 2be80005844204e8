"""Bad command-line values: every one is refused before any work, in one line naming the flag or key.

Before issue 18 ``bench augment --seeds a`` and ``bench codec --lambdas x`` ended in a bare
``invalid literal for int()`` that named no flag, and ``bench codec --images 0`` (or ``-1``) silently ran all
images (or all but the last); counts of 0 or below were accepted everywhere.
"""

from __future__ import annotations

import pytest
from badcli import assert_clear_error

# (argv, what the one error line must name)
FLAG_CASES = [
    (["bench", "augment", "--quick", "--seeds", "a"], ["--seeds", "'a'"]),
    (["bench", "augment", "--quick", "--seeds", ","], ["--seeds"]),
    (["bench", "codec", "--quick", "--lambdas", "x"], ["--lambdas", "'x'"]),
    (["bench", "codec", "--quick", "--lambdas", "1e-3,-1"], ["--lambdas", "'-1'", "> 0"]),
    (["bench", "codec", "--quick", "--lambdas", "nan"], ["--lambdas", "'nan'"]),
    (["bench", "codec", "--quick", "--images", "0"], ["--images", ">= 1"]),
    (["bench", "codec", "--quick", "--images", "-1"], ["--images", ">= 1"]),
    (["bench", "codec", "--quick", "--iterations", "0"], ["--iterations", ">= 1"]),
    (["bench", "detect", "--quick", "--steps", "0"], ["--steps", ">= 1"]),
    (["bench", "detect", "--quick", "--attack-images", "-3"], ["--attack-images", ">= 0"]),
    (["bench", "detect", "--quick", "--queries", "0"], ["--queries", ">= 1"]),
    (["bench", "detect", "--quick", "--data-version", "v3"], ["--data-version", "'v3'", "v2"]),
    (["bench", "detect", "--quick", "--data-version", "v2", "--seeds", "a"], ["--seeds", "'a'"]),
    (["bench", "detect", "--quick", "--seeds", "0,1"], ["--seeds applies to --data-version v2"]),
    (["bench", "detect", "--data-version", "v2", "--synthbench", "demo"], ["v2 has no size 'demo'", "quick"]),
    (["data", "build", "synthbench", "--version", "v3"], ["--version", "'v3'", "v2"]),
    # each bench's sub-command takes only its own flags and the shared ones it uses
    (["bench", "detect", "--quick", "--ablation"], ["unrecognized arguments", "--ablation"]),
    (["bench", "codec", "--quick", "--steps", "5"], ["unrecognized arguments", "--steps"]),
    (["bench", "calibrate", "--quick", "--datasets", "a,b"], ["--datasets", "one data set"]),
    (["train", "cnndet", "--steps", "-5"], ["--steps", ">= 0"]),
    (["train", "cnndet", "--steps", "ten"], ["--steps", "'ten'"]),
    (["eval", "RUN", "--data", "D", "--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["eval", "RUN", "--data", "D", "--max-images", "-1"], ["--max-images", ">= 0"]),
    (["eval", "RUN", "--data", "D", "--attack-steps", "0"], ["--attack-steps", ">= 1"]),
    (["predict", "RUN", "x.png", "--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["calibrate", "--logits", "x.npz", "--max-iter", "0"], ["--max-iter", ">= 1"]),
]


@pytest.mark.parametrize("argv,needles", FLAG_CASES, ids=[" ".join(a) for a, _ in FLAG_CASES])
def test_bad_flag_value_is_one_line_naming_the_flag(cli, argv, needles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere: the value is refused while parsing
    res = cli(argv)
    assert_clear_error(res, *needles)
    assert list(tmp_path.iterdir()) == []


# already clear before issue 18; kept so that they stay so
NAME_CASES = [
    (["list", "--task", "nope"], ["'nope'", "detect"]),
    (["info", "nope"], ["'nope'", "cnndet"]),
    (["data", "build", "nope"], ["'nope'", "synthbench"]),
    (["bench", "nope"], ["'nope'", "detect"]),
    (["train", "nope"], ["'nope'", "cnndet"]),
    (["train", "cnndet", "--preset", "nope"], ["'nope'", "tiny"]),
    (["train", "cnndet", "--set", "nope=1"], ["'nope'", "model"]),
    (["train", "cnndet", "--set", "model.nope=1"], ["'model.nope'", "backbone"]),
    (["train", "cnndet", "--set", "train.steps=abc"], ["train.steps", "'abc'"]),
    (["train", "cnndet", "--set", "train.steps"], ["train.steps"]),
]


@pytest.mark.parametrize("argv,needles", NAME_CASES, ids=[" ".join(a) for a, _ in NAME_CASES])
def test_unknown_names_and_keys_list_the_valid_choices(cli, argv, needles, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_clear_error(cli(argv), *needles)
    assert not (tmp_path / "runs").exists()


def test_missing_paths_are_named(cli, tmp_path):
    missing = tmp_path / "nothing-here"
    assert_clear_error(cli(["report", missing]), str(missing), "does not exist")
    assert_clear_error(cli(["report", tmp_path]), str(tmp_path), "results.json")
    assert_clear_error(cli(["predict", missing, "x.png"]), str(missing), "model.json")
    assert_clear_error(cli(["eval", missing, "--data", tmp_path]), str(missing), "model.json")
    assert_clear_error(cli(["calibrate", "--logits", missing]), str(missing))
    assert_clear_error(cli(["codec", "decode", missing, tmp_path / "o.png"]), str(missing), "no such file")
    assert_clear_error(cli(["codec", "info", missing]), str(missing), "no such file")
    assert_clear_error(
        cli(["train", "cnndet", "--preset", "tiny", "--data", missing, "--out", tmp_path / "r"]), str(missing)
    )
    assert not (tmp_path / "r" / "model.json").exists()
