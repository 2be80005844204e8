"""Bad-input corpus, re-identification readers (issue 22): every bad file or folder ends in a correct result
or a one-line message naming the file.

Market-1501 names that do not parse (skipped and listed), a split whose names all fail (DukeMTMC-reID names
say that set is not supported), a corrupt JPEG (kept as a path: the error comes when it is read), an empty
split folder, a missing root or split folder, a plain-layout file without a camera prefix or outside a person
folder, and a folder holding neither layout.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from trustvis.data.io import ImageReadError
from trustvis.data.reid.market import read_market1501, read_reid, read_reid_folder, tiny_market


def _one_line(msg: str, *needles: str) -> str:
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, f"{n!r} not named in: {msg}"
    return msg


@pytest.fixture
def market(tmp_path) -> Path:
    return tiny_market(tmp_path / "market", n_train_ids=2, n_test_ids=2)


def _copy_image(market: Path, dest: Path) -> Path:
    src = next((market / "bounding_box_train").glob("*.jpg"))
    dest.write_bytes(src.read_bytes())
    return dest


def test_unparseable_market_names_are_skipped_with_one_warning_each(market, caplog):
    bad = ["0002_c1_000451_03.jpg", "person.jpg", "0003_c1s1_12_x.jpg"]
    for name in bad:
        _copy_image(market, market / "bounding_box_test" / name)
    with caplog.at_level(logging.WARNING):
        s = read_market1501(market)
    assert len(s.gallery) == 2 * 2 * 2 + 4
    assert sorted(Path(f).name for f, _ in s.gallery.skipped) == sorted(bad)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(bad)
    for name in bad:
        _one_line(next(w for w in warnings if name in w), "PPPP_cCsS_FFFFFF_NN.jpg")


def test_a_split_of_unparseable_names_is_an_error_naming_the_folder_and_a_file(market):
    for f in (market / "query").iterdir():
        f.rename(f.with_name("q_" + f.name))
    with pytest.raises(ValueError) as e:
        read_market1501(market)
    _one_line(str(e.value), str(market / "query"), "no usable image", "q_", "PPPP_cCsS_FFFFFF_NN.jpg")


def test_dukemtmc_names_say_that_set_is_not_supported(market):
    for f in (market / "query").iterdir():
        f.unlink()
    _copy_image(market, market / "query" / "0001_c2_f0046182.jpg")
    with pytest.raises(ValueError) as e:
        read_market1501(market)
    _one_line(str(e.value), "0001_c2_f0046182.jpg", "DukeMTMC-reID", "not supported")


def test_corrupt_jpeg_is_kept_as_a_path_and_fails_when_read(market):
    bad = market / "bounding_box_test" / "0003_c1s1_000999_01.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 30)
    s = read_market1501(market)
    i = [Path(p).name for p in s.gallery.images].index(bad.name)
    assert s.gallery.pids[i] == 3 and s.gallery.image(0).ndim == 3  # the others read fine
    with pytest.raises(ImageReadError) as e:
        s.gallery.image(i)
    _one_line(str(e.value), str(bad))


def test_truncated_jpeg_fails_when_read(market):
    src = next((market / "bounding_box_train").glob("*.jpg"))
    src.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2])
    s = read_market1501(market)
    i = [Path(p) for p in s.train.images].index(src)
    with pytest.raises(ImageReadError) as e:
        s.train.image(i)
    _one_line(str(e.value), str(src), "truncated")


def test_empty_split_folder_is_an_error_naming_it(market):
    for f in (market / "bounding_box_train").iterdir():
        f.unlink()
    with pytest.raises(ValueError) as e:
        read_market1501(market)
    _one_line(str(e.value), str(market / "bounding_box_train"), "no image", "Market-1501 layout")


def test_missing_root_and_missing_split_folder(tmp_path, market):
    for reader in (read_market1501, read_reid_folder, read_reid):
        with pytest.raises(FileNotFoundError) as e:
            reader(tmp_path / "nowhere")
        _one_line(str(e.value), str(tmp_path / "nowhere"))
    for f in (market / "query").iterdir():
        f.unlink()
    (market / "query").rmdir()
    with pytest.raises(FileNotFoundError) as e:
        read_market1501(market)
    _one_line(str(e.value), str(market / "query"), "bounding_box_train")


def test_root_given_as_a_file(tmp_path):
    f = tmp_path / "market.zip"
    f.write_bytes(b"PK")
    for reader in (read_market1501, read_reid):
        with pytest.raises(FileNotFoundError) as e:
            reader(f)
        _one_line(str(e.value), str(f))


def _plain(root: Path, market: Path) -> Path:
    for split, pid, name in (
        ("train", "1", "c1_a.jpg"),
        ("query", "2", "c1_a.jpg"),
        ("gallery", "2", "c2_a.jpg"),
    ):
        (root / split / pid).mkdir(parents=True)
        _copy_image(market, root / split / pid / name)
    return root


def test_plain_file_without_camera_prefix_is_skipped_naming_it(tmp_path, market, caplog):
    root = _plain(tmp_path / "plain", market)
    for name in ("frame001.jpg", "cam_2.jpg"):
        _copy_image(market, root / "gallery" / "2" / name)
    loose = _copy_image(market, root / "train" / "loose.jpg")
    with caplog.at_level(logging.WARNING):
        s = read_reid_folder(root)
    assert len(s.gallery) == 1 and len(s.train) == 1
    assert sorted(Path(f).name for f, _ in s.gallery.skipped) == ["cam_2.jpg", "frame001.jpg"]
    assert "camera prefix" in s.gallery.skipped[0][1]
    assert [f for f, _ in s.train.skipped] == [str(loose)]
    for name in ("frame001.jpg", "cam_2.jpg", "loose.jpg"):
        _one_line(next(r.getMessage() for r in caplog.records if name in r.getMessage()), name)


def test_plain_split_without_a_usable_file_is_an_error(tmp_path, market):
    root = _plain(tmp_path / "plain", market)
    (root / "query" / "2" / "c1_a.jpg").rename(root / "query" / "2" / "a.jpg")
    with pytest.raises(ValueError) as e:
        read_reid_folder(root)
    _one_line(str(e.value), str(root / "query"), "a.jpg", "camera prefix")


def test_folder_with_neither_layout(tmp_path):
    (tmp_path / "photos" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as e:
        read_reid(tmp_path / "photos")
    _one_line(str(e.value), str(tmp_path / "photos"), "Market-1501 layout", "plain layout")
