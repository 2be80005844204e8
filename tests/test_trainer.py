"""Trainer: exact resume after an interruption, checkpoints without pickle, AMP, DDP with 2 processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from trustvis import registry
from trustvis.config import make_run_config
from trustvis.data.forensynths import ForenSynthsDataset
from trustvis.engine import Trainer, seed_everything
from trustvis.engine.checkpoint import latest_checkpoint


def _setup(root, steps, ckpt_every=0, extra=()):
    run = make_run_config(
        "bihpf",
        "tiny",
        overrides=[
            f"train.steps={steps}",
            f"train.ckpt_every={ckpt_every}",
            "train.batch_size=4",
            "train.progress=false",
            "train.log_every=1",
            *extra,
        ],
    )
    seed_everything(0)
    method = registry.get("bihpf").cls(run.model)
    data = ForenSynthsDataset(root / "train", transform=method.make_transform(True))
    return run, method, data


def _weights(method):
    return {k: v.detach().clone() for k, v in method.state_dict().items()}


def test_interrupted_run_resumes_exactly(tiny_forensynths, tmp_path):
    # reference: 9 uninterrupted steps (2+ epochs of 4 batches, so resume crosses an epoch boundary)
    run, method, data = _setup(tiny_forensynths, 9)
    Trainer(method, run, tmp_path / "ref").fit(data)
    ref = _weights(method)

    # interrupted at step 6 (KeyboardInterrupt from a callback), then resumed to 9
    run, method, data = _setup(tiny_forensynths, 9, ckpt_every=3)
    trainer = Trainer(method, run, tmp_path / "run")

    def interrupt(t):
        if t.step == 6:
            raise KeyboardInterrupt

    trainer.add_callback("on_step_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(data)
    assert latest_checkpoint(tmp_path / "run").name == "step-0000006"
    assert not (tmp_path / "run" / "model.json").exists()

    run, method, data = _setup(tiny_forensynths, 9, ckpt_every=3)
    summary = Trainer(method, run, tmp_path / "run").fit(data, resume=True)
    assert summary["steps"] == 9
    for k, v in _weights(method).items():
        torch.testing.assert_close(v, ref[k], rtol=0, atol=0, msg=f"{k} differs after resume")
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps[-1] == 9


def test_checkpoint_files_are_safetensors_and_json(tiny_forensynths, tmp_path):
    run, method, data = _setup(tiny_forensynths, 2, ckpt_every=1)
    Trainer(method, run, tmp_path / "run").fit(data)
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "model.json").read_text())["method"] == "bihpf"
    load_file(str(run_dir / "model.safetensors"))  # parses as safetensors: no pickle anywhere
    ck = latest_checkpoint(run_dir)
    tensors = load_file(str(ck / "optim.safetensors"))
    assert any(k.startswith("main/") for k in tensors) and "rng/torch" in tensors
    state = json.loads((ck / "state.json").read_text())
    assert state["step"] == 2 and state["method"] == "bihpf"
    assert len([p for p in (run_dir / "checkpoints").glob("step-*")]) <= 2  # old ones pruned
    assert (run_dir / "config.yaml").read_text().startswith("method: bihpf")


def test_amp_bf16_on_cpu_trains(tiny_forensynths, tmp_path):
    run, method, data = _setup(tiny_forensynths, 2, extra=["train.amp=true"])
    summary = Trainer(method, run, tmp_path / "run").fit(data)
    assert summary["steps"] == 2 and all(torch.isfinite(p).all() for p in method.parameters())


def test_too_small_dataset_is_a_clear_error(tiny_forensynths, tmp_path):
    run, method, data = _setup(tiny_forensynths, 2, extra=["train.batch_size=1000"])
    with pytest.raises(ValueError, match="lower train.batch_size"):
        Trainer(method, run, tmp_path / "run").fit(data)


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _csv_equals_jsonl(run_dir) -> None:
    """metrics.csv holds exactly the records of metrics.jsonl: the union of their keys as columns in
    first-seen order, every value as written, empty cells where a record lacks a key."""
    records = _records(run_dir)
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        columns = reader.fieldnames
    assert columns == list(dict.fromkeys(k for r in records for k in r))
    assert len(rows) == len(records)
    for row, rec in zip(rows, records):
        for key in columns:
            if key not in rec:
                assert row[key] == "", (key, row)
            elif isinstance(rec[key], str):
                assert row[key] == rec[key]
            else:
                assert float(row[key]) == rec[key], (key, row[key], rec[key])  # exact: repr round-trips


def _scalars(run_dir) -> dict[tuple[str, int], float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        for event in acc.Scalars(tag):
            assert (tag, event.step) not in out, f"{tag} logged twice at step {event.step}"
            out[(tag, event.step)] = event.value
    return out


def _expected_scalars(run_dir) -> dict[tuple[str, int], float]:
    return {
        (f"{r['split']}/{k}", r["step"]): v
        for r in _records(run_dir)
        for k, v in r.items()
        if k not in ("step", "split")
    }


def test_metrics_go_to_tensorboard_and_csv_on_request(tiny_forensynths, tmp_path):
    """train.tensorboard / train.metrics_csv: every metrics.jsonl record, read back from the event files and
    the CSV (the val record's new keys add CSV columns after the train rows were written)."""
    pytest.importorskip("tensorboard")
    run, method, data = _setup(
        tiny_forensynths, 4, extra=["train.tensorboard=true", "train.metrics_csv=true"]
    )

    def evaluate(m):
        return {"val_auc": 0.8125, "val_acc": 1 / 3}

    Trainer(method, run, tmp_path / "run").fit(data, evaluate_fn=evaluate)
    run_dir = tmp_path / "run"
    records = _records(run_dir)
    assert [r["split"] for r in records] == ["train"] * 4 + ["val"]
    _csv_equals_jsonl(run_dir)
    expected = _expected_scalars(run_dir)
    got = _scalars(run_dir)
    assert set(got) == set(expected) and ("val/val_auc", 4) in got and ("train/loss", 3) in got
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key  # event files hold float32
    assert len({v for (tag, _), v in got.items() if tag == "train/loss"}) > 1  # real values, not one constant


def test_resumed_run_logs_each_step_once_everywhere(tiny_forensynths, tmp_path):
    """Killed after logging step 3 (last checkpoint: step 2) and resumed: step 3 is redone; metrics.jsonl, the
    CSV and TensorBoard hold each step once (TensorBoard purges the killed run's events after step 2)."""
    pytest.importorskip("tensorboard")
    extra = ["train.tensorboard=true", "train.metrics_csv=true"]
    run, method, data = _setup(tiny_forensynths, 5, ckpt_every=2, extra=extra)
    trainer = Trainer(method, run, tmp_path / "run")

    def kill(t):
        if t.step == 3:
            raise RuntimeError("killed")  # not KeyboardInterrupt: no checkpoint at step 3

    trainer.add_callback("on_log", kill)
    with pytest.raises(RuntimeError, match="killed"):
        trainer.fit(data)
    run_dir = tmp_path / "run"
    assert latest_checkpoint(run_dir).name == "step-0000002"
    assert ("train/loss", 3) in _scalars(run_dir)  # the killed run logged step 3

    run, method, data = _setup(tiny_forensynths, 5, ckpt_every=2, extra=extra)
    Trainer(method, run, run_dir).fit(data, resume=True)
    assert [r["step"] for r in _records(run_dir)] == [1, 2, 3, 4, 5]
    _csv_equals_jsonl(run_dir)
    got = _scalars(run_dir)  # fails on a step logged twice
    expected = _expected_scalars(run_dir)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key


def test_tensorboard_missing_is_a_one_line_error(tiny_forensynths, tmp_path, monkeypatch):
    from trustvis.config import ConfigError
    from trustvis.engine import trainer as T

    find = T.importlib.util.find_spec
    monkeypatch.setattr(
        T.importlib.util, "find_spec", lambda n, *a: None if n == "tensorboard" else find(n, *a)
    )
    run, method, data = _setup(tiny_forensynths, 2, extra=["train.tensorboard=true"])
    with pytest.raises(
        ConfigError, match=r"^train.tensorboard=true needs the tensorboard package: pip install tensorboard"
    ):
        Trainer(method, run, tmp_path / "run").fit(data)
    assert not (tmp_path / "run").exists()  # refused before anything is written
    run, method, data = _setup(tiny_forensynths, 2)  # not asked for: no package needed, no CSV either
    Trainer(method, run, tmp_path / "run").fit(data)
    assert (tmp_path / "run" / "metrics.jsonl").is_file()
    assert not (tmp_path / "run" / "metrics.csv").exists() and not (tmp_path / "run" / "tensorboard").exists()


DDP_SCRIPT = r"""
import hashlib, json, os, sys
import torch
from trustvis import registry
from trustvis.config import make_run_config
from trustvis.data.forensynths import ForenSynthsDataset
from trustvis.engine import Trainer, seed_everything
from trustvis.engine import distributed as D

root, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
run = make_run_config(name, "tiny", overrides=["train.steps=3", "train.batch_size=2", "train.progress=false",
                                                   "train.device=cpu", "train.log_every=1"])
seed_everything(int(os.environ["RANK"]))  # different initial weights: the trainer must broadcast rank 0's
method = registry.get(name).cls(run.model)
data = ForenSynthsDataset(root, transform=method.make_transform(True))
trainer = Trainer(method, run, out)
trainer.fit(data)
h = hashlib.sha256()
for k, v in sorted(method.named_parameters()):  # parameters only: BN running stats are per rank
    h.update(v.detach().float().numpy().tobytes())
with open(os.path.join(out, f"rank{D.rank()}.json"), "w") as fh:
    json.dump({"world": D.world_size(), "hash": h.hexdigest(), "distributed": trainer.distributed}, fh)
"""


@pytest.mark.parametrize("name", ["cnndet", "frepgan"])  # frepgan: manual optimisation, 3 optimisers
def test_ddp_two_processes_gloo(name, tiny_forensynths, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "ddp_run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tiny_forensynths / "train"),
        str(out),
        name,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2 and r0["distributed"]
    assert r0["hash"] == r1["hash"], "parameters differ across ranks: gradients were not synchronised"
    assert (out / "model.json").is_file()
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]  # only rank 0 writes
