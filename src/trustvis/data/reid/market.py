"""Readers for a user's re-identification folders: the Market-1501 layout and a plain ``<split>/<pid>/``
layout, and :func:`tiny_market`, a generated Market-1501 tree for tests and demos.

Market-1501 (Zheng et al., "Scalable Person Re-identification: A Benchmark", ICCV 2015) as released::

    ROOT/bounding_box_train/0002_c1s1_000451_03.jpg    training images (751 ids)
    ROOT/bounding_box_test/...                         gallery: 750 test ids, junk (-1), distractors (0000)
    ROOT/query/...                                     one query per (test id, camera) at most

    name = PPPP_cCsS_FFFFFF_NN.jpg: person id, camera C, sequence S, frame F of that sequence, box N

The plain layout, for any other data a user has::

    ROOT/{train,query,gallery}/<pid>/<cam>_<anything>.(jpg|png)      <cam> = "3" or "c3"

Images are kept as paths and decoded when read (:meth:`ReidSet.image`), so a corrupt file fails with an
:class:`~trustvis.data.io.ImageReadError` naming it when it is used. A file whose name does not parse is
skipped with a warning and listed in the split's ``skipped``; a split left without images is an error.

Choices:
    - Junk (-1) and distractor (0000) images are kept in the gallery only, with those pids (the retrieval
      metrics leave junk out and count distractors as wrong matches); in the training split and in the
      query they are skipped (they are no identity to learn, and have no true match).
    - Person ids are kept as they are (not relabelled 0..N-1); the task maps them to classifier labels.
    - Only the official layout is read (not the ``pytorch/`` folders of prepare scripts), and nothing is
      ever downloaded. **DukeMTMC-reID is deliberately not supported**: Duke withdrew it for privacy/IRB
      reasons (see ``specs/rollback.md`` §4); its names (``0001_c2_f0046182.jpg``) do not parse here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image

from trustvis.data.io import iter_image_files
from trustvis.data.reid.base import ReidSet, ReidSplits

log = logging.getLogger(__name__)

__all__ = [
    "MARKET_FOLDERS",
    "PLAIN_SPLITS",
    "parse_market_name",
    "read_market1501",
    "read_reid_folder",
    "read_reid",
    "tiny_market",
]

#: split -> folder of the Market-1501 layout
MARKET_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
#: the split folders of the plain layout
PLAIN_SPLITS = ("train", "query", "gallery")

MARKET_PATTERN = "PPPP_cCsS_FFFFFF_NN.jpg (e.g. 0002_c1s1_000451_03.jpg; PPPP = -1 for junk)"
MARKET_LAYOUT = "Market-1501 layout ROOT/{bounding_box_train,bounding_box_test,query}/" + MARKET_PATTERN
PLAIN_LAYOUT = "plain layout ROOT/{train,query,gallery}/<pid>/<cam>_*.jpg (<cam> = 3 or c3)"

_MARKET_RE = re.compile(r"^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
_DUKE_RE = re.compile(r"^\d+_c\d+_f\d+\.jpe?g$", re.IGNORECASE)
_CAM_RE = re.compile(r"^c?(\d+)_", re.IGNORECASE)


def parse_market_name(name: str) -> tuple[int, int, int]:
    """``(pid, camid, frame)`` of a Market-1501 file name: ``"0002_c1s1_000451_03.jpg"`` -> ``(2, 1, 451)``.

    Junk images (``-1_c...``) give pid -1, distractors (``0000_c...``) pid 0.

    Raises:
        ValueError: The name does not follow ``PPPP_cCsS_FFFFFF_NN.jpg`` (the message names the file).
    """
    m = _MARKET_RE.match(Path(name).name)
    if m is None:
        raise ValueError(f"{name!r} is not a Market-1501 file name; expected {MARKET_PATTERN}")
    return int(m.group(1)), int(m.group(2)), int(m.group(4))


def _split_folder(root: Path, sub: str, layout: str) -> Path:
    folder = root / sub
    if not folder.is_dir():
        raise FileNotFoundError(f"Missing folder {folder}; expected the {layout}")
    return folder


def _finish(split: str, folder: Path, rows: list[tuple[Path, int, int, str]], skipped: list[tuple[str, str]],
            layout: str) -> ReidSet:  # fmt: skip
    """The ReidSet of one split (rows: path, pid, camid, name), or ValueError when it has no image."""
    if not rows:
        first = f"{skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        what = f"no usable image ({len(skipped)} skipped, first {first})" if skipped else "no image"
        duke = any(_DUKE_RE.match(Path(f).name) for f, _ in skipped)
        hint = " (DukeMTMC-reID names? That set is deliberately not supported: withdrawn for privacy reasons)"
        raise ValueError(
            f"The {split} folder {folder} has {what}; expected the {layout}{hint if duke else ''}"
        )
    return ReidSet([r[0] for r in rows], np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                   [r[3] for r in rows], skipped)  # fmt: skip


def _skip(skipped: list[tuple[str, str]], path: Path, reason: str) -> None:
    log.warning("Skipping %s: %s", path, reason)
    skipped.append((str(path), reason))


def _notes(layout: str, root: Path, sets: dict[str, ReidSet], **extra) -> dict:
    g = sets["gallery"]
    return {
        "layout": layout,
        "root": str(root),
        "counts": {s: {"images": len(r), "ids": len(r.identities)} for s, r in sets.items()},
        "cameras": sorted({int(c) for r in sets.values() for c in r.camids.tolist()}),
        "junk": int((g.pids == -1).sum()),
        "distractors": int((g.pids == 0).sum()),
        "skipped": sum(len(r.skipped) for r in sets.values()),
        **extra,
    }


def read_market1501(root: str | Path) -> ReidSplits:
    """Read a Market-1501 folder (the official layout; see the module docstring) without decoding images.

    Args:
        root: The folder holding ``bounding_box_train/``, ``bounding_box_test/`` and ``query/``.

    Returns:
        :class:`ReidSplits` with image paths; ``train`` from ``bounding_box_train``, ``gallery`` from
        ``bounding_box_test`` (junk -1 and distractors 0 kept), ``query`` from ``query``; ``notes`` holds the
        counts. Unparseable names, and junk/distractors outside the gallery, are skipped with a warning and
        listed in each split's ``skipped``.

    Raises:
        FileNotFoundError: ``root`` or one of the three folders is missing (named, with the expected layout).
        ValueError: A split has no usable image.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Market-1501 root {root} is not a folder; expected the {MARKET_LAYOUT}")
    sets: dict[str, ReidSet] = {}
    for split, sub in MARKET_FOLDERS.items():
        folder = _split_folder(root, sub, MARKET_LAYOUT)
        rows: list[tuple[Path, int, int, str]] = []
        skipped: list[tuple[str, str]] = []
        for path in iter_image_files(folder):
            try:
                pid, cam, _ = parse_market_name(path.name)
            except ValueError as e:
                _skip(skipped, path, str(e))
                continue
            if pid <= 0 and split != "gallery":
                _skip(skipped, path, f"{'junk' if pid < 0 else 'distractor'} image outside the gallery")
                continue
            rows.append((path, pid, cam, path.relative_to(root).as_posix()))
        sets[split] = _finish(split, folder, rows, skipped, MARKET_LAYOUT)
    return ReidSplits(**sets, name=f"market1501:{root.name}", notes=_notes("market1501", root, sets))


def read_reid_folder(root: str | Path) -> ReidSplits:
    """Read the plain layout ``ROOT/{train,query,gallery}/<pid>/<cam>_*.(jpg|png)`` without decoding images.

    Person ids: when every ``<pid>`` folder name (over all three splits) is an integer, those integers (so
    ``-1`` / ``0`` folders in the gallery are junk / distractors, as in Market-1501); otherwise every name is
    mapped to 1, 2, ... in sorted (string) order, the same name giving the same id in every split (the
    mapping is in ``notes["pid_names"]``); ``-1`` and ``0`` folders stay junk and distractors either way.
    Camera id: the integer before the first ``_`` of the file name (``c3_0001.jpg`` or ``3_0001.jpg``).
    Files without a camera prefix or outside a person folder are skipped with a warning and listed in
    ``skipped``; as in :func:`read_market1501`, junk and distractor images are kept in the gallery only.

    Raises:
        FileNotFoundError: ``root`` or a split folder is missing.
        ValueError: A split has no usable image.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Re-ID root {root} is not a folder; expected the {PLAIN_LAYOUT}")
    found: dict[str, list[Path]] = {
        s: iter_image_files(_split_folder(root, s, PLAIN_LAYOUT)) for s in PLAIN_SPLITS
    }
    names = sorted({p.relative_to(root / s).parts[0] for s, ps in found.items() for p in ps
                    if len(p.relative_to(root / s).parts) == 2})  # fmt: skip
    numeric = all(re.fullmatch(r"-?\d+", n) for n in names)
    special = [n for n in names if re.fullmatch(r"-1|0+", n)]  # junk / distractors, whatever the others are
    others = [n for n in names if n not in special]
    pid_of = {n: int(n) for n in names} if numeric else {n: i + 1 for i, n in enumerate(others)}
    pid_of.update({n: int(n) for n in special})
    sets: dict[str, ReidSet] = {}
    for split, paths in found.items():
        rows: list[tuple[Path, int, int, str]] = []
        skipped: list[tuple[str, str]] = []
        for path in paths:
            parts = path.relative_to(root / split).parts
            if len(parts) != 2:
                _skip(skipped, path, f"not directly in a person folder {split}/<pid>/")
                continue
            m = _CAM_RE.match(path.name)
            if m is None:
                _skip(skipped, path, "no camera prefix; expected <cam>_*.jpg with <cam> = 3 or c3")
                continue
            pid = pid_of[parts[0]]
            if pid <= 0 and split != "gallery":
                _skip(skipped, path, f"{'junk' if pid < 0 else 'distractor'} image outside the gallery")
                continue
            rows.append((path, pid, int(m.group(1)), path.relative_to(root).as_posix()))
        sets[split] = _finish(split, root / split, rows, skipped, PLAIN_LAYOUT)
    extra = {} if numeric else {"pid_names": pid_of}
    return ReidSplits(**sets, name=f"reid-folder:{root.name}", notes=_notes("plain", root, sets, **extra))


def read_reid(root: str | Path) -> ReidSplits:
    """Read ``root`` in the layout it holds: Market-1501 (``bounding_box_test/``) or plain (``gallery/``).

    Raises:
        FileNotFoundError: ``root`` is missing or holds neither layout (the message names both).
    """
    root = Path(root)
    if (root / MARKET_FOLDERS["gallery"]).is_dir():
        return read_market1501(root)
    if (root / "gallery").is_dir():
        return read_reid_folder(root)
    what = "is not a folder" if not root.is_dir() else "holds neither re-ID layout"
    raise FileNotFoundError(f"{root} {what}; expected the {MARKET_LAYOUT}, or the {PLAIN_LAYOUT}")


# ---------------------------------------------------------------------------------------------------------
# A tiny generated Market-1501 tree


def _person(pid: int, cam: int, shot: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A (H, W, 3) "person": upper and lower body colours given by ``pid`` (golden-ratio hues), a head, a
    background, a camera-dependent brightness, a small shift per shot and pixel noise."""
    import colorsys

    h, w = size
    hue = (pid * 0.618034) % 1.0
    upper = np.array(colorsys.hsv_to_rgb(hue, 0.8, 0.9)) * 255
    lower = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.6, 0.5 + 0.4 * (pid % 2))) * 255
    img = np.empty((h, w, 3))
    img[:] = rng.uniform(90, 160, 3)  # background
    dy = int(rng.integers(-h // 16, h // 16 + 1))
    x0, x1 = w // 4, w - w // 4
    img[h // 8 + dy : h // 2 + dy, x0:x1] = upper
    img[h // 2 + dy : h - h // 10 + dy, x0 + w // 16 : x1 - w // 16] = lower
    img[max(0, dy) : h // 8 + dy, 3 * w // 8 : 5 * w // 8] = (220, 180, 150)  # head
    img = img * (0.8 + 0.15 * cam) + rng.normal(0, 6, img.shape) + 2 * shot
    return np.clip(img, 0, 255).astype(np.uint8)


def tiny_market(
    root: str | Path,
    n_train_ids: int = 6,
    n_test_ids: int = 4,
    n_cams: int = 2,
    per_cam: int = 2,
    n_junk: int = 2,
    n_distractors: int = 2,
    size: tuple[int, int] = (64, 32),
    seed: int = 0,
) -> Path:
    """Write a tiny Market-1501 tree of generated JPEGs whose colours encode the person id (learnable).

    Train ids are ``1..n_train_ids``, test ids follow. ``bounding_box_train`` holds ``per_cam`` images per
    (train id, camera); ``query`` one image per (test id, camera); ``bounding_box_test`` ``per_cam`` further
    images per (test id, camera), ``n_junk`` junk (-1) and ``n_distractors`` distractor (0000) images. With
    the defaults: 24 train, 8 query and 20 gallery images of 64x32 pixels.

    Returns:
        ``root``.
    """
    if min(n_train_ids, n_test_ids, n_cams, per_cam) < 1 or min(n_junk, n_distractors) < 0:
        raise ValueError("tiny_market needs at least one train id, test id, camera and image per camera")
    root = Path(root)
    rng = np.random.default_rng(seed)
    frame = iter(range(1, 1_000_000))

    def write(sub: str, pid: int, cam: int, shot: int, look: int) -> None:
        folder = root / MARKET_FOLDERS[sub]
        folder.mkdir(parents=True, exist_ok=True)
        img = _person(look, cam, shot, size, rng)
        name = f"{'-1' if pid < 0 else f'{pid:04d}'}_c{cam}s1_{next(frame):06d}_{shot:02d}.jpg"
        Image.fromarray(img).save(folder / name, quality=95)

    test_ids = range(n_train_ids + 1, n_train_ids + n_test_ids + 1)
    for pid in range(1, n_train_ids + 1):
        for cam in range(1, n_cams + 1):
            for shot in range(per_cam):
                write("train", pid, cam, shot, pid)
    for pid in test_ids:
        for cam in range(1, n_cams + 1):
            write("query", pid, cam, 0, pid)
            for shot in range(1, per_cam + 1):
                write("gallery", pid, cam, shot, pid)
    for k in range(n_junk):
        write("gallery", -1, 1 + k % n_cams, 0, 1000 + k)  # junk: a look of its own
    for k in range(n_distractors):
        write("gallery", 0, 1 + k % n_cams, 0, 2000 + k)
    return root
