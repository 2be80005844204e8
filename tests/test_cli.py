"""The command line through ``main(argv)``: every subcommand, help texts and error paths."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from trustvis.cli import main

SUBCOMMANDS = ["list", "info", "data", "train", "eval", "predict", "bench", "report"]


def train_argv(method: str, out, data=None, *settings: str) -> list[str]:
    """``trustvis train METHOD --preset tiny`` without progress bars, plus ``--set`` for each setting."""
    argv = ["train", method, "--preset", "tiny", "--out", str(out), "--set", "train.progress=false"]
    if data is not None:
        argv += ["--data", str(data)]
    for item in settings:
        argv += ["--set", item]
    return argv


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_explains_with_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: trustvis" in out and "example" in out


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "cnndet" in out and "bihpf" in out and "https://arxiv.org/abs/2109.00911" in out
    assert main(["list", "--task", "detect"]) == 0
    assert main(["info", "bihpf"]) == 0
    out = capsys.readouterr().out
    assert "model.alpha" in out and "Deviations" in out and "tiny" in out


def test_unknown_method_is_a_clear_error(capsys):
    assert main(["info", "nonexistent"]) == 2
    assert "choose from" in capsys.readouterr().err


def test_data_status(capsys):
    assert main(["data", "status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "scikit-image" and r["installed"] for r in rows)
    weights = {r["name"]: r for r in rows if r["kind"] == "weights"}
    assert {"mobilenet_v2", "efficientnet_lite0", "resnet50"} <= set(weights)
    assert all(r["installed"] or r["install_hint"] for r in weights.values())


def test_train_eval_predict_report(tiny_forensynths, tmp_path, capsys):
    run = tmp_path / "run"
    argv = train_argv(
        "cnndet", run, tiny_forensynths, "train.steps=3", "train.log_every=1"
    )  # 3 points: a curve
    assert main(argv) == 0
    assert (run / "model.json").is_file() and (run / "config.yaml").is_file()
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" and "val_ap" in r for r in records)  # validated on data/val
    # a finished run folder is never overwritten silently
    assert main(argv) == 2
    assert "already holds a finished 'cnndet' run" in capsys.readouterr().err

    assert main(["eval", str(run), "--data", str(tiny_forensynths / "test"), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["per_generator"]) == {"gen_a", "gen_b"} and 0 <= res["mean"]["ap"] <= 1
    assert (run / "eval.json").is_file()

    # adversarial evaluation: fakes only, budgets reported, adversarial accuracy never above clean
    argv = ["eval", str(run), "--data", str(tiny_forensynths / "test"), "--no-progress", "--attack", "pgd-l2",
            "--attack", "pgd-linf", "--attack", "hsja", "--queries", "30", "--attack-images", "3"]  # fmt: skip
    assert main([*argv, "--json"]) == 0
    adv = json.loads(capsys.readouterr().out)["adversarial"]
    assert set(adv) == {"pgd-l2", "pgd-linf", "hsja"}
    for r in adv.values():
        assert r["n"] == 3 and r["adv_acc"] <= r["clean_acc"]
    assert adv["pgd-l2"]["eps"] == pytest.approx(0.0257) and adv["pgd-l2"]["norm"] == "l2"
    assert adv["hsja"]["mean_queries"] <= 30
    assert main([*argv[:-6], "--eps", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "adv acc" in out and "normalised L2" in out
    assert main([*argv[:-6], "--eps", "-1"]) == 2

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    gray = tmp_path / "gray.png"
    Image.new("L", (16, 16), 100).save(gray)
    assert (
        main(["predict", str(run), str(gray), str(bad), str(tiny_forensynths / "test" / "gen_b"), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 1 + 8 and len(out["errors"]) == 1
    assert out["errors"][0]["path"].endswith("broken.png")
    assert all(0 <= r["score"] <= 1 for r in out["results"])

    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "cnndet" in html and "data:image/png;base64," in html


def test_resume_flag_continues_a_run(tiny_forensynths, tmp_path, capsys):
    run = tmp_path / "run"
    base = train_argv("bihpf", run, tiny_forensynths, "train.ckpt_every=2", "train.log_every=1")
    assert main([*base, "--set", "train.steps=2"]) == 0
    (run / "model.json").unlink()  # pretend the run was interrupted after its step-2 checkpoint
    assert main([*base, "--set", "train.steps=4", "--resume"]) == 0
    assert json.loads((run / "model.json").read_text())["step"] == 4
    steps = [
        json.loads(x)["step"]
        for x in (run / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["split"] == "train"
    ]
    assert steps[-1] == 4 and 3 in steps  # steps 3-4 ran in the resumed process


def test_resume_refuses_a_run_of_another_method(tiny_forensynths, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_argv("cnndet", run, tiny_forensynths, "train.steps=1")) == 0
    assert main(["train", "bihpf", "--preset", "tiny", "--out", str(run), "--resume"]) == 2
    assert "run of 'cnndet'" in capsys.readouterr().err


def test_bad_override_and_bad_data_root(tmp_path, capsys):
    assert main(train_argv("cnndet", tmp_path / "r", None, "train.stepz=1")) == 2
    assert "valid keys" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "junk").mkdir(parents=True)
    assert main(train_argv("cnndet", tmp_path / "r2", empty)) == 2
    assert "0_real" in capsys.readouterr().err


def test_train_and_eval_on_a_genimage_layout(tmp_path, capsys):
    """GenImage: <generator>/{train,val}/{ai,nature}; train reads train/, validates on val/, eval picks a split."""
    from conftest import make_forensynths

    root = tmp_path / "genimage"
    for split, seed in (("train", 0), ("val", 1)):
        tmp = make_forensynths(tmp_path / f"fs_{split}", ("sdv4",), n=4, size=32, seed=seed)
        for src, dst in (("0_real", "nature"), ("1_fake", "ai")):
            (root / "sdv4" / split).mkdir(parents=True, exist_ok=True)
            (tmp / "sdv4" / src).rename(root / "sdv4" / split / dst)
    run = tmp_path / "run"
    assert main(train_argv("cnndet", run, root, "train.steps=2", "train.batch_size=4")) == 0
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" for r in records)
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(root), "--no-progress"]) == 2  # two splits: which one?
    assert "split" in capsys.readouterr().err
    assert main(["eval", str(run), "--data", str(root), "--split", "val", "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["per_generator"]) == {"sdv4"} and res["per_generator"]["sdv4"]["n_fake"] == 4
