"""Image ↔ speech digits for the cross-modal task: two unpaired pools and a configurable set of pairs.

The images are a classification set of :mod:`trustvis.data.classification` (OpenCV's ``digits.png`` or
scikit-learn's digits), split by image as that module splits them; the speech is :mod:`trustvis.data.speech`
(real and synthetic voices), split by speaker. Pairs join a spoken digit to an image of the same digit::

    images (split s) ──► ImageSet (N_i images, labels)          speech (split s, by speaker) ──► log-mel (N_s, 40, T)
    pairs(fraction f, seed): a seeded order of the N_s clips; its first round(f · N_s) clips are paired, each with
        a different image of its digit (seeded); the rest of both pools stays unpaired
    ──► DigitSpeech(images, labels_i, speech, labels_s, clips, pairs (P, 2) = (image index, clip index))

The pairs of a smaller fraction are a subset of those of a larger one for the same seed, so a curve over
fractions adds pairs rather than redrawing them.

A second real image ↔ speech set: the Tux Paint stamp pictures with the recordings of their names beside them
(:func:`stamp_speech`; Debian ``tuxpaint-stamps-default``, GPL-2): ``<name>.png`` with ``<name>.ogg`` (English) and
``<name>_<lang>.ogg`` (the name in another language) and ``<name>_desc_<lang>.ogg`` (about 8 languages: fr, ru, ro,
ca, bg, es, be, el, ...) — 767 of the 796 PNG pictures have at least one clip, about 1.5 s each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trustvis.data.speech import SOURCES, Clip, load_features, speaker_split, spoken_digits

IMAGE_SETS = ("opencv-digits", "sklearn-digits")
SPLITS = ("train", "val", "test")


def pair_indices(
    image_labels: np.ndarray, speech_labels: np.ndarray, fraction: float, seed: int = 0
) -> np.ndarray:
    """(P, 2) pairs (image index, speech index) of the same label: the first ``round(fraction · N_speech)`` clips of
    a seeded order, each with a distinct image of its label (seeded); a clip whose label has no image left stays
    unpaired.

    Raises:
        ValueError: a fraction outside [0, 1].
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"paired fraction {fraction} must be in [0, 1]")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(speech_labels))  # drawn first: the same for every fraction
    by_label = {
        int(c): list(rng.permutation(np.flatnonzero(image_labels == c))) for c in np.unique(image_labels)
    }
    pairs = []
    for j in order[: int(round(fraction * len(speech_labels)))]:
        pool = by_label.get(int(speech_labels[j]), [])
        if pool:
            pairs.append((int(pool.pop(0)), int(j)))
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


@dataclass
class DigitSpeech:
    """One split of the image ↔ speech digits."""

    images: np.ndarray  # uint8 (N_i, H, W)
    image_labels: np.ndarray  # int64 (N_i,)
    speech: np.ndarray  # float32 log-mel (N_s, n_mels, frames)
    speech_labels: np.ndarray  # int64 (N_s,)
    clips: list[Clip]  # the N_s clips (speaker, language, synthetic, ...)
    # (P, 2): (image index, clip index) of each pair
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    skipped: list = field(default_factory=list)  # clips that could not be read: (path, reason)

    def with_pairs(self, fraction: float, seed: int = 0) -> DigitSpeech:
        """This split with the pairs of ``fraction`` (see :func:`pair_indices`)."""
        pairs = pair_indices(self.image_labels, self.speech_labels, fraction, seed)
        return DigitSpeech(self.images, self.image_labels, self.speech, self.speech_labels, self.clips, pairs,
                           self.skipped)  # fmt: skip

    @property
    def synthetic(self) -> np.ndarray:
        """bool (N_s,): which clips are synthetic speech."""
        return np.asarray([c.synthetic for c in self.clips], dtype=bool)


def load_digit_speech(split: str, images: str = "opencv-digits", sources: Sequence[str] = SOURCES,
                      languages: Sequence[str] | None = None, seconds: float = 1.0,
                      split_seed: int = 0) -> DigitSpeech:  # fmt: skip
    """Split ``split`` of the image set ``images`` and of the spoken digits of ``sources`` (by speaker), unpaired.

    Raises:
        ValueError: an unknown split, image set or speech source; no clip in this split.
    """
    from trustvis.data.classification import load_split

    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {list(SPLITS)}")
    if images not in IMAGE_SETS:
        raise ValueError(f"Unknown digit image set {images!r}; choose from {list(IMAGE_SETS)}")
    image_set = load_split(images, split)
    clips = speaker_split(spoken_digits(sources, languages), seed=split_seed)[split]
    if not clips:
        raise ValueError(f"no spoken digit of {list(sources)} falls in the {split} split (install the speech "
                         "packages: `trustvis data status` lists them)")  # fmt: skip
    feats, kept, skipped = load_features(clips, seconds)
    return DigitSpeech(image_set.images, image_set.labels.astype(np.int64), feats,
                       np.asarray([c.digit for c in kept], dtype=np.int64), kept, skipped=skipped)  # fmt: skip


_DESC = re.compile(r"^(.+?)_desc_([a-z]{2,3}(?:_[A-Za-z]{2})?)\.ogg$")  # a description clip
_NAME = re.compile(r"^(.+?)_([a-z]{2,3}(?:_[A-Za-z]{2})?)\.ogg$")  # a name clip in another language


@dataclass(frozen=True)
class StampSpeech:
    """One Tux Paint picture and the recordings of its name."""

    picture: Path
    category: str  # the top-level stamps folder (animals, food, ...)
    # (language, clip), "en" for <name>.ogg; real speech, one speaker per language
    clips: tuple[tuple[str, Path], ...]


def stamp_speech(root: str | Path | None = None) -> list[StampSpeech]:
    """Every stamp picture (PNG) with at least one recording of its name, sorted by path; ``root`` = the stamps
    folder (default: the apt package's). An empty list when the folder is missing."""
    from trustvis.data.sources import apt_root
    from trustvis.data.stamps import STAMPS_DIR

    folder = Path(root) if root else apt_root() / STAMPS_DIR
    if not folder.is_dir():
        return []
    clips: dict[Path, list[tuple[str, Path]]] = {}
    for ogg in sorted(folder.rglob("*.ogg")):
        base, lang = ogg.with_suffix(""), "en"  # "<name>.ogg", also "sea_urchin.ogg": an English name
        m = _DESC.match(ogg.name) or _NAME.match(ogg.name)
        if m and (m.re is _DESC or ogg.with_name(f"{m.group(1)}.png").is_file()):
            base, lang = ogg.with_name(m.group(1)), m.group(2)
        clips.setdefault(base, []).append((lang, ogg))
    out = []
    for base, found in sorted(clips.items()):
        png = base.with_suffix(".png")
        if png.is_file():
            category = png.relative_to(folder).parts[0]
            out.append(StampSpeech(png, category, tuple(sorted(found))))
    return out
