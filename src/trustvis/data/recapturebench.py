"""RecaptureBench v1: real RGB + depth pairs against the same scenes shown on simulated displays and
re-photographed, with the display types split into seen and unseen ones.

Real pairs come from the real RGB-D frames that install with the package managers
(:mod:`trustvis.data.rgbd`: scikit-image's Middlebury motorcycle, OpenCV's Aloe, ViSP's castel sequence
recorded by an SR300, MRPT's Kinect frame). **That is four real scenes** (33 frames); crops, scales, flips
and the camera simulation turn them into many samples, but every sample shows one of these four scenes.
Spoof pairs are crops of the same scenes shown on a simulated display and photographed again
(:mod:`trustvis.data.display`: sub-pixel grid, gamma, white point, brightness, the camera's resampling at a
random pose — which makes the moiré —, glare, noise, JPEG; the ToF depth of the screen surface with the
sensor's noise and holes, and the bezel edge when it is in view). Reals go through the same camera and ToF
simulation, so only the display differs.

Dataflow::

    real_rgbd_frames()  ──► regions per split (castel: frame blocks; one-frame scenes: disjoint vertical bands)
      │
      ├─ real i:  scene (uniform) ─► frame/region ─► crop with >= min_valid depth
      │           (planar_fraction of them: the most planar of many crops — a wall, a table top)
      │           ─► capture_real ─► <split>/real/<scene>/<id>_rgb.png + <id>_depth.png
      └─ spoof i: display type ─► scene ─► frame/region ─► crop (the content the screen shows)
                  ─► capture_spoof ─► <split>/spoof/<display>/<id>_rgb.png + <id>_depth.png
    manifest.json: version, config, library versions, source frames, every sample (scene, frame, crop box,
                   plane-fit residual, the capture's pose and display parameters), counts, sha256 per file

Layout: the plain RGB-D folder layout users' captures are read in (:func:`trustvis.data.rgbd.read_rgbd_folder`),
one per split: ``home()/recapturebench/v1-<size>/<split>/{real,spoof}/<medium>/<id>_{rgb,depth}.png``; the
depth PNG is 16-bit in units of 0.1 mm (0 = hole, at most 6.5535 m).

Protocols (:func:`protocol_pairs`):
  - ``unseen`` (leave-display-type-out): train and validate on reals + spoofs of :data:`TRAIN_DISPLAYS`; test on
    reals + spoofs of every other display type, reported per display and averaged;
  - ``seen``: train and validate on spoofs of every display type; test on every display type.
  Training and validation spoofs are subsampled evenly over their display types to the number of reals, so
  both protocols train on balanced classes.

Choices:
  - Splits are by source: no pixel of a source frame is in two splits. With four real scenes a split by
    scene would leave one scene for test, so the one-frame scenes are cut into disjoint vertical bands
    (train 0-60 %, val 62-76 %, test 78-100 % of the width; gaps between) and the castel sequence into frame
    blocks (0-16 train, 18-21 val, 23-29 test; one frame left out between blocks). Spoofs show content of
    their own split only.
  - Scenes are drawn uniformly (not by frame count), so the 30 castel frames do not outweigh the others.
  - Nearly planar real crops (``planar_fraction``) keep "the depth is flat" from deciding alone; the depth-only
    baseline of the bench measures how much it still explains.
  - The real scenes were recorded 0.25 m (castel) to several metres (Kinect, Middlebury) from the sensor, the
    screens are photographed from 0.15-0.6 m, and ToF noise grows with the square of the distance: left as it
    is, the relative noise of a depth map would tell the data source. So each real crop's depth is scaled to
    a median drawn from ``real_distance`` (the spoofs' camera distances) before the ToF simulation, as if
    the phone had been that far from the object; the relative shape of the scene is kept, and every method
    reads relative depth anyway.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from trustvis.atomic import atomic_dir, atomic_write_json
from trustvis.data.cache import (
    build_lock,
    hash_tree,
    home,
    library_versions,
    read_manifest,
    reusable_build,
    verify_manifest,
)

log = logging.getLogger(__name__)

VERSION = "v1"
SPLITS = ("train", "val", "test")
PROTOCOLS = ("unseen", "seen")
#: the display types the unseen-display protocol trains on; every other type is unseen
TRAIN_DISPLAYS = ("phone-lcd-stripe", "monitor-bgr-stripe", "phone-oled-diamond", "laptop-matte-lcd")
#: vertical bands (fractions of the width) of a one-frame scene per split
BANDS = {"train": (0.0, 0.60), "val": (0.62, 0.76), "test": (0.78, 1.0)}
#: frame blocks (inclusive index ranges) of a sequence per split
FRAME_BLOCKS = {"train": (0, 16), "val": (18, 21), "test": (23, 29)}
DEPTH_UNIT = 1e-4  # metres per step of the 16-bit depth PNGs


@dataclass
class RecaptureConfig:
    """What one RecaptureBench build holds."""

    image_size: int = 64
    n_real: dict[str, int] = field(default_factory=lambda: {"train": 720, "val": 160, "test": 240})
    n_spoof: dict[str, int] = field(
        default_factory=lambda: {"train": 180, "val": 40, "test": 60}
    )  # per display
    planar_fraction: float = 0.3
    planar_tolerance: float = 0.01  # a planar crop: plane-fit residual std / median depth below this
    crop: tuple[float, float] = (0.2, 0.5)  # crop side as a fraction of the frame's shorter side
    min_valid: float = 0.7  # share of valid depth pixels a real crop needs
    real_distance: tuple[float, float] = (0.15, 0.6)  # real crops' depth rescaled to a median in this range
    seed: int = 0

    def validate(self) -> None:
        for what, d in (("n_real", self.n_real), ("n_spoof", self.n_spoof)):
            if set(d) != set(SPLITS) or any(int(v) < 1 for v in d.values()):
                raise ValueError(f"{what} must give a count >= 1 for each of {list(SPLITS)}, got {d}")
        if not 0 <= self.planar_fraction <= 1:
            raise ValueError(f"planar_fraction must be in [0, 1], got {self.planar_fraction}")
        if not 0 < self.crop[0] <= self.crop[1] <= 1:
            raise ValueError(f"crop must satisfy 0 < lo <= hi <= 1, got {self.crop}")


SIZES: dict[str, RecaptureConfig] = {
    "tiny": RecaptureConfig(
        image_size=32, n_real={"train": 24, "val": 12, "test": 12}, n_spoof={"train": 6, "val": 3, "test": 3}
    ),  # fmt: skip
    "quick": RecaptureConfig(),
    "full": RecaptureConfig(
        image_size=128,
        n_real={"train": 2880, "val": 640, "test": 960},
        n_spoof={"train": 720, "val": 160, "test": 240},
    ),  # fmt: skip
}


def recapturebench_path(size: str = "quick", home_dir: str | Path | None = None) -> Path:
    """Folder of a RecaptureBench build (not necessarily built)."""
    if size not in SIZES:
        raise ValueError(f"Unknown RecaptureBench size {size!r}; choose from {list(SIZES)}")
    root = Path(home_dir).expanduser() if home_dir is not None else home()
    return root / "recapturebench" / f"{VERSION}-{size}"


# ----------------------------------------------------------------------------------------------------
# sampling


@dataclass
class Region:
    """Where a split may take crops: frame ``frame`` (index into the frame list), columns [x0, x1)."""

    frame: int
    x0: int
    x1: int


def split_regions(frames: list[Any]) -> dict[str, dict[str, list[Region]]]:
    """``{split: {scene: [Region, ...]}}``: a sequence (several frames of one scene) by frame blocks, a
    one-frame scene by vertical bands. No pixel of a frame is in two splits."""
    by_scene: dict[str, list[int]] = {}
    for i, f in enumerate(frames):
        by_scene.setdefault(f.scene, []).append(i)
    out: dict[str, dict[str, list[Region]]] = {s: {} for s in SPLITS}
    for scene, idx in by_scene.items():
        if len(idx) > 1:
            for split, (a, b) in FRAME_BLOCKS.items():
                regs = [Region(i, 0, frames[i].rgb.shape[1]) for k, i in enumerate(idx) if a <= k <= b]
                if regs:
                    out[split][scene] = regs
        else:
            w = frames[idx[0]].rgb.shape[1]
            for split, (a, b) in BANDS.items():
                out[split][scene] = [Region(idx[0], int(round(a * w)), int(round(b * w)))]
    return out


def plane_residual(depth: np.ndarray) -> float:
    """Std of the residual of a least-squares plane z = a x + b y + c through the valid pixels of ``depth``,
    divided by their median (inf with fewer than 10 valid pixels)."""
    ys, xs = np.nonzero(depth > 0)
    if len(xs) < 10:
        return float("inf")
    if len(xs) > 4000:  # a fixed subsample: the fit is for ranking crops
        keep = np.linspace(0, len(xs) - 1, 4000).astype(int)
        ys, xs = ys[keep], xs[keep]
    z = depth[ys, xs].astype(np.float64)
    a = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    return float(np.std(z - a @ coef) / np.median(z))


def _crop_box(
    frame: Any, region: Region, cfg: RecaptureConfig, rng: np.random.Generator
) -> tuple[int, int, int]:
    """(y, x, side) of a random square crop inside ``region``."""
    h = frame.rgb.shape[0]
    width = region.x1 - region.x0
    side = int(rng.uniform(*cfg.crop) * min(h, frame.rgb.shape[1]))
    side = max(8, min(side, h, width))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(region.x0, region.x1 - side + 1))
    return y, x, side


def _real_crop(
    frame: Any, region: Region, cfg: RecaptureConfig, rng: np.random.Generator, planar: bool
) -> tuple[tuple[int, int, int], float]:
    """A crop box for a real sample and its plane residual: the first of up to 40 boxes with enough valid
    depth, or for a planar sample the most planar of 40 such boxes."""
    best: tuple[float, tuple[int, int, int]] | None = None
    fallback: tuple[float, tuple[int, int, int]] | None = None
    for _ in range(40):
        box = _crop_box(frame, region, cfg, rng)
        y, x, s = box
        d = frame.depth[y : y + s, x : x + s]
        valid = float((d > 0).mean())
        if fallback is None or valid > fallback[0]:
            fallback = (valid, box)
        if valid < cfg.min_valid:
            continue
        if not planar:
            return box, plane_residual(d)
        r = plane_residual(d)
        if best is None or r < best[0]:
            best = (r, box)
    if best is not None:
        return best[1], best[0]
    box = fallback[1]
    y, x, s = box
    return box, plane_residual(frame.depth[y : y + s, x : x + s])


def save_depth_png(path: Path, depth: np.ndarray) -> None:
    """Write ``depth`` (metres, 0 = hole) as a 16-bit PNG in units of :data:`DEPTH_UNIT` (0.1 mm)."""
    import io

    from PIL import Image

    from trustvis.atomic import atomic_write_bytes

    q = np.clip(np.round(np.nan_to_num(depth, nan=0.0) / DEPTH_UNIT), 0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(q).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


# ----------------------------------------------------------------------------------------------------
# build


def _config_json(cfg: RecaptureConfig) -> dict:
    return _jsonable(dataclasses.asdict(cfg))


def load_manifest(root: str | Path) -> dict:
    """``manifest.json`` of a RecaptureBench build folder."""
    return read_manifest(root, "RecaptureBench")


def verify_recapturebench(root: str | Path, check_hashes: bool = False) -> list[str]:
    """Problems of a build folder against its manifest, one line each (empty when complete)."""
    return verify_manifest(root, VERSION, "RecaptureBench", check_hashes)


def _frames_json(frames: list[Any]) -> list[dict[str, Any]]:
    return [{"name": f.name, "scene": f.scene, "sensor": f.sensor, "source": f.source, "size": list(f.rgb.shape[:2])}
            for f in frames]  # fmt: skip


def build_recapturebench(
    size: str = "quick",
    force: bool = False,
    progress: bool = True,
    home_dir: str | Path | None = None,
    config: RecaptureConfig | None = None,
) -> Path:
    """Build RecaptureBench (or return the existing build of the same version, config and sources).

    Raises:
        ValueError: unknown size or invalid config.
        FileNotFoundError: no real RGB-D source is installed (the message says how to install one).
    """
    from trustvis.data.rgbd import real_rgbd_frames

    target = recapturebench_path(size, home_dir)
    cfg = dataclasses.replace(SIZES[size] if config is None else config)
    cfg.validate()
    frames = real_rgbd_frames()
    expect = {"config": _config_json(cfg), "frames": _frames_json(frames)}  # the installed sources too
    if not force and reusable_build(target, VERSION, "RecaptureBench", expect):
        return target
    with build_lock(target):
        if not force and reusable_build(target, VERSION, "RecaptureBench", expect):
            return target
        with atomic_dir(target) as work:
            _build(work, size, cfg, frames, progress)
    return target


def _build(work: Path, size: str, cfg: RecaptureConfig, frames: list[Any], progress: bool) -> None:
    from tqdm.auto import tqdm

    from trustvis.data import display
    from trustvis.data.io import save_png

    missing = [d for d in TRAIN_DISPLAYS if d not in display.DISPLAY_TYPES]
    if missing:
        raise ValueError(
            f"TRAIN_DISPLAYS names unknown display types {missing}; choose from {list(display.DISPLAY_TYPES)}"
        )
    t0 = time.perf_counter()
    cam = display.CameraConfig(size=cfg.image_size)
    regions = split_regions(frames)
    displays = list(display.DISPLAY_TYPES)
    total = sum(cfg.n_real[s] + cfg.n_spoof[s] * len(displays) for s in SPLITS)
    log.info("Building RecaptureBench %s (%d pairs of %dx%d from %d real frames of %d scenes, %d display types) at %s",
             size, total, cfg.image_size, cfg.image_size, len(frames), len({f.scene for f in frames}), len(displays),
             work.parent / work.name.split(".tmp-")[0].lstrip("."))  # fmt: skip
    samples: list[dict[str, Any]] = []
    with tqdm(total=total, desc="RecaptureBench", disable=not progress, leave=False) as bar:
        for si, split in enumerate(SPLITS):
            scenes = sorted(regions[split])
            rng = np.random.default_rng([cfg.seed, si])
            n_planar = int(round(cfg.planar_fraction * cfg.n_real[split]))
            for i in range(cfg.n_real[split]):
                scene = scenes[int(rng.integers(len(scenes)))]
                reg = regions[split][scene][int(rng.integers(len(regions[split][scene])))]
                frame = frames[reg.frame]
                planar = i < n_planar
                (y, x, s), resid = _real_crop(frame, reg, cfg, rng, planar)
                rgb, dep = frame.rgb[y : y + s, x : x + s], frame.depth[y : y + s, x : x + s]
                if rng.random() < 0.5:  # flips multiply the few scenes; the pair flips together
                    rgb, dep = rgb[:, ::-1], dep[:, ::-1]
                valid = dep > 0
                if valid.any():  # as if the phone were as far from the object as from a screen
                    dep = dep * np.float32(rng.uniform(*cfg.real_distance) / np.median(dep[valid]))
                cap = display.capture_real(np.ascontiguousarray(rgb), np.ascontiguousarray(dep), rng, cam)
                sid = f"{split}-r{i:05d}"
                rel = f"{split}/real/{scene}/{sid}"
                save_png(work / f"{rel}_rgb.png", cap.rgb)
                save_depth_png(work / f"{rel}_depth.png", cap.depth)
                samples.append({"id": sid, "split": split, "label": 0, "medium": scene, "scene": scene,
                                "frame": frame.name, "box": [y, x, s], "planar": planar,
                                "plane_residual": resid, "capture": cap.meta})  # fmt: skip
                bar.update()
            for di, name in enumerate(displays):
                drng = np.random.default_rng([cfg.seed, si, 1000 + di])
                for i in range(cfg.n_spoof[split]):
                    scene = scenes[int(drng.integers(len(scenes)))]
                    reg = regions[split][scene][int(drng.integers(len(regions[split][scene])))]
                    frame = frames[reg.frame]
                    y, x, s = _crop_box(frame, reg, cfg, drng)
                    content = frame.rgb[y : y + s, x : x + s]
                    if drng.random() < 0.5:
                        content = content[:, ::-1]
                    cap = display.capture_spoof(
                        np.ascontiguousarray(content), display.DISPLAY_TYPES[name], drng, cam
                    )
                    sid = f"{split}-s{di:02d}{i:05d}"
                    rel = f"{split}/spoof/{name}/{sid}"
                    save_png(work / f"{rel}_rgb.png", cap.rgb)
                    save_depth_png(work / f"{rel}_depth.png", cap.depth)
                    samples.append({"id": sid, "split": split, "label": 1, "medium": name, "scene": scene,
                                    "frame": frame.name, "box": [y, x, s], "capture": cap.meta})  # fmt: skip
                    bar.update()
    counts: dict[str, dict[str, int]] = {}
    for smp in samples:
        c = counts.setdefault(smp["split"], {})
        key = "real" if smp["label"] == 0 else smp["medium"]
        c[key] = c.get(key, 0) + 1
    manifest = {
        "version": VERSION,
        "size": size,
        "config": _config_json(cfg),
        "train_displays": list(TRAIN_DISPLAYS),
        "displays": {n: _jsonable(dataclasses.asdict(d)) for n, d in display.DISPLAY_TYPES.items()},
        "camera": _jsonable(dataclasses.asdict(cam)),
        "frames": [
            {
                "name": f.name,
                "scene": f.scene,
                "sensor": f.sensor,
                "source": f.source,
                "size": list(f.rgb.shape[:2]),
            }
            for f in frames
        ],  # fmt: skip
        "regions": {
            s: {sc: [dataclasses.asdict(r) for r in regs] for sc, regs in by.items()}
            for s, by in regions.items()
        },  # fmt: skip
        "versions": library_versions(),
        "counts": counts,
        "build_seconds": round(time.perf_counter() - t0, 1),
        "samples": _jsonable(samples),
        "files": hash_tree(work, progress),
    }
    atomic_write_json(work / "manifest.json", manifest)
    log.info("RecaptureBench %s built in %.0f s", size, time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------------
# protocols


@lru_cache(maxsize=8)
def _split_pairs(root: str, split: str) -> Any:
    from trustvis.data.pairs import load_pair_folder

    return load_pair_folder(Path(root) / split)


def protocol_displays(
    protocol: str, split: str, displays: list[str], train_displays: list[str] | None = None
) -> list[str]:
    """The display types whose spoofs a split of ``protocol`` holds."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")
    seen = list(train_displays or TRAIN_DISPLAYS)
    unknown = [d for d in seen if d not in displays]
    if unknown:
        raise ValueError(f"unknown training display(s) {unknown}; choose from {displays}")
    if protocol == "seen":
        return list(displays)
    return seen if split in ("train", "val") else [d for d in displays if d not in seen]


def protocol_pairs(root: str | Path, split: str, protocol: str = "unseen",
                   train_displays: list[str] | None = None, balance: bool | None = None):  # fmt: skip
    """The pairs of ``split`` under ``protocol``: every real of the split and the spoofs of the protocol's
    display types for that split. ``balance`` (default: on for train and val) subsamples the spoofs evenly
    over their display types to the number of reals."""
    from trustvis.data.pairs import PairSet

    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {list(SPLITS)}")
    pairs: PairSet = _split_pairs(str(Path(root)), split)
    displays = sorted({m for m, lab in zip(pairs.media, pairs.labels) if lab == 1})
    keep_d = set(protocol_displays(protocol, split, displays, train_displays))
    reals = [i for i, lab in enumerate(pairs.labels) if lab == 0]
    by_d: dict[str, list[int]] = {}
    for i, (m, lab) in enumerate(zip(pairs.media, pairs.labels)):
        if lab == 1 and m in keep_d:
            by_d.setdefault(m, []).append(i)
    if balance is None:
        balance = split in ("train", "val")
    spoofs: list[int] = []
    if balance and by_d:
        per = max(1, len(reals) // len(by_d))
        for m in sorted(by_d):
            spoofs += by_d[m][:per]
    else:
        spoofs = [i for m in sorted(by_d) for i in by_d[m]]
    return pairs.subset(reals + spoofs)
