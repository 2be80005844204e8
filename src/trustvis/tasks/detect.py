"""Task ``detect``: is an image generated? Binary detectors (``cnndet``, ``bihpf``, ``d4``, ...).

data       SynthBench (built on first use; train on one family, validate on its val split) or a folder in
           the ForenSynths layout ROOT/{train,val}/<generator>/[<class>/]{0_real,1_fake}/* or a GenImage
           root ROOT/<generator>/{train,val}/{ai,nature}/*
validation per-generator accuracy / AP / AUC on the val split, averaged over generators
predict    p(fake) and the verdict at a threshold (default 0.5); large images are centre-cropped at full
           resolution (resizing would erase the traces detectors read)
eval       per-generator table on a ForenSynths/GenImage folder, optionally adversarial accuracy of the
           fake images under PGD / HopSkipJump (``eval --attack``; the attacker wants fake -> real)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvis.config import ConfigError
from trustvis.tasks.base import Prediction, PredictOptions, Task, register_task, score_records, verdict_table


@dataclass
class DetectData:
    """Where a detector's training and validation images come from."""

    name: str = "synthbench"  # synthbench | folder (ForenSynths / GenImage layout under root)
    root: str = ""  # the folder when name == folder
    size: str = "quick"  # synthbench size: tiny (seconds) | demo | quick | full (v2: tiny | quick | full)
    train_family: str = "ae_tconv"  # synthbench family used for training
    max_images: int = 0  # cap per generator and class; 0 = all
    version: str = "v1"  # synthbench edition: v1 | v2 (adds gan_aa, ddpm, inpaint and the test_wild split)

    def check(self) -> None:
        from trustvis.data.synthbench import EDITIONS

        if self.name == "synthbench":
            if self.version not in EDITIONS:
                raise ConfigError(f"data.version={self.version!r} is not a SynthBench edition; choose from "
                                  f"{list(EDITIONS)}")  # fmt: skip
            families, sizes = EDITIONS[self.version]
            if self.size not in sizes:
                raise ConfigError(
                    f"data.size={self.size!r} is not a SynthBench {self.version} size; choose from {list(sizes)}"
                )
            if self.train_family not in families:
                raise ConfigError(f"data.train_family={self.train_family!r} is not a SynthBench {self.version} "
                                  f"family; choose from {list(families)}")  # fmt: skip
        if self.name not in ("synthbench", "folder"):
            raise ConfigError(
                f"data.name={self.name!r} is invalid for a detector; choose from ['synthbench', 'folder']"
            )
        if self.max_images < 0:
            raise ConfigError(
                f"data.max_images={self.max_images!r} is invalid; it must be an integer >= 0 (0 = all)"
            )


# ----------------------------------------------------------------------------------------------------
# datasets and metrics (shared with `trustvis bench detect` / `bench calibrate` / `bench adapt`)


def summarize_predictions(out: dict[str, Any]) -> dict[str, Any]:
    """Per-generator binary metrics, their mean and the throughput, from :func:`predict_dataset` output."""
    from trustvis.metrics.classification import binary_metrics, mean_metrics

    scores, labels, gens = out["score"], out["label"].astype(int), out["generator"]
    per_gen = {g: binary_metrics(labels[gens == g], scores[gens == g]) for g in sorted(set(gens.tolist()))}
    return {
        "per_generator": per_gen,
        "mean": mean_metrics(list(per_gen.values())),
        "images_per_second": out["images_per_second"],
    }


def evaluate_detector(
    method: Any, dataset: Any, batch_size: int = 64, progress: bool = True
) -> dict[str, Any]:
    """Per-generator binary metrics of ``method`` on ``dataset`` plus their mean and the throughput."""
    from trustvis.engine import predict_dataset

    out = predict_dataset(method, dataset, batch_size=batch_size, keys=("score",), progress=progress)
    return summarize_predictions(out)


def attack_images_of(dataset: Any, n_fake: int, n_real: int = 16) -> tuple[Any, Any]:
    """Up to ``n_fake`` fake and ``n_real`` real images of ``dataset``, taken round-robin over generators.

    Only images of the first image's shape are kept (attacks run in batches); the dataset's transform
    is applied, so use the eval transform. Returns ``(fakes (N,C,H,W), reals (M,C,H,W))``.
    """
    import torch

    from trustvis.data.arrays import ArrayDataset

    if isinstance(dataset, ArrayDataset):
        gens = list(dataset.gens)
    elif hasattr(dataset, "items"):  # ForenSynthsDataset
        gens = [t[2] for t in dataset.items]
    else:
        raise TypeError(
            f"attack_images needs an ArrayDataset or a ForenSynthsDataset, got {type(dataset).__name__}"
        )
    labels = [int(x) for x in dataset.labels]
    picked: dict[int, list[torch.Tensor]] = {0: [], 1: []}
    want = {0: n_real, 1: n_fake}
    shape = None
    for lab in (1, 0):
        queues = {
            g: [i for i in range(len(gens)) if gens[i] == g and labels[i] == lab] for g in sorted(set(gens))
        }
        pos = dict.fromkeys(queues, 0)
        while len(picked[lab]) < want[lab] and any(pos[g] < len(q) for g, q in queues.items()):
            for g, q in queues.items():
                if pos[g] >= len(q) or len(picked[lab]) >= want[lab]:
                    continue
                img = dataset[q[pos[g]]]["image"]
                pos[g] += 1
                shape = shape or tuple(img.shape)
                if tuple(img.shape) == shape:
                    picked[lab].append(img)
    if not picked[1]:
        raise ValueError("no fake image to attack in the data set")
    reals = torch.stack(picked[0]) if picked[0] else torch.empty(0, *shape)
    return torch.stack(picked[1]), reals


def adversarial_eval(
    logit_fn: Any,
    fakes: Any,
    reals: Any,
    attacks: dict[str, float],
    steps: int = 10,
    queries: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """``{attack: attack_detector(...)}`` for each ``attack -> eps``; real images seed HopSkipJump."""
    from trustvis.attacks.evaluate import attack_detector

    return {
        name: attack_detector(logit_fn, fakes, name, eps, steps=steps, queries=queries, init=reals,
                              seed=seed, progress=progress)
        for name, eps in attacks.items()
    }  # fmt: skip


def codec_fakes(reals: Any, cfg: Any, seed: int, progress: bool) -> tuple[Any, dict]:
    """SynthBench v2's ``inr_codec`` family: every real patch uint8 (n,S,S,3) coded to ``.tvc`` bytes by one of the
    toolkit's overfitted codecs and decoded; returns (fakes uint8 (n,S,S,3), stats).

    Real i is coded by ``cfg.codec_methods[i % m]`` at ``cfg.codec_lmbdas[(i // m) % len(cfg.codec_lmbdas)]``
    (m codecs) with ``cfg.codec_iterations`` fitting steps of the ``cfg.codec_preset`` architecture, seeded by
    ``seed + i``; stats hold each codec's mean bits per pixel (of the real file) and PSNR."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from trustvis import registry

    fakes, per = np.empty_like(reals), {}  # per: "codec lambda=..." -> {"bpp": [...], "psnr": [...]}
    m, lm = len(cfg.codec_methods), cfg.codec_lmbdas
    for i, img in enumerate(tqdm(reals, desc="code inr_codec", disable=not progress, leave=False)):
        name, lmbda = cfg.codec_methods[i % m], lm[(i // m) % len(lm)]
        codec = registry.build(
            name, cfg.codec_preset, lmbda=lmbda, iterations=cfg.codec_iterations, seed=seed + i
        )
        data = codec.compress(img, progress=False)
        x = codec.decompress(data)  # (3,S,S) in [0,1], rounded to 8 bits by the decoder
        fakes[i] = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        mse = float(np.mean((fakes[i].astype(np.float64) - img) ** 2))
        rec = per.setdefault(f"{name} lambda={lmbda:g}", {"bpp": [], "psnr": []})
        rec["bpp"].append(8 * len(data) / (img.shape[0] * img.shape[1]))
        rec["psnr"].append(10 * np.log10(255**2 / max(mse, 1e-10)))
    stats = {k: {"images": len(v["bpp"]), "mean_bpp": round(float(np.mean(v["bpp"])), 4),
                 "mean_psnr_db": round(float(np.mean(v["psnr"])), 3)} for k, v in per.items()}  # fmt: skip
    return fakes, stats


#: the makers of SynthBench's families that need the toolkit's methods (``data.synthbench.EXTERNAL_FAMILIES``)
SYNTHBENCH_MAKERS = {"inr_codec": codec_fakes}


def build_synthbench_data(
    size: str = "quick", force: bool = False, progress: bool = True, version: str = "v1", **kw: Any
) -> Path:
    """``data.synthbench.build_synthbench`` with the makers of its external families (the codec family of v2),
    whose codecs and preset are checked against the registry before any work; ``kw`` go to the builder."""
    from trustvis import registry
    from trustvis.data.synthbench import EDITIONS, build_synthbench

    cfg = kw.get("config") or (EDITIONS[version][1].get(size) if version in EDITIONS else None)
    for name in getattr(cfg, "codec_methods", []):
        spec = registry.get(name)  # KeyError lists the methods
        if spec.task != "codec" or cfg.codec_preset not in spec.presets:
            raise ValueError(
                f"SynthBench codec_methods: {name!r} is not a codec with a {cfg.codec_preset!r} preset; codecs: "
                f"{[s.name for s in registry.list_methods('codec')]}"
            )
    return build_synthbench(
        size, force=force, progress=progress, version=version, makers=SYNTHBENCH_MAKERS, **kw
    )


def detection_datasets(run: Any, method: Any) -> tuple[Any, Any | None]:
    """(train set, val set or None) for a detection run config (SynthBench or a ForenSynths folder)."""
    from trustvis.data.forensynths import ForenSynthsDataset, genimage_splits

    data = run.data
    if data.name == "synthbench":
        root = build_synthbench_data(data.size, progress=True, version=data.version)
        kw = {"generators": [data.train_family], "max_per_class": data.max_images}
        train = ForenSynthsDataset(
            root / "train", transform=method.make_transform(True), labels=method.train_labels, **kw
        )
        val = ForenSynthsDataset(root / "val", transform=method.make_transform(False), **kw)
        return train, val
    if data.name == "folder":
        if not data.root:
            raise ValueError("data.name=folder needs data.root (or pass --data ROOT)")
        root = Path(data.root).expanduser()
        splits = genimage_splits(root)  # GenImage <generator>/<split>/{ai,nature}; [] for ForenSynths trees
        kw = {"max_per_class": data.max_images}
        if splits:
            if "train" not in splits:
                raise ValueError(f"GenImage root {root} has no train split (found {splits})")
            train = ForenSynthsDataset(root, transform=method.make_transform(True), labels=method.train_labels,
                                       split="train", **kw)  # fmt: skip
            val = None
            if "val" in splits:
                val = ForenSynthsDataset(root, transform=method.make_transform(False), split="val", **kw)
            return train, val
        train_root = root / "train" if (root / "train").is_dir() else root
        train = ForenSynthsDataset(
            train_root, transform=method.make_transform(True), labels=method.train_labels, **kw
        )
        val = None
        if (root / "val").is_dir():
            val = ForenSynthsDataset(root / "val", transform=method.make_transform(False), **kw)
        return train, val
    raise ValueError(f"Unknown data.name {data.name!r}; choose from ['synthbench', 'folder']")


def detector_logits(method: Any, root: Path, families: list[str], split: str) -> tuple[Any, Any]:
    """(logits (N,), labels (N,)) of a binary detector on SynthBench ``split`` of ``families``."""
    import numpy as np

    from trustvis.data.forensynths import ForenSynthsDataset
    from trustvis.engine import predict_dataset

    ds = ForenSynthsDataset(root / split, transform=method.make_transform(False), generators=families)
    out = predict_dataset(method, ds, batch_size=128, keys=("logits",), progress=False)
    return out["logits"].astype(np.float32), out["label"].astype(np.int64)


# ----------------------------------------------------------------------------------------------------
# the task object


class DetectTask(Task):
    """Generated-image detection (binary: 0 real, 1 fake)."""

    name = "detect"
    method_tasks = ("detect",)
    data_config = DetectData
    predict_fit = "crop"
    eval_layout = "ForenSynths ROOT/<generator>/[<class>/]{0_real,1_fake}/* or GenImage ROOT/<generator>/{train,val}/{ai,nature}/*"

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any | None]:
        return detection_datasets(run, method)

    def val_metrics(self, method: Any, val_set: Any, run: Any) -> dict[str, float]:
        return evaluate_detector(method, val_set, batch_size=max(run.train.batch_size, 64), progress=False)[
            "mean"
        ]

    def default_threshold(self, method: Any, run_dir: Path) -> float | None:
        return 0.5

    def predict_records(
        self, method: Any, out: dict[str, Any], items: list[tuple[int, Path, Any]], opts: PredictOptions
    ) -> list[dict[str, Any] | str]:
        return score_records(out["score"].float().cpu().numpy(), items, opts.threshold, "fake")

    def predict_table(self, pred: Prediction, opts: PredictOptions, run_dir: Path) -> None:
        verdict_table(pred, "fake", ("fake", "real"), "p(fake)", opts.threshold)

    def evaluate(
        self,
        method: Any,
        root: Path,
        run_dir: Path,
        *,
        batch_size: int = 64,
        max_images: int = 0,
        split: str | None = None,
        progress: bool = True,
        **_: Any,
    ) -> dict[str, Any]:
        from trustvis.data.forensynths import ForenSynthsDataset

        dataset = ForenSynthsDataset(
            root, transform=method.make_transform(False), max_per_class=max_images, split=split
        )
        res = evaluate_detector(method, dataset, batch_size=batch_size, progress=progress)
        res["data"] = str(root)
        res["skipped"] = [str(s) for s in dataset.skipped]
        res["_dataset"] = dataset  # for --attack; dropped before writing
        return res

    def eval_table(self, res: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        rows = [[g, m["n_real"], m["n_fake"], m["acc"], m["acc_real"], m["acc_fake"], m["ap"], m["auc"]]
                for g, m in res["per_generator"].items()]  # fmt: skip
        mean = res["mean"]
        rows.append(["mean", "", "", mean["acc"], "", "", mean["ap"], mean["auc"]])
        return ["generator", "n_real", "n_fake", "acc", "acc_real", "acc_fake", "ap", "auc"], rows

    def attack(
        self,
        method: Any,
        evaluated: dict[str, Any],
        attacks: list[str],
        eps: float | None = None,
        steps: int = 10,
        queries: int = 1000,
        images: int = 100,
        seed: int = 0,
        progress: bool = True,
    ) -> dict[str, Any]:
        """``eval --attack``: adversarial accuracy on the fake images of the evaluated folder (the attacker
        wants fake -> real); ``eps`` None = each attack's default budget."""
        from trustvis.attacks.evaluate import default_eps

        fakes, reals = attack_images_of(evaluated["_dataset"], images)
        fakes, reals = fakes.to(method.device), reals.to(method.device)
        for p in method.parameters():
            p.requires_grad_(False)  # gradients are needed w.r.t. the images only
        budgets = {a: (eps if eps is not None else default_eps(a)) for a in dict.fromkeys(attacks)}
        return adversarial_eval(method.logits, fakes, reals, budgets, steps=steps, queries=queries, seed=seed,
                                progress=progress)  # fmt: skip

    def attack_table(self, res: dict[str, Any]) -> tuple[str, list[str], list[list[Any]], str]:
        """(title, header, rows, note) of the adversarial table ``eval --attack`` prints."""
        n = next(iter(res.values()))["n"] if res else 0
        rows = [[a, r["norm"], r["eps"], r["eps_abs"], r["n"], r["clean_acc"], r["adv_acc"], r["median_norm"],
                 r["steps"] if r["steps"] is not None else r["queries"]] for a, r in res.items()]  # fmt: skip
        header = [
            "attack",
            "norm",
            "eps",
            "eps (abs)",
            "n",
            "clean acc",
            "adv acc",
            "median |δ|",
            "steps/queries",
        ]
        title = f"adversarial accuracy on {n} fake images (share still flagged fake; the attacker wants fake -> real)"
        note = (
            "eps for l2 attacks is the normalised L2 ‖δ‖₂/sqrt(C·H·W) (D4's convention); for linf, max |δ|."
        )
        return title, header, rows, note

    def calibration_logits(self, method: Any, run_dir: str) -> dict[str, Any]:
        """Calibration set (val of the training family) and test set (the unseen families' test) logits."""
        run = method.run_config
        if run.data.name != "synthbench":
            raise ValueError(
                f"calibrate --run supports SynthBench detector runs; {run_dir} trained on {run.data.name!r}: "
                "export its logits to an .npz and use --logits"
            )
        from trustvis.data.synthbench import EDITIONS

        version = run.data.version
        root = build_synthbench_data(run.data.size, version=version)
        cal, cal_y = detector_logits(method, root, [run.data.train_family], "val")
        test, test_y = detector_logits(
            method, root, [f for f in EDITIONS[version][0] if f != run.data.train_family], "test"
        )
        return {"cal": cal, "cal_y": cal_y, "test": test, "test_y": test_y}

    def instead(self, command: str) -> str:
        return "`trustvis eval RUN --data ROOT` measures a detector on a folder"

    def tiny_folder(self, root: Path) -> Path:
        """Two generators x {0_real, 1_fake} x 4 images of 32x32: noise-free reals, checkered fakes."""
        import numpy as np

        from trustvis.data.io import save_png

        rng = np.random.default_rng(0)
        for split in ("train", "val"):
            for gen in ("gan_a", "gan_b"):
                for label in (0, 1):
                    folder = root / split / gen / f"{label}_{'fake' if label else 'real'}"
                    folder.mkdir(parents=True, exist_ok=True)
                    for i in range(4):
                        img = rng.integers(60, 200, (32, 32, 3)).astype(np.uint8)
                        if label:
                            img[::2, ::2] = 255  # a periodic trace, like an up-sampler's
                        save_png(folder / f"{i}.png", img)
        return root / "val"

    def tiny_overrides(self, folder: Path) -> list[str]:
        return ["data.name=folder", f"data.root={folder.parent}"]


register_task(DetectTask())
