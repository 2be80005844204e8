"""Contract test parametrised over the registry: every method, its ``tiny`` preset, the real Trainer.

build tiny -> 2 training steps through Trainer -> predict keys/shapes/finite -> checkpoint round trip
gives identical predictions -> same seed gives the same output.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustvis import registry
from trustvis.config import make_run_config
from trustvis.engine import Trainer, load_method, seed_everything
from trustvis.engine.checkpoint import CheckpointError
from trustvis.tasks import task_of

ALL = [s.name for s in registry.list_methods()]


def _tiny_classes(method, train: bool):
    """10 classes of 12x12 RGB images whose mean colour encodes the class (learnable, deterministic)."""
    from trustvis.data.classification import ClassificationDataset, ImageSet

    rng = np.random.default_rng(0 if train else 1)
    labels = np.arange(20) % 10
    images = (rng.integers(0, 60, (20, 12, 12, 3)) + labels[:, None, None, None] * 19).astype(np.uint8)
    return ClassificationDataset(
        ImageSet(images, labels, [str(i) for i in range(10)]), method.make_transform(train)
    )


def _tiny_logits(num_classes: int, train: bool):
    """Over-confident synthetic logits (N,K) and labels for the fit-only calibrators."""
    g = torch.Generator().manual_seed(0 if train else 1)
    labels = torch.arange(60) % num_classes
    logits = 4.0 * (
        torch.randn(60, num_classes, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, num_classes)
    )
    return {"logits": logits, "label": labels}


def _tiny_anomaly(method, train: bool):
    """8 noise images (32x32): all normal for training, half labelled anomalous for prediction."""
    from trustvis.data.anomaly import AnomalyDataset, AnomalySet

    rng = np.random.default_rng(0 if train else 1)
    images = rng.integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    labels = np.zeros(8, dtype=np.int64) if train else np.arange(8) % 2
    data = AnomalySet(images, labels, None, [str(i) for i in range(8)], np.array(["noise"] * 8))
    return AnomalyDataset(data, method.make_transform(train))


def _tiny_images(method, train: bool):
    """4 real-photo crops (16x20) with zero labels, for the per-image codecs."""
    from skimage import data

    from trustvis.data.classification import ClassificationDataset, ImageSet

    photo = data.astronaut()
    images = np.stack([photo[40 * i : 40 * i + 16, 60 : 60 + 20] for i in range(4)]).astype(np.uint8)
    return ClassificationDataset(
        ImageSet(images, np.zeros(4, np.int64), ["photo"]), method.make_transform(train)
    )


def _tiny_detection(method, train: bool, root):
    from trustvis.data.forensynths import ForenSynthsDataset

    return ForenSynthsDataset(
        root / ("train" if train else "test"),
        transform=method.make_transform(train),
        labels=method.train_labels if train else None,
    )


def _tiny_pairs(method, train: bool):
    """8 RGB + depth pairs (32x32): reals with a depth bump, spoofs flat with stripes."""
    from trustvis.data.pairs import PairDataset, PairSet

    rng = np.random.default_rng(0 if train else 1)
    yy, xx = np.mgrid[0:32, 0:32]
    rgb, depth = [], []
    labels = np.arange(8) % 2
    for lab in labels:
        img = rng.integers(40, 200, (32, 32, 3)).astype(np.uint8)
        d = np.full((32, 32), 0.6, np.float32) + rng.normal(0, 0.002, (32, 32)).astype(np.float32)
        if lab:
            img[:, ::3] = 255
        else:
            d -= 0.1 * np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 60.0).astype(np.float32)
        rgb.append(img)
        depth.append(d)
    media = ["object" if lab == 0 else "screen" for lab in labels]
    pairs = PairSet(rgb, depth, labels.astype(np.int64), media, [str(i) for i in range(8)])
    return PairDataset(pairs, method.make_transform(train))


def _tiny_reid(method, train: bool):
    """4 identities x 3 images (32x16) whose colour encodes the identity; cameras alternate."""
    from trustvis.data.reid.base import ReidSet
    from trustvis.tasks.reid import ReidDataset, train_set

    rng = np.random.default_rng(0 if train else 1)
    pids = np.repeat(np.arange(1, 5), 3)
    images = [(rng.integers(0, 60, (32, 16, 3)) + 45 * p).astype(np.uint8) for p in pids]
    items = ReidSet(images, pids, np.arange(12) % 2, [str(i) for i in range(12)])
    return (
        train_set(items, method.make_transform(True))
        if train
        else ReidDataset(items, method.make_transform(False))
    )


def _tiny_multimodal(method, train: bool):
    """3 classes: 12 gray 12x12 images (a bar whose row is the class) and 6 log-mel-like clips (n_mels, frames) of
    the method's config whose mean is the class, 2 speakers; every clip paired."""
    from trustvis.data.crossmodal import DigitSpeech
    from trustvis.data.speech import Clip
    from trustvis.tasks.multimodal import PoolPairDataset

    rng = np.random.default_rng(0 if train else 1)
    image_labels = np.arange(12) % 3
    images = rng.integers(0, 40, (12, 12, 12)).astype(np.uint8)
    for img, c in zip(images, image_labels):
        img[3 * c + 1 : 3 * c + 3, 2:10] = 230
    speech_labels = np.arange(6) % 3
    n_mels, frames = method.config.n_mels, method.config.frames
    speech = (rng.normal(0, 1, (6, n_mels, frames)) + 2.0 * speech_labels[:, None, None]).astype(np.float32)
    clips = [Clip(f"spk{k % 2}_{k}.wav", int(c), f"tiny/spk{k % 2}", "en", "tiny", False)
             for k, c in enumerate(speech_labels)]  # fmt: skip
    data = DigitSpeech(images, image_labels.astype(np.int64), speech, speech_labels.astype(np.int64), clips)
    return PoolPairDataset(data.with_pairs(1.0), method.make_transform(train))


#: task object (trustvis.tasks) -> tiny in-memory data of its methods
TINY_DATA = {
    "codec": lambda m, train, root: _tiny_images(m, train),
    "anomaly": lambda m, train, root: _tiny_anomaly(m, train),
    "classify": lambda m, train, root: _tiny_classes(m, train),
    "active": lambda m, train, root: _tiny_classes(m, train),
    "detect": _tiny_detection,
    "antispoof": lambda m, train, root: _tiny_pairs(m, train),
    "reid": lambda m, train, root: _tiny_reid(m, train),
    "multimodal": lambda m, train, root: _tiny_multimodal(m, train),
}


def _fits_on_logits(method) -> bool:
    """Post-hoc calibrators read another model's logits: a full-batch fit on them, then the final save."""
    return method.inputs == ("logits",)


def _task_dataset(method, root, train: bool):
    task = task_of(method.task).name
    if task not in TINY_DATA:
        pytest.fail(f"contract test has no tiny data for task {task!r}; add it to TINY_DATA")
    return TINY_DATA[task](method, train, root)


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
    if _fits_on_logits(method):  # fit-only: full-batch fit on held-out logits, then the same final save
        from trustvis.config import to_dict
        from trustvis.engine.checkpoint import save_final

        method.fit(_tiny_logits(method.config.num_classes, train=True))
        save_final(method, out, to_dict(run), 0)
        return method
    Trainer(method, run, out).fit(_task_dataset(method, root, train=True))
    return method


def _predict(method, root):
    if _fits_on_logits(method):
        return method.predict({"logits": _tiny_logits(method.config.num_classes, train=False)["logits"]})
    ds = _task_dataset(method, root, train=False)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    return method.predict(batch)


def test_registry_lists_methods_with_papers():
    assert {
        "cnndet",
        "bihpf",
        "classifier",
        "kmix",
        "mixup",
        "cutmix",
        "sctl",
        "ts",
        "cts",
        "ets",
        "pts",
    } <= set(ALL)
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
    if {"score", "logits"} <= set(registry.TASKS[spec.task]):  # binary detectors: p(positive) per image
        assert out["score"].shape == (4,)
        assert ((out["score"] >= 0) & (out["score"] <= 1)).all()
    if "probs" in out:
        torch.testing.assert_close(out["probs"].sum(1), torch.ones(len(out["probs"])))

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
