"""Re-identification data (issue 22): Market-1501 and plain-layout readers, the generated tiny Market tree,
and the PhotoReID set built from the real-photo corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trustvis.data.reid import photoreid
from trustvis.data.reid.market import (
    parse_market_name,
    read_market1501,
    read_reid,
    read_reid_folder,
    tiny_market,
)

# ---- Market-1501 names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("0002_c1s1_000451_03.jpg", (2, 1, 451)),
        ("1501_c6s4_001902_01.jpg", (1501, 6, 1902)),
        ("-1_c3s2_012345_00.jpg", (-1, 3, 12345)),
        ("0000_c5s3_000001_02.jpg", (0, 5, 1)),
        ("some/dir/0007_c2s1_000100_01.JPG", (7, 2, 100)),
    ],
)
def test_parse_market_name(name, expected):
    assert parse_market_name(name) == expected


@pytest.mark.parametrize(
    "name",
    ["0002_c1_000451_03.jpg", "0002c1s1_000451_03.jpg", "x002_c1s1_000451_03.jpg", "0001_c2_f0046182.jpg",
     "0002_c1s1_000451_03.txt", "Thumbs.db", "-2_c1s1_000451_03.jpg"],
)  # fmt: skip
def test_parse_market_name_rejects(name):
    with pytest.raises(ValueError) as e:
        parse_market_name(name)
    assert name in str(e.value) and "PPPP_cCsS_FFFFFF_NN.jpg" in str(e.value)


# ---- read_market1501 on the tiny tree ----------------------------------------------------------------------


def test_read_market1501_tiny(tmp_path):
    root = tiny_market(tmp_path / "market")
    s = read_market1501(root)
    assert (len(s.train), len(s.query), len(s.gallery)) == (24, 8, 20)
    assert s.train.identities == [1, 2, 3, 4, 5, 6]
    assert s.query.identities == s.gallery.identities == [7, 8, 9, 10]
    s.check_disjoint()
    for part in (s.train, s.query, s.gallery):
        assert set(part.camids.tolist()) == {1, 2}
        assert all(isinstance(p, Path) for p in part.images)
        assert not part.skipped
    assert (s.gallery.pids == -1).sum() == 2 and (s.gallery.pids == 0).sum() == 2
    assert (s.train.pids > 0).all() and (s.query.pids > 0).all()
    assert s.notes["junk"] == 2 and s.notes["distractors"] == 2 and s.notes["layout"] == "market1501"
    assert s.notes["counts"]["train"] == {"images": 24, "ids": 6}
    # each (test id, camera) has one query, and the gallery holds the same id from the other camera
    for pid, cam in zip(s.query.pids, s.query.camids):
        assert ((s.gallery.pids == pid) & (s.gallery.camids != cam)).any()
    img = s.train.image(0)
    assert img.dtype == np.uint8 and img.shape == (64, 32, 3)
    # the pid is in the file name and in the colour: the torsos of one id are closer than of two ids
    a, b, c = (s.train.image(i)[14:28, 10:22].astype(float).mean((0, 1)) for i in (0, 1, 4))
    assert s.train.pids[0] == s.train.pids[1] != s.train.pids[4]
    assert np.abs(a - b).sum() < np.abs(a - c).sum()


def test_read_market1501_skips_bad_names_and_junk_outside_gallery(tmp_path):
    root = tiny_market(tmp_path / "market")
    src = next((root / "bounding_box_train").iterdir())
    (root / "bounding_box_train" / "not_market.jpg").write_bytes(src.read_bytes())
    (root / "query" / "-1_c1s1_000999_00.jpg").write_bytes(src.read_bytes())
    s = read_market1501(root)
    assert len(s.train) == 24 and len(s.query) == 8
    assert [Path(f).name for f, _ in s.train.skipped] == ["not_market.jpg"]
    assert [Path(f).name for f, _ in s.query.skipped] == ["-1_c1s1_000999_00.jpg"]
    assert "junk" in s.query.skipped[0][1] and s.notes["skipped"] == 2


# ---- plain layout -----------------------------------------------------------------------------------------


def _plain(root: Path, people: dict[str, dict[str, list[str]]]) -> Path:
    """root/<split>/<pid>/<file> for {split: {pid: [file, ...]}}; 8x4 images, colour by pid."""
    for split, by_pid in people.items():
        for k, (pid, files) in enumerate(sorted(by_pid.items())):
            (root / split / pid).mkdir(parents=True, exist_ok=True)
            for f in files:
                Image.fromarray(np.full((8, 4, 3), 30 * k, np.uint8)).save(root / split / pid / f)
    return root


def test_read_reid_folder_names_map_to_consecutive_ids(tmp_path):
    root = _plain(tmp_path / "plain", {
        "train": {"carol": ["c1_a.jpg", "c2_b.png"], "alice": ["1_x.png", "3_y.png"]},
        "query": {"dave": ["c1_q.png"]},
        "gallery": {"dave": ["c2_g.png", "c1_h.png"], "bob": ["c4_z.png"],
                    "-1": ["c1_j.png"], "0000": ["2_d.png"]},
    })  # fmt: skip
    s = read_reid_folder(root)
    ids = s.notes["pid_names"]
    assert ids == {"alice": 1, "bob": 2, "carol": 3, "dave": 4, "-1": -1, "0000": 0}
    assert s.train.identities == [1, 3] and s.query.identities == [4] and s.gallery.identities == [2, 4]
    assert sorted(s.gallery.pids.tolist()) == [-1, 0, 2, 4, 4]
    assert dict(zip(s.train.names, s.train.camids.tolist())) == {
        "train/alice/1_x.png": 1, "train/alice/3_y.png": 3,
        "train/carol/c1_a.jpg": 1, "train/carol/c2_b.png": 2}  # fmt: skip
    s.check_disjoint()
    assert s.notes["layout"] == "plain"


def test_read_reid_folder_integer_ids_keep_junk_in_gallery(tmp_path):
    root = _plain(tmp_path / "plain", {
        "train": {"12": ["c1_a.png", "c2_b.png"], "0": ["c1_d.png"]},
        "query": {"30": ["c1_q.png"]},
        "gallery": {"30": ["c2_g.png"], "-1": ["c1_j.png"], "0": ["c2_d.png"]},
    })  # fmt: skip
    s = read_reid_folder(root)
    assert s.train.pids.tolist() == [12, 12] and len(s.train.skipped) == 1  # the distractor in train
    assert sorted(s.gallery.pids.tolist()) == [-1, 0, 30]
    assert "pid_names" not in s.notes and s.notes["junk"] == 1


def test_read_reid_dispatches_on_the_layout(tmp_path):
    market = tiny_market(tmp_path / "m", n_train_ids=2, n_test_ids=2, n_junk=0, n_distractors=0)
    assert read_reid(market).notes["layout"] == "market1501"
    plain = _plain(tmp_path / "p", {"train": {"1": ["c1_a.png"]}, "query": {"2": ["c1_a.png"]},
                                    "gallery": {"2": ["c2_a.png"]}})  # fmt: skip
    assert read_reid(plain).notes["layout"] == "plain"
    (tmp_path / "neither" / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as e:
        read_reid(tmp_path / "neither")
    assert "bounding_box_test" in str(e.value) and "{train,query,gallery}/<pid>" in str(e.value)


# ---- PhotoReID ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_photo_reid(tmp_path_factory):
    home_dir = tmp_path_factory.mktemp("photoreid_home")
    return home_dir, photoreid.load_photo_reid("tiny", home_dir=home_dir)


def test_photo_reid_tiny_protocol(tiny_photo_reid):
    _, s = tiny_photo_reid
    cfg = photoreid.SIZES["tiny"]
    s.check_disjoint()
    assert len(s.train.identities) == cfg.n_train_ids and len(s.query.identities) == cfg.n_test_ids
    assert s.query.identities == s.gallery.identities
    assert len(s.train) == cfg.n_train_ids * cfg.images_per_id
    assert len(s.query) + len(s.gallery) == cfg.n_test_ids * cfg.images_per_id
    assert s.train.image(0).shape == (cfg.height, cfg.height // 2, 3) and s.train.image(0).dtype == np.uint8
    for pid in s.query.identities:
        q_cams = s.query.camids[s.query.pids == pid]
        g_cams = s.gallery.camids[s.gallery.pids == pid]
        assert len(q_cams) == len(set(q_cams.tolist())) == cfg.n_cameras  # one query per (id, camera)
        for c in q_cams:
            assert (g_cams != c).any()  # a match from another camera
    # identities come from photos the other side never uses
    man = photoreid.load_manifest(s.notes["root"])
    photos = {
        side: {r["photo"] for r in man["identities"] if r["split"] == side} for side in ("train", "test")
    }
    assert photos["train"] and photos["test"] and not photos["train"] & photos["test"]


def test_photo_reid_cameras_differ_and_identity_is_kept(tiny_photo_reid):
    _, s = tiny_photo_reid
    feats = np.stack([s.train.image(i).astype(float).reshape(-1, 3).mean(0) for i in range(len(s.train))])
    d = np.linalg.norm(feats[:, None] - feats[None], axis=-1)
    same = s.train.pids[:, None] == s.train.pids[None]
    off = ~np.eye(len(feats), dtype=bool)
    assert d[same & off].mean() < d[~same].mean()  # an identity keeps its colours
    by_cam = {c: feats[s.train.camids == c].mean(0) for c in set(s.train.camids.tolist())}
    assert (
        len(by_cam) == 3 and np.ptp(np.stack(list(by_cam.values())), axis=0).max() > 20
    )  # colour casts (~60)


def test_photo_reid_manifest_hashes_and_reuse(tiny_photo_reid, monkeypatch):
    home_dir, s = tiny_photo_reid
    root = Path(s.notes["root"])
    assert photoreid.verify_photo_reid(root, check_hashes=True) == []
    monkeypatch.setattr(photoreid, "_build", lambda *a, **k: pytest.fail("rebuilt a valid build"))
    assert photoreid.build_photo_reid("tiny", home_dir=home_dir, progress=False) == root
    f = root / s.train.names[0]
    data = f.read_bytes()
    try:
        f.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        assert photoreid.verify_photo_reid(root, check_hashes=True) == [f"hash mismatch {s.train.names[0]}"]
    finally:
        f.write_bytes(data)


def test_photo_reid_same_config_gives_identical_arrays(tiny_photo_reid, tmp_path):
    _, s = tiny_photo_reid
    again = photoreid.load_photo_reid("tiny", home_dir=tmp_path)
    for name in ("train", "query", "gallery"):
        a, b = getattr(s, name), getattr(again, name)
        assert a.names == b.names and (a.pids == b.pids).all() and (a.camids == b.camids).all()
        assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))


def test_photo_reid_config_is_checked():
    with pytest.raises(ValueError, match="images_per_id"):
        photoreid.PhotoReidConfig(n_cameras=4, images_per_id=6).validate()
    with pytest.raises(ValueError, match="CAMERAS"):
        photoreid.PhotoReidConfig(n_cameras=9).validate()
    with pytest.raises(ValueError, match="choose from"):
        photoreid.photo_reid_path("huge")
