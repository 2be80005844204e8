"""Golden numbers: stored outputs of metrics, data transforms and tiny methods, so that a refactor which
changes a number fails here.

    case function ──► {name: number | list}  ──► golden(name, values, kind)
                                                   │ TRUSTVIS_REGEN_GOLDEN unset: compare with
                                                   │     tests/expected/<name>.json (rtol/atol of `kind`)
                                                   └ TRUSTVIS_REGEN_GOLDEN=1: rewrite the file, skip

Regenerate (after a change that is *meant* to move numbers; review the JSON diff before committing)::

    TRUSTVIS_REGEN_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden.py

Only stable low-level APIs are used (``trustvis.metrics``, ``trustvis.data.transforms``,
``trustvis.data.generators``, ``synthbench.match_channel_means``, ``trustvis.registry.build``,
``trustvis.config.TrainConfig``, ``trustvis.engine.seed_everything``) and the training loop is written out
here (the trainer's order: zero_grad, backward, step), so that moving task
or benchmark code around does not touch these numbers. Tolerances allow for another x86 CPU or BLAS
(summation order), not for a changed algorithm: ``exact`` (metrics and pipelines on fixed inputs)
``rtol=1e-4, atol=1e-5``; ``trained`` (values after gradient steps) ``rtol=2e-3, atol=2e-4``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

EXPECTED = Path(__file__).parent / "expected"
REGEN_ENV = "TRUSTVIS_REGEN_GOLDEN"
HOW = f"{REGEN_ENV}=1 .venv/bin/python -m pytest -q tests/test_golden.py  (rewrites every file here)"
TOLERANCES = {"exact": (1e-4, 1e-5), "trained": (2e-3, 2e-4)}
N_STEPS = 3  # gradient steps before the tiny methods' predictions are recorded


# --- the golden fixture: load / compare / regenerate ------------------------------------------------


def _plain(x: Any) -> Any:
    """Numbers, arrays and tensors -> JSON-able floats/ints/lists (nested dicts, lists, strings kept)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if torch.is_tensor(x):
        x = x.detach().cpu().double().numpy()
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, bool | int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x)
    if isinstance(x, str):
        return x
    raise TypeError(f"golden values must be numbers, strings, arrays or dicts/lists of them, got {type(x)}")


def _flatten(x: Any, prefix: str = "") -> dict[str, float]:
    if isinstance(x, dict):
        return {k: v for key, val in x.items() for k, v in _flatten(val, f"{prefix}{key}.").items()}
    if isinstance(x, list):
        return {k: v for i, val in enumerate(x) for k, v in _flatten(val, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): x}


def compare(expected: Any, actual: Any, rtol: float, atol: float) -> list[str]:
    """Mismatches between two nested value trees (keys, lengths, numbers within rtol/atol, nan == nan;
    strings exactly)."""
    exp, act = _flatten(expected), _flatten(actual)
    problems = [f"{k}: missing (expected {exp[k]!r})" for k in sorted(exp.keys() - act.keys())]
    problems += [f"{k}: not in the golden file (got {act[k]!r})" for k in sorted(act.keys() - exp.keys())]
    for k in sorted(exp.keys() & act.keys()):
        if isinstance(exp[k], str) or isinstance(act[k], str):
            if exp[k] != act[k]:
                problems.append(f"{k}: expected {exp[k]!r}, got {act[k]!r}")
            continue
        e, a = float(exp[k]), float(act[k])
        if math.isnan(e) and math.isnan(a):
            continue
        if not (abs(a - e) <= atol + rtol * abs(e)):  # nan on one side fails too
            problems.append(f"{k}: expected {e!r}, got {a!r} (diff {a - e:.3g}, rtol={rtol}, atol={atol})")
    return problems


class Golden:
    """``golden(name, values, kind)``: compare ``values`` with ``tests/expected/<name>.json``, or rewrite
    that file when ``TRUSTVIS_REGEN_GOLDEN=1`` (the test is then skipped, naming what it rewrote)."""

    def __init__(self, regen: bool) -> None:
        self.regen = regen

    def __call__(self, name: str, values: dict[str, Any], kind: str = "exact") -> None:
        rtol, atol = TOLERANCES[kind]
        values = _plain(values)
        path = EXPECTED / f"{name}.json"
        if self.regen:
            old = json.loads(path.read_text())["values"] if path.exists() else None
            doc = {"_how": HOW, "tolerance": {"kind": kind, "rtol": rtol, "atol": atol}, "values": values}
            EXPECTED.mkdir(exist_ok=True)
            path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            if old is None:
                change = "new file"
            else:
                diff = compare(old, values, rtol, atol)
                change = f"{len(diff)} value(s) moved" if diff else "unchanged within tolerance"
            pytest.skip(f"regenerated {path.relative_to(EXPECTED.parent.parent)} ({change})")
        if not path.exists():
            pytest.fail(f"no golden file {path}; create it with: {HOW}")
        expected = json.loads(path.read_text())["values"]
        problems = compare(expected, values, rtol, atol)
        if problems:
            shown = "\n  ".join(problems[:20]) + (
                f"\n  ... {len(problems) - 20} more" if len(problems) > 20 else ""
            )
            pytest.fail(
                f"{len(problems)} golden number(s) of {name!r} changed:\n  {shown}\n"
                f"If the change is intended, regenerate with: {HOW}",
                pytrace=False,
            )


@pytest.fixture
def golden() -> Golden:
    return Golden(os.environ.get(REGEN_ENV, "") not in ("", "0"))


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: a fixed summation order here, and no oversubscription on a busy 2-core box
    (the numbers agree with 2 threads, AVX2-only and no-SIMD kernels to < 1/4 of the tolerances)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_compare_catches_changes_and_allows_cpu_noise():
    rtol, atol = TOLERANCES["exact"]
    ref = {"a": 0.5, "b": [1.0, 2e-7], "n": 3, "c": float("nan")}
    assert compare(ref, {"a": 0.5 * (1 + 1e-6), "b": [1.0, 0.0], "n": 3, "c": float("nan")}, rtol, atol) == []
    assert len(compare(ref, {"a": 0.5 * (1 + 1e-3), "b": [1.0, 2e-7], "n": 3, "c": 1.0}, rtol, atol)) == 2
    assert compare(ref, {"a": 0.5, "b": [1.0], "n": 3, "c": float("nan")}, rtol, atol) == [
        "b.1: missing (expected 2e-07)"
    ]


# --- 1. metrics on fixed inputs ---------------------------------------------------------------------


def test_golden_binary_metrics(golden):
    from trustvis.metrics.classification import binary_metrics, eer, roc_points

    rng = np.random.default_rng(101)
    labels = rng.integers(0, 2, 300)
    scores = 1.0 / (1.0 + np.exp(-(rng.normal(0.0, 1.5, 300) + 1.2 * (2 * labels - 1))))
    fpr, tpr = roc_points(labels, scores, max_points=9)
    golden(
        "metrics_binary",
        {
            "at_0.5": binary_metrics(labels, scores),
            "at_0.3": binary_metrics(labels, scores, threshold=0.3),
            "eer": eer(labels, scores),
            "roc_fpr": fpr,
            "roc_tpr": tpr,
        },
    )


def test_golden_calibration_metrics(golden):
    from trustvis.metrics.calibration import calibration_metrics, reliability_bins, softmax

    rng = np.random.default_rng(202)
    labels = rng.integers(0, 5, 400)
    logits = 3.0 * (rng.normal(size=(400, 5)) + 1.3 * np.eye(5)[labels])  # over-confident
    p1 = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 2.0, 400)))
    y1 = (rng.random(400) < 0.8 * p1 + 0.1).astype(np.int64)
    golden(
        "metrics_calibration",
        {
            "multiclass": calibration_metrics(logits, labels),
            "multiclass_probs_10bins": calibration_metrics(
                softmax(logits), labels, from_logits=False, n_bins=10
            ),
            "binary": calibration_metrics(p1, y1, from_logits=False),
            "reliability_10bins": reliability_bins(logits, labels, n_bins=10, from_logits=True),
        },
    )


def _anomaly_inputs(seed: int = 303) -> tuple[np.ndarray, ...]:
    """16 images of 32x32: half anomalous with one or two rectangles; maps = noise + blurred defect."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    n, s = 16, 32
    labels = np.arange(n) % 2
    masks = np.zeros((n, s, s), dtype=np.uint8)
    for i in np.flatnonzero(labels):
        for _ in range(1 + i % 3 // 2):
            y, x = rng.integers(0, s - 8, 2)
            h, w = rng.integers(3, 9, 2)
            masks[i, y : y + h, x : x + w] = 1
    maps = rng.normal(0.0, 1.0, (n, s, s)) + 2.0 * gaussian_filter(masks.astype(float), (0, 1.5, 1.5))
    scores = gaussian_filter(maps, (0, 2, 2)).reshape(n, -1).max(1) + rng.normal(0.0, 0.3, n)  # (N,)
    return labels, scores, masks, maps


def test_golden_anomaly_metrics(golden):
    from trustvis.metrics import anomaly as A

    labels, scores, masks, maps = _anomaly_inputs()
    thr = A.adaptive_threshold(scores[labels == 0])
    golden(
        "metrics_anomaly",
        {
            "all": A.anomaly_metrics(labels, scores, masks, maps, threshold=thr),
            "adaptive_threshold": thr,
            "aupro_limit_0.05": A.aupro(masks, maps, fpr_limit=0.05),
            "aupro_64_thresholds": A.aupro(masks, maps, num_thresholds=64),
            "f1_max": list(A.f1_max(labels, scores)),
        },
    )


def _photo_pair(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth colour image (uint8 HxWx3) and a noisier, slightly blurred copy of it."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = np.stack([200 * xx + 30, 180 * yy + 40, 120 * np.sin(6 * xx * yy) + 128], axis=-1)
    base = base + gaussian_filter(rng.normal(0, 25, (size, size, 3)), (2, 2, 0))
    ref = np.clip(np.rint(base), 0, 255).astype(np.uint8)
    rec = gaussian_filter(ref.astype(float), (0.7, 0.7, 0)) + rng.normal(0, 4, ref.shape)
    return ref, np.clip(np.rint(rec), 0, 255).astype(np.uint8)


def test_golden_compression_metrics(golden):
    from trustvis.metrics import compression as C

    ref64, rec64 = _photo_pair(64, 404)  # MS-SSIM with fewer scales (short side < 161)
    ref192, rec192 = _photo_pair(192, 405)  # standard 5 scales
    rate_anchor, psnr_anchor = [0.25, 0.5, 1.0, 2.0], [28.1, 31.4, 34.9, 38.2]
    rate_test, psnr_test = [0.22, 0.47, 0.9, 1.85], [28.6, 32.0, 35.3, 38.9]
    points = [
        {
            "image": im,
            "quality": q,
            "bpp": b * (1 + 0.1 * k),
            "psnr": p - k,
            "ms_ssim": 0.9 + 0.02 * q - 0.01 * k,
        }
        for k, im in enumerate(("a", "b", "c"))
        for q, b, p in zip((1, 2, 3), (0.3, 0.6, 1.2), (30.0, 33.0, 36.0), strict=True)
    ]
    golden(
        "metrics_compression",
        {
            "mse_64": C.mse(ref64, rec64),
            "psnr_64": C.psnr(ref64, rec64),
            "psnr_64_float": C.psnr(ref64 / 255.0, rec64 / 255.0),
            "ms_ssim_64": C.ms_ssim(ref64, rec64),
            "ms_ssim_64_torch": C.ms_ssim(
                torch.from_numpy(ref64 / 255.0).permute(2, 0, 1).float(),
                torch.from_numpy(rec64 / 255.0).permute(2, 0, 1).float(),
            ),
            "psnr_192": C.psnr(ref192, rec192),
            "ms_ssim_192": C.ms_ssim(ref192, rec192),
            "bpp": C.bpp(12345, 192, 256),
            "bd_rate": C.bd_rate(rate_test, psnr_test, rate_anchor, psnr_anchor),
            "bd_psnr": C.bd_psnr(rate_test, psnr_test, rate_anchor, psnr_anchor),
            "average_rd": C.average_rd(points),
            "average_rd_mse": C.average_rd(points, psnr_mode="psnr_of_mean_mse"),
        },
    )


def test_golden_spectrum(golden):
    from trustvis.metrics.spectrum import mean_log_spectrum, spectrum_difference

    rng = np.random.default_rng(505)
    real = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    fake = real.copy()
    fake[:, ::2, ::2] = np.clip(fake[:, ::2, ::2].astype(int) + 40, 0, 255)  # up-sampling-like grid
    s_real = mean_log_spectrum(real)
    s_fake = mean_log_spectrum(fake, highpass=False)
    d = spectrum_difference(s_fake, s_real)
    golden(
        "metrics_spectrum",
        {
            "real": {"mean": s_real.mean(), "std": s_real.std(), "centre_row": s_real[16, ::4]},
            "fake": {
                "mean": s_fake.mean(),
                "std": s_fake.std(),
                "corner": s_fake[0, 0],
                "nyquist": s_fake[0, 16],
            },
            "diff": {"max": d.max(), "argmax": int(d.argmax()), "mean_abs": np.abs(d).mean()},
        },
    )


# --- 2. data pipeline -------------------------------------------------------------------------------


def _stats(img: np.ndarray | torch.Tensor) -> dict[str, Any]:
    """Checksums of an image (batch): sum, sum of squares and a sum with fixed +-1 weights, which unlike
    the other two does not average out where pixels move both ways (a different seed, a shifted crop)."""
    a = img.detach().double().numpy() if torch.is_tensor(img) else np.asarray(img, dtype=np.float64)
    signs = np.where((np.arange(a.size) * 2654435761 % 4093) % 2 == 0, 1.0, -1.0).reshape(a.shape)
    return {"shape": list(a.shape), "sum": a.sum(), "sq_sum": (a * a).sum(), "wsum": (a * signs).sum()}


def test_golden_transforms(golden):
    from trustvis.data import transforms as T

    img, _ = _photo_pair(40, 606)
    img = img[:, :36]  # non-square
    out: dict[str, Any] = {
        "jpeg75": _stats(T.jpeg(img, 75)),
        "jpeg90_444": _stats(T.jpeg(img, 90, subsampling="4:4:4")),
        "blur1.5": _stats(T.gaussian_blur(img, 1.5)),
        "noise0.05": _stats(T.gaussian_noise(img, 0.05, seed=3)),
        "resize0.7": _stats(T.resize(img, 0.7)),
        "resize_roundtrip0.5": _stats(T.resize_roundtrip(img, 0.5)),
        "center_crop24": _stats(T.center_crop(img, 24)),
        "center_crop_grow48": _stats(T.center_crop(img, 48)),
        "to_tensor": _stats(T.to_tensor(img)),
    }
    out.update({f"degrade_{name}": _stats(T.degrade(img, name)) for name in sorted(T.DEGRADATIONS)})
    torch.manual_seed(7)  # the random transforms draw from torch's global generator
    chain = T.compose(T.BlurJpeg(0.5, 0.5), lambda x: T.random_crop(x, 28), T.random_hflip, T.to_tensor)
    out["random_chain_x4"] = [_stats(chain(img)) for _ in range(4)]
    out["random_translate_x3"] = [_stats(T.random_translate(img, 3)) for _ in range(3)]
    golden("data_transforms", out)


def test_golden_generators(golden):
    """A SynthBench-style family in miniature: a tiny up-sampling autoencoder, 3 Adam steps, fakes."""
    from trustvis.data import generators as G
    from trustvis.data.synthbench import match_channel_means

    reals, _ = _photo_pair(64, 707)
    patches = np.stack(
        [reals[y : y + 16, x : x + 16] for y in (0, 24, 48) for x in (0, 24, 48)]
    )  # (9,16,16,3)
    torch.manual_seed(0)
    ae = G.UpsamplingAutoencoder("tconv", depth=2, base_width=4, max_width=8)
    summary = G.train_autoencoder(ae, patches, steps=N_STEPS, batch_size=4, lr=2e-3, seed=1, progress=False)
    fakes = G.generate(ae, patches_uint8=patches)
    torch.manual_seed(0)
    vae = G.VAE(size=16, latent_dim=4, base_width=4)
    samples = G.generate(vae, n=3, seed=2)
    golden(
        "data_generators",
        {
            "ae_loss_curve": summary["curve"],
            "ae_fakes": {**_stats(fakes), "channel_means": fakes.reshape(-1, 3).mean(0)},
            "ae_fakes_matched": _stats(match_channel_means(fakes, patches)),
            "vae_samples": _stats(samples),
            "zero_insert": _stats(G.zero_insert(torch.from_numpy(patches[:2] / 255.0).permute(0, 3, 1, 2))),
        },
        kind="trained",
    )


# --- 3. tiny methods after N_STEPS gradient steps ---------------------------------------------------


def _detect_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16x16 reals (blocky noise) and fakes (the same plus a checkerboard), as tests/conftest.py."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16]
    checker = ((yy + xx) % 2 * 2 - 1)[..., None] * 40.0
    labels = np.arange(n) % 2
    base = np.kron(rng.normal(128, 30, (n, 4, 4, 3)), np.ones((1, 4, 4, 1)))
    return np.clip(base + labels[:, None, None, None] * checker, 0, 255).astype(np.uint8), labels


def _class_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """12x12 images of 10 classes whose mean colour encodes the class (tests/test_contract.py)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    return (rng.integers(0, 60, (n, 12, 12, 3)) + labels[:, None, None, None] * 19).astype(np.uint8), labels


def _batch(method, images: np.ndarray, labels: np.ndarray, train: bool) -> dict[str, torch.Tensor]:
    tf = method.make_transform(train)  # train transforms draw from torch's global generator (seeded)
    return {"image": torch.stack([tf(im) for im in images]), "label": torch.from_numpy(labels).long()}


def _train_steps(name: str, make_images, seed: int = 0) -> tuple[Any, list[float]]:
    """build(name, "tiny") -> N_STEPS steps on fixed batches, in the trainer's order of operations."""
    from trustvis import registry
    from trustvis.config import TrainConfig
    from trustvis.engine import seed_everything

    seed_everything(seed)
    method = registry.build(name, preset="tiny")
    method.train()
    method.optimizers = method.configure_optimizers(
        TrainConfig(lr=1e-3, batch_size=8, steps=N_STEPS, seed=seed)
    )
    losses = []
    for step in range(N_STEPS):
        batch = _batch(method, *make_images(8, 10 + step), train=True)
        out = method.training_step(batch)
        if not method.manual_optimization:
            for opt in method.optimizers.values():
                opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            for opt in method.optimizers.values():
                opt.step()
        losses.append(float(out["loss"].detach()))
    method.eval()
    return method, losses


def _rounded(out: dict[str, torch.Tensor], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: np.round(out[k].detach().double().numpy(), 6) for k in keys}


# Why scores/probs and not logits for the TinyCNN methods: its convs carry a bias right before BatchNorm,
# whose gradient is zero analytically and rounding noise numerically; Adam (update ~ g / (|g| + eps))
# turns that noise into steps of up to lr, which reach the eval-mode logits (running statistics) as
# ~3e-4 between 1 and 2 threads. Through the sigmoid/softmax this shrinks to < 1e-4, well inside
# `trained`; the losses (train-mode BatchNorm cancels the bias) are bit-stable and the sharper check.


@pytest.mark.parametrize("name", ["cnndet", "bihpf"])
def test_golden_detector_after_steps(golden, name):
    method, losses = _train_steps(name, _detect_images)
    out = method.predict(_batch(method, *_detect_images(6, 99), train=False))
    golden(f"method_{name}", {"losses": losses, "predict": _rounded(out, ("score",))}, kind="trained")


@pytest.mark.parametrize("name", ["classifier", "kmix"])
def test_golden_classifier_after_steps(golden, name):
    method, losses = _train_steps(name, _class_images)
    out = method.predict(_batch(method, *_class_images(4, 99), train=False))
    golden(f"method_{name}", {"losses": losses, "predict": _rounded(out, ("probs",))}, kind="trained")


def test_golden_padim_fit(golden):
    """Fit-only: PaDiM's Gaussian statistics of 3 batches of normal noise images, then scores and maps."""
    from trustvis import registry
    from trustvis.engine import seed_everything

    seed_everything(0)
    method = registry.build("padim", preset="tiny")
    method.eval()
    rng = np.random.default_rng(808)
    normal = rng.integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    loader = [_batch(method, normal[i : i + 4], np.zeros(4, np.int64), train=True) for i in range(0, 12, 4)]
    info = method.fit(loader)
    test = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    test[1::2, 8:20, 10:18] = 255  # two images with a white rectangle
    out = method.predict(_batch(method, test, np.arange(4) % 2, train=False))
    amap = out["anomaly_map"].double()
    golden(
        "method_padim",
        {
            "fit": info,
            "score": np.round(out["score"].double().numpy(), 6),
            "map_mean": amap.mean((1, 2)),
            "map_max": amap.amax((1, 2)),
            "map_row_16": np.round(amap[:, 16, ::4].numpy(), 6),
        },
        kind="trained",
    )


def test_golden_temperature_scaling_fit(golden):
    """Fit-only calibrator: temperature scaling (tiny: 3 classes, 20 LBFGS iterations) on fixed logits."""
    from trustvis import registry
    from trustvis.engine import seed_everything

    seed_everything(0)
    method = registry.build("ts", preset="tiny")
    g = torch.Generator().manual_seed(909)
    labels = torch.arange(90) % 3
    logits = 4.0 * (torch.randn(90, 3, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, 3))
    method.fit({"logits": logits, "label": labels})
    test = 4.0 * torch.randn(5, 3, generator=g)
    out = method.predict({"logits": test})
    golden(
        "method_ts",
        {
            "state": {k: v for k, v in method.state_dict().items() if v.is_floating_point()},
            "predict": _rounded(out, ("logits", "probs")),
        },
        kind="trained",
    )
