"""Bad-input corpus, area C: run folders and checkpoints (`trustvis train`, `eval`, loading, config).

Every case ends in a correct result or one clear ``trustvis: error:`` line that names the file (or key)
and the problem; nothing is unpickled, no YAML tag runs, and no other data is lost or overwritten.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from badcli import assert_clear_error
from safetensors.torch import load_file, save_file

import trustvis
from trustvis.cli import main
from trustvis.config import ConfigError, make_run_config, to_dict
from trustvis.engine.checkpoint import CheckpointError, build_method, first_nonfinite, save_final


def train_argv(out: Path, data: Path | None, *settings: str, method: str = "cnndet") -> list[str]:
    """``tests/test_cli.py``'s tiny-preset training command, cnndet by default."""
    from test_cli import train_argv as cli_train_argv

    return cli_train_argv(method, out, data, *settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """One tiny cnndet run (2 steps, final checkpoint) and its data, trained once for this module."""
    from conftest import make_forensynths  # tests/conftest.py

    base = tmp_path_factory.mktemp("area_c")
    data = base / "fs"
    make_forensynths(data / "train", ("gen_a",), n=8)
    make_forensynths(data / "val", ("gen_a",), n=4, seed=1)
    make_forensynths(data / "test", ("gen_a", "gen_b"), n=2, seed=2)
    run = base / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTVIS_HOME", str(base / "home"))
        assert main(train_argv(run, data, "train.steps=2", "train.log_every=1")) == 0
    assert (run / "model.json").is_file() and (run / "checkpoints" / "step-0000002").is_dir()
    return {"run": run, "data": data}


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """A private copy of the trained run (tests may damage it)."""
    return Path(shutil.copytree(trained["run"], tmp_path / "run"))


class _Marker:
    """Unpickling this calls ``open(path, "w")``: the marker file appears iff the pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def malicious_pickle(dest: Path, marker: Path, zip_format: bool) -> Path:
    """A weights-looking pickle whose loading would create ``marker`` (checked once, then removed)."""
    payload = {"model.net.fc.weight": _Marker(marker)}
    if zip_format:
        buf = io.BytesIO()
        torch.save(payload, buf)
        dest.write_bytes(buf.getvalue())
        torch.load(io.BytesIO(dest.read_bytes()), weights_only=False)  # proof: unpickling creates the marker
    else:
        dest.write_bytes(pickle.dumps(payload))
        pickle.loads(dest.read_bytes())
    assert marker.exists(), "the test payload must be able to create its marker"
    marker.unlink()
    return dest


# ------------------------------------------------------------------------------------------ run lock


HOLDER = """
import sys, time
from trustvis.engine.runlock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _hold_lock(out: Path) -> subprocess.Popen:
    """Another process that takes ``out``'s run lock and keeps it until killed."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_training_on_a_locked_run_fails_then_a_stale_lock_is_taken_over(
    trained, run_copy, cli, caplog
):
    # an unfinished run (no model.json) that another live process is writing
    (run_copy / "model.json").unlink()
    config_before = (run_copy / "config.yaml").read_bytes()
    metrics_before = (run_copy / "metrics.jsonl").read_bytes()
    holder = _hold_lock(run_copy)
    try:
        res = cli(train_argv(run_copy, trained["data"], "train.steps=3"))
        assert_clear_error(res, str(run_copy / ".lock"), f"pid {holder.pid}", "another training")
        res = cli([*train_argv(run_copy, trained["data"], "train.steps=3"), "--resume"])
        assert_clear_error(res, str(run_copy / ".lock"), f"pid {holder.pid}")
        # the second training wrote nothing: the owner's config and metrics are as they were
        assert (run_copy / "config.yaml").read_bytes() == config_before
        assert (run_copy / "metrics.jsonl").read_bytes() == metrics_before
        assert not (run_copy / "model.json").exists()
    finally:
        holder.kill()  # killed without releasing: its lock stays behind, stale
        holder.wait()
    assert json.loads((run_copy / ".lock").read_text())["pid"] == holder.pid

    res = cli([*train_argv(run_copy, trained["data"], "train.steps=3", "train.log_every=1"), "--resume"])
    assert res.code == 0, res.err
    assert "taking over the stale lock" in caplog.text and str(holder.pid) in caplog.text
    assert json.loads((run_copy / "model.json").read_text())["step"] == 3
    assert not (run_copy / ".lock").exists()  # released at the end


def test_a_lock_of_another_host_is_respected(trained, tmp_path, cli):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(
        json.dumps({"pid": 1, "host": socket.gethostname() + "-other", "started": "x"})
    )
    res = cli(train_argv(out, trained["data"], "train.steps=1"))
    assert_clear_error(res, str(out / ".lock"), "pid 1")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def _trainer(root: Path, out: Path, *extra: str):
    from trustvis import registry
    from trustvis.data.forensynths import ForenSynthsDataset
    from trustvis.engine import Trainer

    run = make_run_config(
        "bihpf", "tiny", overrides=["train.batch_size=4", "train.progress=false", "train.log_every=1", *extra]
    )
    method = registry.get("bihpf").cls(run.model)
    data = ForenSynthsDataset(root / "train", transform=method.make_transform(True))
    return Trainer(method, run, out), data


def test_lock_is_released_on_ctrl_c_and_on_error(trained, tmp_path):
    seen = []

    def interrupt(t):
        seen.append((t.out_dir / ".lock").is_file())
        raise KeyboardInterrupt

    trainer, data = _trainer(trained["data"], tmp_path / "a", "train.steps=3")
    trainer.add_callback("on_step_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data)
    assert seen == [True] and not (tmp_path / "a" / ".lock").exists()

    # a diverging loss: a one-line error, and the lock goes too
    trainer, data = _trainer(trained["data"], tmp_path / "b", "train.steps=3")
    trainer.method.training_step = lambda batch: {"loss": torch.tensor(float("nan"), requires_grad=True)}
    with pytest.raises(FloatingPointError, match="training diverged.*lower train.lr"):
        trainer.fit(data)
    assert not (tmp_path / "b" / ".lock").exists()


# ------------------------------------------------------------------------------ unfinished run, resume


def test_unfinished_run_without_resume_is_refused_and_resume_records_each_step_once(trained, tmp_path, cli):
    out = tmp_path / "run"

    def crash(t):
        if t.step == 3:
            raise RuntimeError("killed")  # like a kill: no checkpoint at step 3, its metrics record written

    trainer, data = _trainer(trained["data"], out, "train.steps=4", "train.ckpt_every=2")
    trainer.add_callback("on_log", crash)
    with pytest.raises(RuntimeError, match="killed"):
        trainer.fit(data)
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "split": "tra')  # a record cut short by the kill
    before = (out / "metrics.jsonl").read_bytes()

    argv = ["train", "bihpf", "--preset", "tiny", "--out", str(out), "--data", str(trained["data"]),
            "--set", "train.progress=false"]  # fmt: skip
    res = cli(argv)
    assert_clear_error(res, str(out), "unfinished run", "--resume", "another --out")
    assert (out / "metrics.jsonl").read_bytes() == before  # nothing appended, nothing deleted

    res = cli([*argv, "--resume"])
    assert res.code == 0, res.err
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == [1, 2, 3, 4]  # step 3 redone after the step-2 checkpoint, recorded once
    assert json.loads((out / "model.json").read_text())["step"] == 4


# ------------------------------------------------------------------------------------ config values


BAD_SETTINGS = [
    ("train.steps=-5", "train.steps"),
    ("train.steps=0", "train.steps"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.lr=1e30", "train.lr"),
    ("train.lr=nan", "train.lr"),
    ("train.lr=inf", "train.lr"),
    ("train.lr=0", "train.lr"),
    ("train.lr=-0.1", "train.lr"),
    ("train.weight_decay=-1", "train.weight_decay"),
    ("train.betas=[0.9,1.5]", "train.betas[1]"),
    ("train.grad_clip=-1", "train.grad_clip"),
    ("train.warmup_steps=-1", "train.warmup_steps"),
    ("train.eval_every=-1", "train.eval_every"),
    ("train.log_every=-1", "train.log_every"),
    ("train.ckpt_every=-1", "train.ckpt_every"),
    ("train.num_workers=-1", "train.num_workers"),
    ("data.max_images=-3", "data.max_images"),
]


@pytest.mark.parametrize(("setting", "key"), BAD_SETTINGS)
def test_invalid_train_settings_are_clear_errors(setting, key, trained, tmp_path, cli):
    out = tmp_path / "run"
    res = cli(train_argv(out, trained["data"], setting))
    msg = assert_clear_error(res, f"{key}=", "must be")
    assert "(0, 10]" in msg if key == "train.lr" else True  # the lr bound is stated
    assert not out.exists()  # no run folder, no "finished" untrained model


@pytest.mark.parametrize(("setting", "message"), [
    ("data.imbalance=0.5", "data.imbalance=0.5 is invalid; it must be a number >= 1"),
    ("data.dominant=-2", "data.dominant=-2 is invalid; it must be a class index >= 0"),
    ("data.name=synthbench", "data.name='synthbench' is invalid for a classifier; choose from"),
])  # fmt: skip
def test_invalid_classifier_data_settings_are_clear_errors(setting, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_run_config("classifier", "tiny", overrides=[setting])


def test_a_data_key_of_another_task_names_the_tasks_keys(trained, tmp_path, cli):
    """Each task declares its own data fields: a classifier's data.imbalance on a detector is an unknown key."""
    res = cli(train_argv(tmp_path / "run", trained["data"], "data.imbalance=10"))
    assert_clear_error(res, "data.imbalance", "train_family")
    assert not (tmp_path / "run").exists()


def test_valid_bounds_are_accepted():
    run = make_run_config("cnndet", "tiny", overrides=["train.lr=10", "train.steps=1", "train.batch_size=1"])
    assert run.train.lr == 10
    assert make_run_config("padim", "tiny").train.steps == 0  # fit-only methods take no gradient step
    with pytest.raises(ConfigError, match=r"train.steps=-1 is invalid; it must be an integer >= 0"):
        make_run_config("padim", "tiny", overrides=["train.steps=-1"])


def test_trainer_refuses_a_config_edited_after_validation(trained, tmp_path):
    trainer, data = _trainer(trained["data"], tmp_path / "run", "train.steps=2")
    trainer.cfg.batch_size = 0  # Python users may build configs by hand
    with pytest.raises(ConfigError, match="train.batch_size=0 is invalid"):
        trainer.fit(data)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------- YAML files


def test_malformed_yaml_config_names_file_and_line(trained, tmp_path, cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: [1\n  lr: 2\n")
    res = cli([*train_argv(tmp_path / "run", trained["data"]), "--config", str(bad)])
    assert_clear_error(res, str(bad), "line 3", "not a valid YAML")


def test_yaml_python_tag_is_refused_and_not_executed(trained, tmp_path, cli):
    marker = tmp_path / "PWNED"
    tag = tmp_path / "tag.yaml"
    tag.write_text(f'train: !!python/object/apply:os.system ["touch {marker}"]\n')
    res = cli([*train_argv(tmp_path / "run", trained["data"]), "--config", str(tag)])
    assert_clear_error(res, str(tag), "line 1", "python/object/apply", "nothing was executed")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"- 1\n- 2\n", "must hold a mapping"), (b"\xff\xfe\x00junk", "not a text (UTF-8) file")],
)
def test_yaml_config_that_is_not_a_mapping(content, needle, trained, tmp_path, cli):
    f = tmp_path / "c.yaml"
    f.write_bytes(content)
    res = cli([*train_argv(tmp_path / "run", trained["data"]), "--config", str(f)])
    assert_clear_error(res, str(f), needle)


def test_resume_with_a_damaged_run_config(run_copy, trained, cli):
    (run_copy / "model.json").unlink()
    (run_copy / "config.yaml").write_text("method: cnndet\ntrain: {steps: 3\n")
    res = cli([*train_argv(run_copy, trained["data"]), "--resume"])
    assert_clear_error(res, str(run_copy / "config.yaml"), "line", "not a valid YAML")


# ----------------------------------------------------------------------------------- checkpoint files


def _predict(run: Path, data: Path) -> list[str]:
    return ["predict", str(run), str(next((data / "test" / "gen_a" / "0_real").glob("*.png")))]


def test_truncated_weights(run_copy, trained, cli):
    w = run_copy / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    assert_clear_error(cli(_predict(run_copy, trained["data"])), str(w), "truncated")
    res = cli(["eval", str(run_copy), "--data", str(trained["data"] / "test"), "--no-progress"])
    assert_clear_error(res, str(w), "truncated")


@pytest.mark.parametrize("zip_format", [False, True], ids=["pickle", "torch.save"])
def test_pickle_renamed_model_safetensors_is_never_unpickled(zip_format, run_copy, trained, tmp_path, cli):
    marker = tmp_path / "UNPICKLED"
    w = malicious_pickle(run_copy / "model.safetensors", marker, zip_format)
    msg = assert_clear_error(cli(_predict(run_copy, trained["data"])), str(w), "never unpickles")
    assert "pickle" in msg or "torch.save" in msg
    assert not marker.exists()


@pytest.mark.parametrize("name", ["optim.safetensors", "model.safetensors"])
def test_pickle_in_a_resume_checkpoint_is_refused(name, run_copy, trained, tmp_path, cli):
    (run_copy / "model.json").unlink()
    marker = tmp_path / "UNPICKLED"
    bad = malicious_pickle(run_copy / "checkpoints" / "step-0000002" / name, marker, zip_format=False)
    res = cli([*train_argv(run_copy, trained["data"], "train.steps=3"), "--resume"])
    assert_clear_error(res, str(bad), "never unpickles")
    assert not marker.exists() and not (run_copy / "model.json").exists()


@pytest.mark.parametrize("zip_format", [False, True], ids=["pickle", "torch.save"])
def test_malicious_pth_as_model_weights(zip_format, trained, tmp_path, cli):
    marker = tmp_path / "UNPICKLED"
    pth = malicious_pickle(tmp_path / "evil.pth", marker, zip_format)
    res = cli(train_argv(tmp_path / "run", trained["data"], f"model.weights={pth}"))
    assert_clear_error(res, f"model.weights={pth}", "not unpickled")
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_weights_of_another_shape_name_the_key_and_both_shapes(run_copy, trained, cli):
    w = run_copy / "model.safetensors"
    state = load_file(str(w))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() >= 2)
    old = tuple(state[key].shape)
    new = (old[0] + 1, *old[1:])
    state[key] = torch.zeros(new)
    save_file(state, str(w))
    res = cli(_predict(run_copy, trained["data"]))
    assert_clear_error(res, str(w), key, str(new), str(old))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no model.json"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"format": "trustvis-checkpoint/1"}', "lacks its 'method'"),
    ],  # fmt: skip
)
def test_missing_or_corrupt_model_json(content, needle, run_copy, trained, cli):
    meta = run_copy / "model.json"
    if content is None:
        meta.unlink()
    else:
        meta.write_text(content)
    res = cli(["eval", str(run_copy), "--data", str(trained["data"] / "test"), "--no-progress"])
    assert_clear_error(res, str(run_copy), needle)
    assert_clear_error(cli(_predict(run_copy, trained["data"])), str(run_copy), needle)
    with pytest.raises(CheckpointError, match=needle) as e:  # the Python API: the same one line
        trustvis.load(run_copy)
    assert str(run_copy) in str(e.value) and "\n" not in str(e.value)


def test_corrupt_checkpoint_state_json_on_resume(run_copy, trained, cli):
    (run_copy / "model.json").unlink()
    state = run_copy / "checkpoints" / "step-0000002" / "state.json"
    state.write_text('{"format": "trustvis-checkpoint/1", "meth')
    res = cli([*train_argv(run_copy, trained["data"], "train.steps=3"), "--resume"])
    assert_clear_error(res, str(state), "not valid JSON")


def test_init_from_a_run_with_damaged_weights(run_copy, trained, tmp_path, cli):
    w = run_copy / "model.safetensors"
    w.write_bytes(b"\x00" * 5)
    res = cli(train_argv(tmp_path / "new", trained["data"], f"train.init_from={run_copy}"))
    assert_clear_error(res, str(w), "not a readable safetensors file")


# -------------------------------------------------------------------------------- NaN / inf weights


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_model_with_nonfinite_weights_is_refused_by_predict_and_eval(value, run_copy, trained, cli):
    w = run_copy / "model.safetensors"
    state = load_file(str(w))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.dim() >= 1)
    state[key] = state[key].clone()
    state[key].view(-1)[0] = value  # one bad number is enough to break every answer
    save_file(state, str(w))
    res = cli(_predict(run_copy, trained["data"]))
    assert_clear_error(res, str(w), "NaN or inf", key)
    res = cli(["eval", str(run_copy), "--data", str(trained["data"] / "test"), "--no-progress"])
    assert_clear_error(res, str(w), "NaN or inf", key)
    assert not (run_copy / "eval.json").exists()


def test_unset_scalar_buffer_may_be_nan_but_weights_may_not():
    m = torch.nn.Linear(2, 1)
    m.register_buffer("threshold", torch.tensor(float("nan")))  # e.g. an anomaly threshold not set yet
    assert first_nonfinite(m) is None
    m.threshold.fill_(float("inf"))
    assert first_nonfinite(m) == "threshold"
    m.threshold.fill_(1.0)
    with torch.no_grad():
        m.bias.fill_(float("nan"))
    assert first_nonfinite(m) == "bias"


# --------------------------------------------------------------------------- eval on a folder of another layout


@pytest.mark.parametrize(("method", "layout"), [("padim", "normal"), ("classifier", "class")])
def test_eval_on_a_folder_in_another_tasks_layout(method, layout, trained, tmp_path, cli):
    """A ForenSynths folder given to an anomaly or classifier run: the error names the folder and the layout
    that run's task reads; nothing is written into the run."""
    run = make_run_config(method, "tiny")
    out = tmp_path / "run"
    save_final(build_method(run, pretrained=False), out, to_dict(run), 0)
    before = sorted(p.name for p in out.iterdir())
    data = trained["data"] / "test"
    res = cli(["eval", str(out), "--data", str(data), "--no-progress"])
    assert_clear_error(res, str(data), layout)
    assert sorted(p.name for p in out.iterdir()) == before  # no eval.json written into it


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_calibrator_runs_are_sent_to_calibrate(command, trained, tmp_path, cli):
    run = make_run_config("ts", "tiny")
    out = tmp_path / "run"
    save_final(build_method(run, pretrained=False), out, to_dict(run), 0)
    args = ["--data", str(trained["data"] / "test")] if command == "eval" else [str(trained["data"] / "test")]
    res = cli([command, str(out), *args])
    assert_clear_error(res, "ts", "trustvis calibrate")
    if command == "predict":  # the Python API refuses it the same way
        with pytest.raises(ValueError, match="trustvis calibrate"):
            trustvis.load(out)


def test_checkpoint_error_is_a_value_error_for_python_callers(run_copy):
    from trustvis.engine import load_method

    (run_copy / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_method(run_copy)


def test_lock_file_states(tmp_path):
    """A lock file left by a killed process with this very pid (pid reuse after a restart) is stale."""
    from trustvis.engine.runlock import RunLock, lock_owner_alive

    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert lock_owner_alive(out / ".lock")[0] is False
    with RunLock(out):
        held, owner = lock_owner_alive(out / ".lock")
        assert held and owner["pid"] == os.getpid() and owner["started"]
        (out / "x").write_text("")
    assert not (out / ".lock").exists()
    (out / ".lock").write_text("")  # unreadable and fresh: being written by its owner right now
    assert lock_owner_alive(out / ".lock")[0] is True
    old = time.time() - 60
    os.utime(out / ".lock", (old, old))
    assert lock_owner_alive(out / ".lock")[0] is False


def test_out_that_is_a_file(trained, tmp_path, cli):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    res = cli(train_argv(f, trained["data"]))
    assert_clear_error(res, f"--out {f}", "is a file")
    assert f.read_text() == "mine"


def test_config_file_is_applied_on_resume_too(run_copy, trained, tmp_path, cli):
    """``--config`` with ``--resume`` used to be ignored silently (the run trained to the old budget)."""
    (run_copy / "model.json").unlink()
    more = tmp_path / "more.yaml"
    more.write_text("train:\n  steps: 3\n")
    res = cli([*train_argv(run_copy, trained["data"]), "--config", str(more), "--resume"])
    assert res.code == 0, res.err
    assert json.loads((run_copy / "model.json").read_text())["step"] == 3


def test_bench_retraining_a_changed_config_does_not_mix_the_old_records(tiny_forensynths, tmp_path):
    """A bench run folder whose config changed is retrained from scratch: its metrics are the new run's only."""
    from trustvis.bench.common import train_or_reuse
    from trustvis.config import make_run_config
    from trustvis.tasks.detect import detection_datasets

    out = tmp_path / "bench-run"

    def run_of(steps: int):
        return make_run_config("cnndet", "tiny", overrides=[
            "data.name=folder", f"data.root={tiny_forensynths}", f"train.steps={steps}",
            "train.log_every=1", "train.progress=false"])  # fmt: skip

    train_or_reuse(run_of(3), out, detection_datasets)
    train_or_reuse(run_of(2), out, detection_datasets)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s is not None]
    assert steps == sorted(set(steps)) and max(steps) == 2, steps


def test_bench_folders_saved_with_the_old_shared_data_config_are_reused(tiny_forensynths, tmp_path, caplog):
    """Runs trained before each task had its own data config carry the other tasks' data keys in model.json;
    a bench rerun reuses them instead of retraining (and still retrains a run whose config really changed)."""
    from trustvis.bench.common import train_or_reuse
    from trustvis.config import make_run_config
    from trustvis.tasks.detect import detection_datasets

    out = tmp_path / "bench-run"
    run = make_run_config("cnndet", "tiny", overrides=["data.name=folder", f"data.root={tiny_forensynths}",
                                                       "train.steps=2", "train.progress=false"])  # fmt: skip
    train_or_reuse(run, out, detection_datasets)
    meta = json.loads((out / "model.json").read_text())
    meta["config"]["data"].update({"category": "", "imbalance": 1.0, "dominant": -1})  # the old shared fields
    (out / "model.json").write_text(json.dumps(meta))
    with caplog.at_level("INFO"):
        train_or_reuse(run, out, detection_datasets)
    assert "reusing trained cnndet" in caplog.text and "retraining" not in caplog.text
    meta["config"]["data"]["train_family"] = "other"  # a real difference still retrains
    (out / "model.json").write_text(json.dumps(meta))
    caplog.clear()
    with caplog.at_level("INFO"):
        train_or_reuse(run, out, detection_datasets)
    assert "retraining" in caplog.text


@pytest.mark.parametrize("device", ["nope", "cudax", "cuda:99", "mps", "tpu"])
def test_unknown_or_missing_devices_are_one_line_errors(cli, trained, tmp_path, device):
    """Before: ``mps`` on a build without it ended in a RuntimeError traceback, ``cudax`` passed the check."""
    import torch

    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    if device.startswith("cuda") and torch.cuda.device_count() > 99:
        pytest.skip("this machine has 100 GPUs")
    img = trained["data"] / "test" / "gen_a" / "0_real" / "000.png"
    assert_clear_error(cli(["predict", trained["run"], img, "--device", device]), repr(device))
    assert_clear_error(cli(["eval", trained["run"], "--data", trained["data"] / "test", "--device", device]),
                       repr(device))  # fmt: skip
    out = tmp_path / "r"
    res = cli(train_argv(out, trained["data"], "train.steps=1", f"train.device={device}"))
    assert_clear_error(res, repr(device))
    assert not out.exists()
