"""Contract test parametrised over the registry: every method, its ``tiny`` preset, the real Trainer.

build tiny -> 2 training steps through Trainer -> predict keys/shapes/finite -> checkpoint round trip
gives identical predictions -> same seed gives the same output.
"""

from __future__ import annotations

import pytest
import torch

from trustvis import registry
from trustvis.config import make_run_config
from trustvis.engine import Trainer, load_method, seed_everything
from trustvis.engine.checkpoint import CheckpointError

ALL = [s.name for s in registry.list_methods()]


def _task_dataset(method, root, train: bool):
    if method.task in ("detect",):
        from trustvis.data.forensynths import ForenSynthsDataset

        return ForenSynthsDataset(
            root / ("train" if train else "test"),
            transform=method.make_transform(train),
            labels=method.train_labels if train else None,
        )
    pytest.fail(f"contract test has no tiny data for task {method.task!r}; add it here")


def _train_tiny(name: str, root, out, seed: int = 0):
    run = make_run_config(
        name,
        "tiny",
        overrides=[
            f"train.seed={seed}",
            "train.steps=2",
            "train.batch_size=4",
            "train.progress=false",
            "train.device=cpu",
        ],
    )
    seed_everything(seed)
    method = registry.get(name).cls(run.model)
    Trainer(method, run, out).fit(_task_dataset(method, root, train=True))
    return method


def _predict(method, root):
    ds = _task_dataset(method, root, train=False)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    return method.predict(batch)


def test_registry_lists_methods_with_papers():
    assert {"cnndet", "bihpf"} <= set(ALL)
    for spec in registry.list_methods():
        assert spec.paper.url.startswith("https://")
        assert {"default", "tiny"} <= set(spec.presets)


@pytest.mark.parametrize("name", ALL)
def test_contract(name, tiny_forensynths, tmp_path):
    spec = registry.get(name)
    method = _train_tiny(name, tiny_forensynths, tmp_path / "run")
    method.eval()
    out = _predict(method, tiny_forensynths)
    for key in registry.TASKS[spec.task]:
        assert key in out, f"{name}.predict misses {key!r}"
        assert torch.isfinite(out[key]).all()
    if spec.task in ("detect", "antispoof"):
        assert out["score"].shape == (4,)
        assert ((out["score"] >= 0) & (out["score"] <= 1)).all()

    # checkpoint round trip: identical predictions, no unpickling involved
    loaded = load_method(tmp_path / "run")
    assert type(loaded) is type(method)
    again = _predict(loaded, tiny_forensynths)
    for key in out:
        torch.testing.assert_close(again[key], out[key], rtol=0, atol=0)

    # same seed -> same output
    other = _train_tiny(name, tiny_forensynths, tmp_path / "run2")
    other.eval()
    torch.testing.assert_close(
        _predict(other, tiny_forensynths)[registry.TASKS[spec.task][0]],
        out[registry.TASKS[spec.task][0]],
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("name", ALL)
def test_tiny_preset_builds_fast_and_offline(name):
    import time

    t0 = time.perf_counter()
    registry.build(name, "tiny")
    assert time.perf_counter() - t0 < 5.0  # generous: the contract is "under a second" on a quiet machine


def test_loading_checkpoint_of_another_method_fails(tiny_forensynths, tmp_path):
    _train_tiny("cnndet", tiny_forensynths, tmp_path / "run")
    with pytest.raises(CheckpointError, match="'cnndet'"):
        load_method(tmp_path / "run", expect_method="bihpf")


def test_registry_rejects_duplicates_and_unknown_tasks():
    from dataclasses import dataclass

    @dataclass
    class C:
        x: int = 1

    presets = {"default": {}, "tiny": {}}
    paper = registry.Paper("t", "v", "https://example.org")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("cnndet", task="detect", config=C, presets=presets, paper=paper)(type("X", (), {}))
    with pytest.raises(ValueError, match="Unknown task"):
        registry.register("new_method", task="nope", config=C, presets=presets, paper=paper)
    with pytest.raises(ValueError, match="tiny"):
        registry.register("new_method", task="detect", config=C, presets={"default": {}}, paper=paper)
    with pytest.raises(KeyError, match="choose from"):
        registry.get("no_such_method")
    with pytest.raises(KeyError, match="Unknown preset"):
        registry.build("cnndet", preset="huge")


@pytest.mark.parametrize("name", ALL)
def test_transforms_pickle_for_dataloader_workers(name):
    import pickle

    method = registry.build(name, "tiny")
    for train in (True, False):
        pickle.loads(pickle.dumps(method.make_transform(train)))
