"""The vtest.avi re-ID set: the IoU tracker, the identity / time-window split, the HOG detector on a short
real clip, and the cached build (on a short clip in a temporary home; the full 4-minute build never runs)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trustvis.data.reid import vtest
from trustvis.data.reid.vtest import VtestConfig


def _needs_video_and_hog() -> None:
    if not vtest.video_path().is_file():
        pytest.skip(f"vtest.avi missing: {vtest.APT_HINT}")
    problem = vtest.opencv_status()
    if problem:
        pytest.skip(problem)


def _box(x: float, y: float = 100.0, w: float = 64.0, h: float = 128.0) -> list[float]:
    return [x, y, x + w, y + h]


# ----------------------------------------------------------------------------------------------------
# tracker


def test_two_boxes_moving_apart_give_two_tracks():
    frames = [np.array([_box(300 - 10 * t), _box(340 + 10 * t)]) for t in range(10)]
    tracks = vtest.track_boxes(frames, min_iou=0.3, max_gap=2)
    assert len(tracks) == 2
    assert all(tr.frames == list(range(10)) for tr in tracks)
    left, right = sorted(tracks, key=lambda tr: tr.boxes[0][0])
    assert [b[0] for b in left.boxes] == [300 - 10 * t for t in range(10)]  # each stays with its own box
    assert [b[0] for b in right.boxes] == [340 + 10 * t for t in range(10)]


def test_gap_up_to_max_gap_is_bridged_longer_splits():
    def frames_with_gap(gap: int) -> list[np.ndarray]:
        present = [np.array([_box(200 + t)]) for t in range(5)]
        return present + [np.zeros((0, 4))] * gap + [np.array([_box(205 + gap + t)]) for t in range(5)]

    bridged = vtest.track_boxes(frames_with_gap(3), min_iou=0.3, max_gap=3)
    assert len(bridged) == 1 and bridged[0].frames == [0, 1, 2, 3, 4, 8, 9, 10, 11, 12]
    split = vtest.track_boxes(frames_with_gap(4), min_iou=0.3, max_gap=3)
    assert [tr.frames for tr in split] == [[0, 1, 2, 3, 4], [9, 10, 11, 12, 13]]


def test_matching_is_one_to_one_and_needs_min_iou():
    # one track, then two boxes both overlapping it: one continues it, the other starts a track
    frames = [np.array([_box(200)]), np.array([_box(195), _box(210)])]
    tracks = vtest.track_boxes(frames, min_iou=0.3, max_gap=0)
    assert len(tracks) == 2 and tracks[0].frames == [0, 1] and tracks[1].frames == [1]
    # Hungarian, not greedy: the best total IoU, each box used once
    frames = [np.array([_box(200), _box(260)]), np.array([_box(230), _box(290)])]
    tracks = vtest.track_boxes(frames, min_iou=0.3, max_gap=0)
    assert [tr.det for tr in tracks] == [[0, 0], [1, 1]]
    # below min_iou: no match
    frames = [np.array([_box(200)]), np.array([_box(250)])]
    assert len(vtest.track_boxes(frames, min_iou=0.3, max_gap=0)) == 2


def test_filter_boxes_score_height_nms():
    cfg = VtestConfig(min_score=0.3, max_height=200, nms_iou=0.4)
    boxes = np.array([_box(100), _box(104), _box(400), _box(500, h=300), _box(600)])
    scores = np.array([1.0, 0.8, 0.2, 2.0, 0.5])
    # 1 is suppressed by 0 (IoU ~0.88), 2 scores too low, 3 is too tall
    assert vtest.filter_boxes(boxes, scores, cfg).tolist() == [0, 4]
    assert vtest.filter_boxes(np.zeros((0, 4)), np.zeros(0), cfg).tolist() == []


# ----------------------------------------------------------------------------------------------------
# split


def test_split_identities_disjoint_windows_are_cameras():
    cfg = VtestConfig(test_fraction=0.5, n_windows=3, n_query=1, seed=0)
    rng = np.random.default_rng(0)
    lengths = [int(n) for n in rng.integers(20, 60, size=11)]
    crops = [(10 + k, list(range(5 * k, 5 * k + n)), [f"img{k}_{i}" for i in range(n)])
             for k, n in enumerate(lengths)]  # fmt: skip
    splits, records = vtest.make_splits(crops, cfg)
    splits.check_disjoint()
    train, test = set(splits.train.identities), set(splits.query.identities)
    assert not train & test and len(train | test) == 11 and len(test) == round(0.5 * 11)
    assert set(splits.gallery.identities) == test
    assert len(splits.train) + len(splits.query) + len(splits.gallery) == sum(lengths)
    assert len(splits.query) == len(test) * cfg.n_windows  # one query per (identity, window)
    for q in range(len(splits.query)):
        pid, cam = splits.query.pids[q], splits.query.camids[q]
        other = (splits.gallery.pids == pid) & (splits.gallery.camids != cam)
        assert other.any(), "every query has a gallery image of its identity in another window"
    for s in (splits.train, splits.query, splits.gallery):
        assert set(s.camids.tolist()) <= {0, 1, 2}
    # camids are window indices: contiguous chunks of the track in frame order
    rec = next(r for r in records if r["split"] == "test")
    g = splits.gallery.pids == rec["pid"]
    q = splits.query.pids == rec["pid"]
    names = np.array(splits.gallery.names + splits.query.names)
    cams = np.concatenate([splits.gallery.camids[g], splits.query.camids[q]])
    order = np.argsort(names[np.concatenate([g, q])])
    assert np.all(np.diff(cams[order]) >= 0)
    assert rec["windows"] == np.bincount(cams).tolist()
    # deterministic in the seed, different for another
    again, _ = vtest.make_splits(crops, cfg)
    assert again.query.names == splits.query.names
    other, _ = vtest.make_splits(crops, dataclasses.replace(cfg, seed=1))
    assert set(other.query.identities) != test


def test_time_windows_and_query_mask():
    w = vtest.time_windows(20, 3)
    assert w.tolist() == [0] * 7 + [1] * 7 + [2] * 6
    q = vtest.query_mask(w, 1)
    assert q.sum() == 3 and np.flatnonzero(q).tolist() == [3, 10, 16]
    assert vtest.query_mask(vtest.time_windows(4, 2), 5).sum() == 2  # a gallery crop stays in each window


def test_config_validation():
    with pytest.raises(ValueError, match="min_track_len"):
        VtestConfig(min_track_len=4, n_windows=3, n_query=1).validate()
    with pytest.raises(ValueError, match="test_fraction"):
        VtestConfig(test_fraction=1.0).validate()


# ----------------------------------------------------------------------------------------------------
# real data


def test_hog_detector_finds_pedestrians_on_a_real_clip():
    _needs_video_and_hog()
    cfg = VtestConfig()
    detect = vtest.people_detector(cfg)
    frames = list(vtest.iter_frames(vtest.video_path(), 15))[::3]  # 5 frames of the first 1.5 s
    assert len(frames) == 5 and frames[0].shape == (576, 768, 3)
    kept = []
    for f in frames:
        boxes, scores = detect(f)
        kept.append(boxes[vtest.filter_boxes(boxes, scores, cfg)])
    n = [len(b) for b in kept]
    assert np.mean(n) >= 1.0, n
    allb = np.concatenate(kept)
    h, w = allb[:, 3] - allb[:, 1], allb[:, 2] - allb[:, 0]
    assert np.all((h / w > 1.7) & (h / w < 2.3))  # pedestrian aspect
    assert np.all((h >= 120) & (h <= cfg.max_height))


def test_status_messages(monkeypatch, tmp_path):
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path / "nothing"))
    assert vtest.APT_HINT in vtest.vtest_status()
    import cv2

    monkeypatch.delattr(cv2, "HOGDescriptor", raising=False)
    assert vtest.PIP_HINT in vtest.opencv_status()
    with pytest.raises(RuntimeError, match="opencv-python"):
        vtest.people_detector(VtestConfig())


def test_build_on_a_short_clip_reuses_and_verifies(tmp_path, monkeypatch):
    _needs_video_and_hog()
    cfg = VtestConfig(max_frames=12, win_stride=(8, 8), min_track_len=4, n_windows=2, test_fraction=0.5)
    root = vtest.build_vtest_reid(progress=False, home_dir=tmp_path, config=cfg)
    assert root == tmp_path / "vtest_reid" / vtest.VERSION
    assert vtest.verify_vtest_reid(root, check_hashes=True) == []
    man = vtest.load_manifest(root)
    assert {"detections.json"} <= set(man["files"]) and any(f.startswith("crops/") for f in man["files"])
    assert man["counts"]["frames"] == 12 and man["opencv"] and man["caveats"]
    assert man["video"]["sha256"] == vtest.sha256_file(vtest.video_path())

    # a second call reuses the build: the detector is not run again
    def no_detector(*a, **k):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(vtest, "people_detector", no_detector)
    mtime = (root / "manifest.json").stat().st_mtime_ns
    assert vtest.build_vtest_reid(progress=False, home_dir=tmp_path, config=cfg) == root
    assert (root / "manifest.json").stat().st_mtime_ns == mtime
    # another tracker setting rebuilds from the same raw detections (still no detector run)
    cfg2 = dataclasses.replace(cfg, max_gap=2)
    vtest.build_vtest_reid(progress=False, home_dir=tmp_path, config=cfg2)
    assert vtest.load_manifest(root)["config"]["max_gap"] == 2

    splits = vtest.load_vtest_reid(home_dir=tmp_path, config=cfg2, progress=False)
    assert splits.notes["counts"]["crops"] == len(splits.train) + len(splits.query) + len(splits.gallery) > 0
    assert (
        len(splits.train) and len(splits.query) and len(splits.gallery)
    )  # 12 frames: 1 train, 1 test identity
    assert splits.train.image(0).shape == (128, 64, 3) and splits.train.image(0).dtype == np.uint8
    splits.check_disjoint()
    # the build stands alone: without opencv-doc it still loads
    monkeypatch.setenv("TRUSTVIS_APT_ROOT", str(tmp_path / "no-apt"))
    assert len(vtest.load_vtest_reid(home_dir=tmp_path, config=cfg2, progress=False).query) == len(
        splits.query
    )
    with pytest.raises(FileNotFoundError, match="opencv-doc"):
        vtest.build_vtest_reid(force=True, progress=False, home_dir=tmp_path, config=cfg2)
    monkeypatch.delenv("TRUSTVIS_APT_ROOT")

    # a corrupted file is caught by the hash check, and a missing one triggers a rebuild
    crop = next(root.glob("crops/*/*.png"))
    crop.write_bytes(b"x")
    assert any("hash mismatch" in p for p in vtest.verify_vtest_reid(root, check_hashes=True))
    crop.unlink()
    vtest.build_vtest_reid(progress=False, home_dir=tmp_path, config=cfg2)
    assert vtest.verify_vtest_reid(root, check_hashes=True) == []
