"""Config composition: presets, YAML, --set overrides with type checks, unknown keys."""

from __future__ import annotations

import pytest

from trustvis.config import (
    ConfigError,
    apply_overrides,
    dump_yaml,
    make_run_config,
    run_config_from_dict,
    to_dict,
)


def test_overrides_are_type_checked():
    run = make_run_config(
        "bihpf",
        "tiny",
        overrides=["train.steps=7", "model.alpha=2.5", "train.amp=true", "model.blur_sigma=[0.5, 1.5]"],
    )
    assert run.train.steps == 7 and isinstance(run.train.steps, int)
    assert run.model.alpha == 2.5
    assert run.train.amp is True
    assert run.model.blur_sigma == (0.5, 1.5)
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(run, ["train.steps=lots"])
    with pytest.raises(ConfigError, match="expected true/false"):
        apply_overrides(run, ["train.amp=maybe"])


def test_unknown_keys_name_the_valid_ones():
    run = make_run_config("cnndet", "tiny")
    with pytest.raises(ConfigError, match="valid keys here: .*'steps'"):
        apply_overrides(run, ["train.stepz=3"])
    with pytest.raises(ConfigError, match="Unknown config key"):
        apply_overrides(run, ["model.nonexistent=1"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides(run, ["train.steps"])


def test_yaml_files_and_precedence(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("method: bihpf\nmodel:\n  beta: 3.0\ntrain:\n  steps: 11\n  lr: 0.5\n")
    run = make_run_config("bihpf", "tiny", yaml_files=[str(f)], overrides=["train.steps=12"])
    assert run.model.beta == 3.0 and run.train.lr == 0.5 and run.train.steps == 12  # --set wins over YAML
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  gamma: 1\n")
    with pytest.raises(ConfigError, match="model.gamma"):
        make_run_config("bihpf", "tiny", yaml_files=[str(bad)])
    other = tmp_path / "other.yaml"
    other.write_text("method: cnndet\n")
    with pytest.raises(ConfigError, match="not 'bihpf'"):
        make_run_config("bihpf", "tiny", yaml_files=[str(other)])


def test_round_trip_through_dict_and_yaml():
    run = make_run_config("bihpf", "quick", overrides=["model.input=spectrum"])
    again = run_config_from_dict(to_dict(run))
    assert to_dict(again) == to_dict(run)
    assert "input: spectrum" in dump_yaml(run)


def test_preset_run_defaults_apply():
    assert make_run_config("cnndet", "quick").train.steps == 800
    assert make_run_config("cnndet", "tiny").train.steps == 2


def test_saved_runs_from_other_versions_still_load():
    saved = to_dict(make_run_config("cnndet", "tiny"))
    saved["train"]["retired_option"] = 3  # train/data keys do not shape the model: ignored with a warning
    assert run_config_from_dict(saved).train.steps == 2
    saved["model"]["unknown_layer"] = 1  # model keys do: strict
    with pytest.raises(ConfigError, match="model.unknown_layer"):
        run_config_from_dict(saved)
