"""The bench table and its command line: one sub-command per bench with only its own flags, one options object,
benches that build their run configs from typed values."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys

import pytest

from trustvis.bench.options import BENCHES, OPTION_FLAGS, BenchOptions, options_from
from trustvis.cli import build_parser
from trustvis.config import ConfigError, make_run_config


def _parse(argv: list[str]):
    return build_parser().parse_args(argv)


def test_the_options_and_the_bench_help_import_no_torch():
    code = (
        "import sys, trustvis.bench, trustvis.bench.options\n"
        "from trustvis.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", list(BENCHES))
def test_every_entry_runs_a_function_of_the_options_and_its_own_flags(name):
    entry = BENCHES[name]
    params = inspect.signature(entry.load()).parameters
    assert list(params)[0] == "opts"
    own = entry.kwargs(_parse(["bench", name]))
    assert set(own) <= set(params) - {"opts"}, f"{name}: {sorted(set(own) - set(params))}"
    for key, value in own.items():  # the flags' defaults are the function's
        assert value == params[key].default, (name, key)


def test_each_sub_command_has_only_its_own_flags(capsys):
    with pytest.raises(SystemExit):
        _parse(["bench", "detect", "--help"])
    detect_help = capsys.readouterr().out
    assert "--attack-images" in detect_help and "--steps" in detect_help
    assert (
        "--ablation" not in detect_help
        and "--pooled" not in detect_help
        and "--detect-dir" not in detect_help
    )
    for argv in (["bench", "detect", "--ablation"], ["bench", "augment", "--pooled"],
                 ["bench", "codec", "--steps", "3"], ["bench", "codec", "--set", "train.steps=3"],
                 ["bench", "augment", "--family", "dcgan"], ["bench", "anomaly", "--queries", "5"]):  # fmt: skip
        with pytest.raises(SystemExit):
            _parse(argv)
        assert "unrecognized arguments" in capsys.readouterr().err, argv


def test_the_bench_help_lists_every_bench_in_one_line(capsys):
    with pytest.raises(SystemExit):
        _parse(["bench", "--help"])
    out = capsys.readouterr().out
    for name, entry in BENCHES.items():
        assert entry.help in " ".join(out.split()), name
    assert "examples:" in out


def test_the_shared_flags_fill_the_options_object():
    args = _parse(["bench", "detect", "--quick", "--steps", "3", "--seed", "2", "--preset", "tiny", "--set",
                   "train.lr=0.1", "--set", "train.amp=true", "--device", "cpu", "--out", "o"])  # fmt: skip
    opts = options_from(args, BENCHES["detect"], command="c", quiet=True)
    assert opts == BenchOptions(quick=True, out_dir="o", steps=3, device="cpu", preset="tiny",
                                overrides=["train.lr=0.1", "train.amp=true"], seed=2, command="c")  # fmt: skip
    assert opts.progress  # -q leaves train.progress, which decides whether a rerun reuses a run, alone
    codec = options_from(_parse(["bench", "codec", "--seed", "4"]), BENCHES["codec"], quiet=True)
    assert codec == BenchOptions(quick=False, seed=4, progress=False) and codec.overrides == []
    assert set(BENCHES["codec"].options) < set(OPTION_FLAGS)


def test_own_flags_map_to_the_bench_keywords():
    kw = lambda argv: BENCHES[argv[1]].kwargs(_parse(argv))  # noqa: E731
    assert kw(["bench", "anomaly", "--pooled", "--datasets", "textures,"]) == {
        "methods": None, "datasets": ["textures"], "per_category": False}  # fmt: skip
    assert (
        kw(["bench", "calibrate", "--datasets", "sklearn-digits", "--no-detectors"])["dataset"]
        == "sklearn-digits"
    )
    assert kw(["bench", "calibrate"]) == {"dataset": "fashion-mnist", "detect_dir": None, "detectors": True}
    assert kw(["bench", "adapt", "--methods", "linear", "--datasets", "detect"]) == {
        "conditions": ["linear"], "parts": ["detect"], "family": "dcgan"}  # fmt: skip
    assert kw(["bench", "codec", "--data-dir", "d", "--lambdas", "1e-3,2e-3"])["lambdas"] == [1e-3, 2e-3]
    assert kw(["bench", "detect", "--queries", "7"])["attack_queries"] == 7


def test_calibrate_takes_one_dataset(capsys):
    with pytest.raises(SystemExit):
        _parse(["bench", "calibrate", "--datasets", "a,b"])
    assert "--datasets" in capsys.readouterr().err


def test_the_options_object_defaults():
    opts = BenchOptions(quick=False)
    assert opts.mode == "full" and opts.command_or("augment") == "trustvis bench augment"
    assert BenchOptions().command_or("codec") == "trustvis bench codec --quick"


def test_typed_run_values_sit_under_the_users_overrides():
    run = make_run_config("classifier", "tiny", train={"steps": 5, "lr": 1}, data={"name": "sklearn-digits"},
                          lora={"r": 4, "alpha": 4}, overrides=["train.steps=7"])  # fmt: skip
    assert run.train.steps == 7 and run.train.lr == 1.0 and isinstance(run.train.lr, float)
    assert run.data.name == "sklearn-digits" and run.lora.alpha == 4.0 and isinstance(run.lora.alpha, float)
    with pytest.raises(ConfigError, match="train.nope"):
        make_run_config("classifier", "tiny", train={"nope": 1})
    with pytest.raises(ConfigError, match="train.steps"):
        make_run_config("classifier", "tiny", train={"steps": "ten"})
    with pytest.raises(ConfigError, match="train.steps"):
        make_run_config("classifier", "tiny", train={"steps": 0})  # validated like --set


def test_the_help_names_the_benches_own_defaults():
    """The table is torch-free, so its help texts repeat the benches' defaults; they must not drift."""
    from trustvis.bench import adapt, anomaly, augment, codec, detect

    def help_of(name: str) -> str:
        parser = argparse.ArgumentParser(
            formatter_class=lambda prog: argparse.HelpFormatter(prog, width=10_000)
        )
        BENCHES[name].add_arguments(parser)
        return parser.format_help()

    assert ",".join(detect.DEFAULT_METHODS) in help_of("detect")
    text = help_of("augment")
    assert ", ".join(augment.CONDITIONS) in text and ",".join(augment.DATASETS) in text
    text = help_of("anomaly")
    assert ",".join(anomaly.METHODS) in text and ",".join(anomaly.DATASETS) in text
    text = help_of("adapt")
    assert ",".join(adapt.CONDITIONS) in text and f"default {adapt.ADAPT_FAMILY}" in text
    text = help_of("codec")
    assert all(c in text for c in (*codec.NEURAL, "jpeg, webp, avif, jpeg2000"))
