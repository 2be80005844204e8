"""Task ``multimodal``: image ↔ speech association from few pairs (``xmodal``, ``jmvae``, ``latentreg``).

data       digits: digit images (OpenCV's 5,000 or scikit-learn's 1,797, split by image) and spoken digits (real
           Tux Paint and Asterisk voices, synthetic espeak-ng / flite voices; split by speaker), with a paired
           fraction of the training clips (``data.fraction``; pairs nest across fractions); or a folder
           ROOT/{train,val,test}/{image,speech}/<class>/* (speaker = a clip's file name up to its first ``_``)
train      batches hold both unpaired pools and a pair each: {"image" (3,H,W), "label", "speech" (n_mels, frames)
           log-mel, "speech_label", "pair_image", "pair_speech", "pair_label", "paired"}; the pairs cycle (a batch
           repeats them when there are fewer pairs than items); validation: retrieval R@1 both ways on the val split
predict    images and audio files: each input's latent ``z`` (``--json``), the other modality's latent, and with
           ``--maps DIR`` the generated image of each clip / the log-mel of each image as PNG
eval       on a folder's test split: cross-modal accuracy (speech → image judged by a digit classifier, image →
           speech judged by a spoken-digit classifier, both fitted on the folder's training split) and R@1

The metrics (:func:`crossmodal_metrics`)::

    speech → image accuracy   judge_image(decode_image(translate(speech → image, x_s))) == digit of x_s
    image → speech accuracy   judge_speech(decode_speech(translate(image → speech, x_i))) == digit of x_i
    R@1 a → b                 the gallery item of modality b whose latent mean is nearest (L2) to the query's
                              carried-over latent has the query's digit (gallery: the split's every b item)

Judges are logistic regressions (scikit-learn, lbfgs) on the training split's real images and its clips; real and
synthetic speech are always reported apart (``*_real``, ``*_synthetic``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustvis.config import ConfigError
from trustvis.tasks.base import Prediction, PredictOptions, Task, TaskError, register_task

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DATA_NAMES = ("digits", "folder")
FOLDER_IMAGE_SIZE = 20


@dataclass
class MultimodalData:
    """Where an image ↔ speech run's data come from, and how much of it is paired."""

    name: str = "digits"  # digits (built-in images + spoken digits) | folder (ROOT/{train,val,test}/{image,speech}/<class>/)
    root: str = ""  # the folder when name == folder
    images: str = "opencv-digits"  # digits: opencv-digits (20x20) | sklearn-digits (8x8)
    sources: tuple[str, ...] = (
        "tuxpaint",
        "asterisk",
        "espeak-ng",
        "flite",
    )  # speech sources (see data status)
    languages: tuple[str, ...] = ()  # only clips in these languages (empty: every language)
    fraction: float = 0.1  # share of the training clips paired with an image of their digit
    pair_seed: int = 0  # which clips are paired (pairs of a smaller fraction are a subset of a larger one's)
    seconds: float = 1.0  # clip length the log-mels are cut or padded to

    def check(self) -> None:
        from trustvis.data.crossmodal import IMAGE_SETS
        from trustvis.data.speech import SOURCES

        if self.name not in DATA_NAMES:
            raise ConfigError(
                f"data.name={self.name!r} is invalid for multimodal runs; choose from {list(DATA_NAMES)}"
            )
        if self.name == "folder" and not self.root:
            raise ConfigError("data.name=folder needs data.root (or pass --data ROOT)")
        if self.images not in IMAGE_SETS:
            raise ConfigError(f"data.images={self.images!r}; choose from {list(IMAGE_SETS)}")
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise ConfigError(f"data.sources={list(self.sources)}: give some of {list(SOURCES)}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ConfigError(f"data.fraction={self.fraction} must be in [0, 1]")
        if not 0.1 <= self.seconds <= 10.0:
            raise ConfigError(f"data.seconds={self.seconds} must be in [0.1, 10]")


# ----------------------------------------------------------------------------------------------- data


def load_split(data: MultimodalData, split: str) -> Any:
    """One split of a data config as a :class:`~trustvis.data.crossmodal.DigitSpeech` (unpaired). The built-in
    digits are read once per process and split (a bench trains dozens of runs on them); treat them as read-only."""
    if data.name == "folder":
        return read_folder(Path(data.root).expanduser(), split, data.seconds)
    return _digits_split(split, data.images, tuple(data.sources), tuple(data.languages), float(data.seconds))


@functools.lru_cache(maxsize=6)
def _digits_split(
    split: str, images: str, sources: tuple[str, ...], languages: tuple[str, ...], seconds: float
) -> Any:
    from trustvis.data.crossmodal import load_digit_speech

    try:
        return load_digit_speech(split, images, sources, list(languages) or None, seconds)
    except ValueError as e:
        raise ConfigError(f"data: {e}") from None


def image_size_of(data: MultimodalData) -> int:
    """The side of the run's images: 20 (OpenCV digits and folders) or 8 (scikit-learn digits)."""
    return 8 if data.name == "digits" and data.images == "sklearn-digits" else FOLDER_IMAGE_SIZE


def read_folder(root: Path, split: str, seconds: float = 1.0) -> Any:
    """ROOT/<split>/{image,speech}/<class>/* (or ROOT/{image,speech}/<class>/* when ROOT has no split folders) as a
    DigitSpeech: images gray at 20x20, clips as log-mels; class names sorted, the same in both modalities. Unreadable
    files are named in warnings and skipped.

    Raises:
        ConfigError: a missing folder, classes that differ between the modalities, no readable file.
    """
    import numpy as np
    from PIL import Image

    from trustvis.data.audio import AUDIO_EXTENSIONS
    from trustvis.data.crossmodal import DigitSpeech
    from trustvis.data.io import ImageReadError, iter_image_files, load_image
    from trustvis.data.speech import Clip, load_features

    base = root / split if (root / split).is_dir() else root
    dirs = {m: base / m for m in ("image", "speech")}
    for d in dirs.values():
        if not d.is_dir():
            raise ConfigError(f"{root}: no {d.relative_to(root) if d != root else d} folder; the layout is "
                              f"{MultimodalTask.eval_layout}")  # fmt: skip
    classes = {
        m: sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        for m, d in dirs.items()
    }
    if classes["image"] != classes["speech"] or not classes["image"]:
        raise ConfigError(f"{base}: image/ and speech/ must hold the same class folders; image/ has {classes['image']}, "
                          f"speech/ has {classes['speech']}")  # fmt: skip
    images, labels, skipped = [], [], []
    for k, c in enumerate(classes["image"]):
        for f in iter_image_files(dirs["image"] / c):
            try:
                gray = (
                    Image.fromarray(load_image(f))
                    .convert("L")
                    .resize((FOLDER_IMAGE_SIZE,) * 2, Image.BILINEAR)
                )
            except ImageReadError as e:
                log.warning("skipped %s", e)
                skipped.append((f, str(e)))
                continue
            images.append(np.asarray(gray, dtype=np.uint8))
            labels.append(k)
    clips = [Clip(f, k, f"folder/{f.stem.split('_')[0]}", "", "folder", False)
             for k, c in enumerate(classes["speech"])
             for f in iter_image_files(dirs["speech"] / c, AUDIO_EXTENSIONS)]  # fmt: skip
    if not images or not clips:
        raise ConfigError(f"{base}: no readable {'image' if not images else 'audio clip'} under "
                          f"{dirs['image' if not images else 'speech']}")  # fmt: skip
    try:
        feats, kept, bad = load_features(clips, seconds)
    except ValueError as e:
        raise ConfigError(f"{dirs['speech']}: {e}") from None
    return DigitSpeech(np.stack(images), np.asarray(labels, np.int64), feats,
                       np.asarray([c.digit for c in kept], np.int64), kept, skipped=skipped + bad)  # fmt: skip


class PoolPairDataset:
    """Training items of a DigitSpeech with pairs: item k holds image k mod N_i and clip k mod N_s of the unpaired
    pools, and pair k mod P (zeros and ``paired`` False when there is no pair). Length max(N_i, N_s)."""

    def __init__(self, data: Any, transform: Any) -> None:
        import numpy as np
        import torch

        self.data, self.transform = data, transform
        self.speech = torch.from_numpy(np.ascontiguousarray(data.speech, dtype=np.float32))

    def __len__(self) -> int:
        return max(len(self.data.images), len(self.data.speech))

    def image(self, i: int) -> Any:
        import numpy as np

        img = self.data.images[i]
        return self.transform(np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img)

    def __getitem__(self, k: int) -> dict[str, Any]:
        d = self.data
        i, j = k % len(d.images), k % len(d.speech)
        item = {"image": self.image(i), "label": int(d.image_labels[i]), "speech": self.speech[j],
                "speech_label": int(d.speech_labels[j]), "paired": len(d.pairs) > 0}  # fmt: skip
        if len(d.pairs):
            pi, pj = (int(v) for v in d.pairs[k % len(d.pairs)])
            item.update(
                pair_image=self.image(pi), pair_speech=self.speech[pj], pair_label=int(d.speech_labels[pj])
            )
        else:
            item.update(pair_image=item["image"] * 0, pair_speech=item["speech"] * 0, pair_label=0)
        return item


def speech_stats(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation (n_mels,) of a split's log-mels."""
    return data.speech.mean(axis=(0, 2)), data.speech.std(axis=(0, 2))


# -------------------------------------------------------------------------------------------- metrics


def _batched(fn: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    import numpy as np
    import torch

    with torch.no_grad():
        return np.concatenate([fn(torch.as_tensor(x[i : i + batch_size])).float().cpu().numpy()
                               for i in range(0, len(x), batch_size)]) if len(x) else np.zeros((0,))  # fmt: skip


def image_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) gray ─► float32 (N, 3, H, W) in [0, 1], the ``image`` a method's batch holds."""
    import numpy as np

    x = images.astype(np.float32) / 255.0
    return np.repeat(x[:, None], 3, axis=1)


class Judges:
    """The classifiers that judge generated outputs: a digit classifier on images (flattened pixels at the run's
    image size) and a spoken-digit classifier on log-mels, logistic regressions fitted on a training split."""

    def __init__(self, train: Any, image_size: int, seed: int = 0) -> None:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        for what, labels in (("images", train.image_labels), ("clips", train.speech_labels)):
            if len(np.unique(labels)) < 2:
                raise ConfigError(f"the judges' training {what} hold {len(np.unique(labels))} class; they need 2 or "
                                  "more (the folder's train/ split)")  # fmt: skip
        self.image_size = image_size
        self.image = LogisticRegression(max_iter=1000, C=1.0, random_state=seed)
        self.image.fit(self.image_features(image_inputs(train.images)[:, :1]), train.image_labels)
        self.speech = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000, C=0.1, random_state=seed)
        )
        self.speech.fit(train.speech.reshape(len(train.speech), -1), train.speech_labels)

    def image_features(self, x: np.ndarray) -> np.ndarray:
        """(N, 1, H, W) in [0, 1] ─► (N, S·S) at the judge's size."""
        import torch
        import torch.nn.functional as F

        t = torch.as_tensor(x, dtype=torch.float32)
        if t.shape[-1] != self.image_size:
            t = F.interpolate(
                t, size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True
            )
        return t.flatten(1).numpy()

    def judge_images(self, x: np.ndarray) -> np.ndarray:
        return self.image.predict(self.image_features(x))

    def judge_speech(self, x: np.ndarray) -> np.ndarray:
        return self.speech.predict(x.reshape(len(x), -1))


def nearest_hits(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                 gallery_labels: np.ndarray) -> np.ndarray:  # fmt: skip
    """bool (N_query,): the L2-nearest gallery item has the query's label."""
    import numpy as np

    if not len(query) or not len(gallery):
        return np.zeros(len(query), dtype=bool)
    d = (query**2).sum(1)[:, None] - 2 * query @ gallery.T + (gallery**2).sum(1)[None]
    return gallery_labels[np.argmin(d, axis=1)] == query_labels


def _mean(hits: np.ndarray, keep: np.ndarray | None = None) -> float:
    import numpy as np

    hits = hits if keep is None else hits[keep]
    return float(np.mean(hits)) if len(hits) else float("nan")


def latents(method: Any, data: Any, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Posterior means of a split's images and clips (``image``, ``speech``) and each carried to the other's space
    (``speech_to_image``, ``image_to_speech``)."""
    x_i = image_inputs(data.images)
    return {"image": _batched(lambda t: method.encode("image", t), x_i, batch_size),
            "speech": _batched(lambda t: method.encode("speech", t), data.speech, batch_size),
            "speech_to_image": _batched(lambda t: method.translate("speech", "image", t), data.speech, batch_size),
            "image_to_speech": _batched(lambda t: method.translate("image", "speech", t), x_i, batch_size)}  # fmt: skip


def retrieval(
    method: Any, data: Any, batch_size: int = 256, z: dict[str, np.ndarray] | None = None
) -> dict[str, float]:
    """R@1 speech → image and image → speech of ``method`` on a split (its every image and clip as galleries)."""
    z = latents(method, data, batch_size) if z is None else z
    s2i = nearest_hits(z["speech_to_image"], data.speech_labels, z["image"], data.image_labels)
    i2s = nearest_hits(z["image_to_speech"], data.image_labels, z["speech"], data.speech_labels)
    return {"r1_speech_to_image": _mean(s2i), "r1_image_to_speech": _mean(i2s),
            "r1_speech_to_image_real": _mean(s2i, ~data.synthetic),
            "r1_speech_to_image_synthetic": _mean(s2i, data.synthetic)}  # fmt: skip


def crossmodal_metrics(
    method: Any, test: Any, judges: Judges | None, batch_size: int = 256
) -> dict[str, Any]:
    """Cross-modal accuracy (judged), R@1 both ways and the judges' own accuracy on ``test`` (module docstring);
    speech results also for its real and synthetic clips apart."""
    method.eval()
    syn = test.synthetic
    x_i = image_inputs(test.images)
    res: dict[str, Any] = {
        "n_images": len(x_i),
        "n_clips_real": int((~syn).sum()),
        "n_clips_synthetic": int(syn.sum()),
    }
    z = latents(method, test, batch_size)
    res.update(retrieval(method, test, batch_size, z))
    if judges is not None:
        said = judges.judge_images(
            _batched(lambda t: method.decode("image", t), z["speech_to_image"], batch_size)
        )
        ok = said == test.speech_labels
        res.update(acc_speech_to_image=_mean(ok), acc_speech_to_image_real=_mean(ok, ~syn),
                   acc_speech_to_image_synthetic=_mean(ok, syn))  # fmt: skip
        gen_speech = _batched(lambda t: method.decode("speech", t), z["image_to_speech"], batch_size)
        res["acc_image_to_speech"] = _mean(judges.judge_speech(gen_speech) == test.image_labels)
        res["judge_image_acc"] = _mean(judges.judge_images(x_i[:, :1]) == test.image_labels)
        heard = judges.judge_speech(test.speech) == test.speech_labels
        res.update(judge_speech_acc_real=_mean(heard, ~syn), judge_speech_acc_synthetic=_mean(heard, syn))
    if "label" in getattr(method, "modalities", ()):
        for src, x, y in (("speech", test.speech, test.speech_labels), ("image", x_i, test.image_labels)):
            probs = _batched(
                lambda t, s=src: method.decode("label", method.translate(s, "label", t)), x, batch_size
            )
            res[f"acc_{src}_to_label"] = _mean(probs.argmax(1) == y)
    return res


# ----------------------------------------------------------------------------------------------- task


class MultimodalTask(Task):
    """Image ↔ speech association (latents per modality, cross-modal generation)."""

    name = "multimodal"
    method_tasks = ("multimodal",)
    data_config = MultimodalData
    eval_layout = (
        "ROOT/{train,val,test}/{image,speech}/<class>/* (images; .wav/.flac/.ogg clips named <speaker>_*)"
    )

    def prepare(self, run: Any, explicit: set[str]) -> None:
        from trustvis.data.audio import N_MELS, frames_for

        m = run.model
        if getattr(m, "vaes_from", "") and run.train.init_from:
            raise ConfigError(f"model.vaes_from={m.vaes_from} and train.init_from={run.train.init_from}: give one "
                              "(init_from starts every weight from that run, vaes_from loads and freezes its VAEs)")  # fmt: skip
        for key, value in (("image_size", image_size_of(run.data)), ("n_mels", N_MELS),
                           ("frames", frames_for(run.data.seconds))):  # fmt: skip
            if f"model.{key}" not in explicit and hasattr(m, key):
                setattr(m, key, value)

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any | None]:
        train = load_split(run.data, "train").with_pairs(run.data.fraction, run.data.pair_seed)
        if len(train.pairs) == 0 and getattr(method, "needs_pairs", lambda s: False)(run.train.steps):
            raise ConfigError(f"data.fraction={run.data.fraction} pairs none of the {len(train.speech)} training "
                              f"clips; {run.method} fits its associators on pairs (raise data.fraction)")  # fmt: skip
        if train.speech.shape[1:] != method.data_shape("speech"):
            raise ConfigError(f"the clips give log-mels of {train.speech.shape[1:]}, the model reads "
                              f"{method.data_shape('speech')} (model.n_mels, model.frames)")  # fmt: skip
        method.set_speech_stats(*speech_stats(train))
        log.info("multimodal train split: %d images, %d clips (%d synthetic), %d pairs (fraction %g)",
                 len(train.images), len(train.speech), int(train.synthetic.sum()), len(train.pairs), run.data.fraction)  # fmt: skip
        try:
            val = load_split(run.data, "val")
        except ConfigError as e:
            log.warning("no validation split (%s)", e)
            val = None
        return PoolPairDataset(train, method.make_transform(True)), val

    def val_metrics(self, method: Any, val_set: Any, run: Any) -> dict[str, float]:
        method.eval()
        out = retrieval(method, val_set)
        method.train()
        return {k: v for k, v in out.items() if v == v}  # a split without synthetic (or real) clips: no NaN

    # --- predict ----------------------------------------------------------------------------------------
    def input_suffixes(self) -> frozenset[str]:
        from trustvis.data.audio import AUDIO_EXTENSIONS
        from trustvis.data.io import IMAGE_EXTENSIONS

        return IMAGE_EXTENSIONS | AUDIO_EXTENSIONS

    def predict(self, method: Any, files: Sequence[Any], opts: PredictOptions, run_dir: Path) -> Prediction:
        import numpy as np
        import torch

        from trustvis.data.audio import AUDIO_EXTENSIONS, AudioReadError, clip_features
        from trustvis.data.io import ImageReadError, load_image
        from trustvis.tasks.predict import ImageArray

        if opts.depth:
            raise TaskError(
                "depth maps are read by RGB + depth (antispoof) runs only; this is a multimodal run"
            )
        pred = Prediction()
        seconds = (method.config.frames - 1) / 100.0
        method.eval()
        for f in files:
            name = f.name if isinstance(f, ImageArray) else str(f)
            try:
                if not isinstance(f, ImageArray) and Path(f).suffix.lower() in AUDIO_EXTENSIONS:
                    modality, x = "speech", torch.from_numpy(clip_features(f, seconds))[None]
                else:
                    rgb = f.pixels if isinstance(f, ImageArray) else load_image(f, max_side=opts.max_side)
                    modality, x = "image", method.make_transform(False)(np.ascontiguousarray(rgb))[None]
                out = method.predict({modality: x})
            except (AudioReadError, ImageReadError, OSError, ValueError, RuntimeError) as e:
                log.warning("%s: %s", name, e)
                pred.errors.append(
                    {"path": name, "error": str(e).splitlines()[0] if str(e) else type(e).__name__}
                )
                continue
            z = out["z"][0].float().cpu().numpy()
            if not np.isfinite(z).all():
                pred.errors.append(
                    {"path": name, "error": "model output is not finite; the run's weights may be broken"}
                )
                continue
            rec: dict[str, Any] = {
                "path": name,
                "modality": modality,
                "dim": len(z),
                "z": [float(v) for v in z],
            }
            for m in method.modalities:
                if m != modality:
                    rec[f"z_{m}"] = [float(v) for v in out[f"z_{m}"][0].float().cpu().numpy()]
            if "x_label" in out:
                rec["class"] = int(out["x_label"][0].argmax())
            if opts.maps_dir is not None:
                rec["generated"] = str(
                    self._write_generated(out, modality, name, opts.maps_dir, len(pred.records))
                )
            pred.records.append(rec)
        pred.columns = ["path", "modality", "dim"] + (["class"] if "label" in method.modalities else []) + (
            ["generated"] if opts.maps_dir is not None else [])  # fmt: skip
        pred.header = list(pred.columns)
        pred.summary.append("--json gives each input's latent z and its latent in the other modalities' spaces"
                            + ("" if opts.maps_dir else "; --maps DIR writes each clip's generated image and each "
                               "image's generated log-mel"))  # fmt: skip
        return pred

    @staticmethod
    def _write_generated(out: dict[str, Any], modality: str, name: str, folder: Path, k: int) -> Path:
        """PNG of the other modality generated from one input: the image of a clip, the log-mel of an image."""
        import numpy as np
        from PIL import Image

        from trustvis.data.io import save_png

        if modality == "speech":
            arr = (out["x_image"][0, 0].float().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
            scale = max(1, 128 // arr.shape[0])
        else:
            mel = out["x_speech"][0].float().cpu().numpy()[::-1]  # low frequencies at the bottom
            arr = ((mel - mel.min()) / max(float(np.ptp(mel)), 1e-6) * 255).round().astype(np.uint8)
            scale = 3
        img = Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.NEAREST)
        path = Path(folder) / f"{k:04d}_{Path(name).stem}_{'image' if modality == 'speech' else 'logmel'}.png"
        return save_png(path, np.repeat(np.asarray(img)[..., None], 3, axis=2))

    # --- eval -------------------------------------------------------------------------------------------
    def evaluate(
        self, method: Any, root: Path, run_dir: Path, *, batch_size: int = 256, **_: Any
    ) -> dict[str, Any]:
        test = read_folder(root, "test", (method.config.frames - 1) / 100.0)
        judges = None
        if (root / "train").is_dir():
            train = read_folder(root, "train", (method.config.frames - 1) / 100.0)
            try:
                judges = Judges(train, method.config.image_size)
            except ConfigError as e:
                raise ConfigError(f"{root / 'train'}: {e}") from None
        res = crossmodal_metrics(method, test, judges, batch_size)
        res = {k: (None if isinstance(v, float) and v != v else v) for k, v in res.items()}  # JSON has no NaN
        res.update(data=str(root), skipped=[f"{p}: {r}" for p, r in test.skipped])
        if judges is None:
            res["note"] = f"no {root / 'train'}: the accuracy judges need a training split; R@1 only"
        return res

    def eval_table(self, res: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        rows = [[k, v] for k, v in res.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        return ["metric", "value"], rows

    def instead(self, command: str) -> str:
        return "`trustvis bench multimodal` measures the methods on the built-in image / spoken-digit sets"

    # --- tests and examples -----------------------------------------------------------------------------
    def tiny_folder(self, root: Path) -> Path:
        return tiny_multimodal_folder(root)

    def tiny_overrides(self, folder: Path) -> list[str]:
        return ["data.name=folder", f"data.root={folder}", "data.fraction=1.0", "data.seconds=0.5"]


def tiny_multimodal_folder(root: Path, classes: int = 3) -> Path:
    """A tiny image ↔ speech folder: per split, 4 images per class (a bar whose row is the class) and clips of
    2 speakers per class (a tone whose pitch is the class, 0.5 s at 16 kHz); returns ROOT."""
    import numpy as np
    import soundfile as sf

    from trustvis.data.io import save_png

    root = Path(root)
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000.0
    for split, speakers in (("train", ("ann", "bob")), ("val", ("cy",)), ("test", ("dee", "eve"))):
        for c in range(classes):
            for k in range(4):
                img = rng.integers(0, 40, (12, 12)).astype(np.uint8)
                img[3 * c + 1 : 3 * c + 3, 2:10] = 230
                save_png(root / split / "image" / str(c) / f"{k}.png", np.repeat(img[..., None], 3, axis=2))
            for s, spk in enumerate(speakers):
                wave = 0.3 * np.sin(2 * np.pi * (300 + 350 * c + 20 * s) * t) * np.hanning(len(t))
                out = root / split / "speech" / str(c) / f"{spk}_{c}.wav"
                out.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(out), (wave + rng.normal(0, 0.002, len(t))).astype(np.float32), 16000)
    return root


register_task(MultimodalTask())
