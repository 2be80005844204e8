"""The real-photo corpus: every installed photo source, split by photo, cut into random patches.

::

    sources.SOURCES --list_photos--> [Photo] --split_photos--> {train, val, test}
                                                                   |
                                          photo_patches(split) <---+  load, downscale, crop

Splits are by *source photo*, never by patch, so no scene appears in two splits. A photo's split is
fixed by a hash of its id and the split seed (not by its position in the list), so installing another
package adds photos to every split without moving the existing ones -- except for the small fix-up that
keeps ``val`` and ``test`` non-empty on tiny corpora (pip sources only: 10 photos).
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from trustvis.data.cache import sha256_file
from trustvis.data.io import ImageReadError, load_image
from trustvis.data.sources import SOURCES, Source, get_source

log = logging.getLogger(__name__)

__all__ = ["Photo", "SPLITS", "list_photos", "split_photos", "photo_patches", "NoPhotosError"]

SPLITS = ("train", "val", "test")


class NoPhotosError(RuntimeError):
    """No usable photos for a split (install more sources; see ``trustvis data status``)."""


@dataclass(frozen=True)
class Photo:
    """One real photograph.

    Attributes:
        source: Name of the :class:`~trustvis.data.sources.Source` it comes from.
        name: Name within that source.
        path: Image file.
    """

    source: str
    name: str
    path: Path

    @property
    def id(self) -> str:
        """Globally unique id ``"<source>/<name>"``."""
        return f"{self.source}/{self.name}"


def list_photos(sources: Iterable[str | Source] | None = None) -> list[Photo]:
    """All real photos of the installed photo sources, sorted by id.

    Files with identical content found in two places are counted once (the first id in sort order
    is kept).

    Args:
        sources: Source names or objects to use; default all photo sources in
            :data:`~trustvis.data.sources.SOURCES`.

    Raises:
        KeyError: An unknown source name (the message lists the valid ones).
    """
    if sources is None:
        chosen = [s for s in SOURCES if s.purpose == "photos"]
    else:
        chosen = [get_source(s) if isinstance(s, str) else s for s in sources]
    photos = sorted(
        (Photo(s.name, name, path) for s in chosen for name, path in s.named_files()), key=lambda p: p.id
    )
    return _dedupe(photos)


def _dedupe(photos: list[Photo]) -> list[Photo]:
    """Drop byte-identical files (hashing only files whose sizes collide)."""
    by_size: dict[int, list[Photo]] = {}
    for p in photos:
        try:
            by_size.setdefault(p.path.stat().st_size, []).append(p)
        except OSError:
            log.warning("Cannot stat %s; skipping it", p.path)
    drop: set[str] = set()
    for group in by_size.values():
        if len(group) < 2:
            continue
        seen: dict[str, str] = {}
        for p in group:
            digest = sha256_file(p.path)
            if digest in seen:
                log.debug("Photo %s duplicates %s; skipping it", p.id, seen[digest])
                drop.add(p.id)
            else:
                seen[digest] = p.id
    kept = {p.id for group in by_size.values() for p in group} - drop
    return [p for p in photos if p.id in kept]


def _unit_hash(seed: int, photo_id: str) -> float:
    """Uniform number in [0, 1) from ``sha256(f"{seed}:{id}")``."""
    digest = hashlib.sha256(f"{seed}:{photo_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_photos(
    photos: Sequence[Photo], seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
) -> dict[str, list[Photo]]:
    """Split photos into ``train``, ``val`` and ``test``, deterministically from their ids.

    Each photo gets ``u = sha256(f"{seed}:{id}")`` mapped to [0, 1) and goes to train if
    ``u < f_train``, to val if ``u < f_train + f_val``, else to test; a photo's split therefore does
    not depend on which other photos exist. With 3 or more photos no split is left empty: an empty
    split takes the photo whose ``u`` lies closest to its interval from the largest split.

    Args:
        photos: The corpus (duplicates by id are ignored).
        seed: Split seed; keep it fixed to keep test photos unseen.
        fractions: Target train/val/test fractions (non-negative, summing to 1).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted by id.

    Raises:
        ValueError: Invalid fractions.
    """
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(
            f"fractions must be three non-negative numbers (train, val, test) summing to 1, got {fractions}"
        )
    bounds = [(0.0, fr[0]), (fr[0], fr[0] + fr[1]), (fr[0] + fr[1], 1.0)]
    unique = {p.id: p for p in photos}
    u = {pid: _unit_hash(seed, pid) for pid in unique}
    assign: dict[str, int] = {}
    for pid, x in u.items():
        assign[pid] = 0 if x < bounds[0][1] else (1 if x < bounds[1][1] else 2)
    if len(unique) >= 3:
        for k in (2, 1, 0):  # test, then val, then train
            members = [pid for pid, s in assign.items() if s == k]
            if members:
                continue
            counts = [sum(1 for s in assign.values() if s == j) for j in range(3)]
            donor = max((j for j in range(3) if j != k), key=lambda j: (counts[j], -j))
            lo, hi = bounds[k]
            candidates = sorted((pid for pid, s in assign.items() if s == donor))
            best = min(candidates, key=lambda pid: (max(lo - u[pid], u[pid] - hi, 0.0), pid))
            assign[best] = k
    out: dict[str, list[Photo]] = {name: [] for name in SPLITS}
    for pid in sorted(unique):
        out[SPLITS[assign[pid]]].append(unique[pid])
    return out


def _prepare(photo: Photo, size: int, max_side: int) -> np.ndarray:
    """Load a photo, shrink its longer side to ``max_side``, grow it if shorter than ``size``."""
    img = load_image(photo.path, draft_side=max(max_side, size))
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    scale = max(scale, size / min(h, w))  # never smaller than one patch
    if abs(scale - 1.0) < 1e-9:
        return img
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR
    return np.array(Image.fromarray(img).resize(new, method, reducing_gap=3.0 if scale < 1 else None))


def photo_patches(
    split: str,
    size: int,
    n: int,
    seed: int = 0,
    max_side: int = 768,
    photos: Sequence[Photo] | None = None,
    split_seed: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Random square patches from the real photos of one split.

    Each photo is read with :func:`~trustvis.data.io.load_image` and downscaled (Lanczos) so that its
    longer side is at most ``max_side`` -- the big wallpapers are JPEG-compressed, and downscaling hides
    the 8x8 blocking and gives each patch more scene content. A photo whose shorter side would fall
    below ``size`` is kept at (or bilinearly enlarged to) ``size``. Patches are spread evenly over the
    photos (round-robin over a seeded shuffle) at uniformly random positions. Photos that fail to load
    are skipped with a warning. Decoded photos are cached only for the duration of the call.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: Patch side in pixels.
        n: Number of patches.
        seed: Seed for the photo order and patch positions (not for the split).
        max_side: Longer side of each photo after downscaling.
        photos: The corpus to split; default :func:`list_photos` (every installed source).
        split_seed: Seed of :func:`split_photos`; keep the default so test photos stay unseen.

    Returns:
        ``(patches, ids)``: ``uint8 (n, size, size, 3)`` and the id of the photo each patch came from.

    Raises:
        ValueError: Unknown split or invalid size/n/max_side.
        NoPhotosError: The split has no (loadable) photos.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {list(SPLITS)}")
    if size < 1 or n < 0 or max_side < 1:
        raise ValueError(
            f"size and max_side must be >= 1 and n >= 0, got size={size}, n={n}, max_side={max_side}"
        )
    corpus = list_photos() if photos is None else list(photos)
    chosen = split_photos(corpus, seed=split_seed)[split]
    if not chosen:
        raise NoPhotosError(
            f"No photos in split {split!r} ({len(corpus)} photos in the corpus). Run `trustvis data status` "
            "to see which photo sources are installed, and install more (e.g. `sudo apt-get install "
            "opencv-doc mate-backgrounds plasma-workspace-wallpapers libjxl-testdata`)."
        )
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    ids: list[str] = []
    if n == 0:
        return out, ids
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    order = [chosen[i] for i in rng.permutation(len(chosen))]
    cache: dict[str, np.ndarray] = {}
    failed: set[str] = set()
    i = 0
    k = 0
    while i < n:
        live = [p for p in order if p.id not in failed]
        if not live:
            raise NoPhotosError(
                f"None of the {len(order)} photos in split {split!r} could be loaded; see the warnings above "
                "and run `trustvis data status`."
            )
        photo = live[k % len(live)]
        k += 1
        if photo.id not in cache:
            try:
                cache[photo.id] = _prepare(photo, size, max_side)
            except ImageReadError as e:
                log.warning("Skipping photo %s: %s", photo.id, e)
                failed.add(photo.id)
                continue
        img = cache[photo.id]
        h, w = img.shape[:2]
        y = int(rng.integers(0, h - size + 1))
        x = int(rng.integers(0, w - size + 1))
        out[i] = img[y : y + size, x : x + size]
        ids.append(photo.id)
        i += 1
    return out, ids
