"""Bad-input corpus, area B: files and folders, ``trustvis predict`` (issue 18).

Symbolic-link loops and self-links, GIFs and multi-frame files, images too large for memory, one bad file
among good ones, same-named files from different folders (overlays), and a model whose output is NaN.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from badcli import assert_clear_error, run_cli_subprocess
from PIL import Image

from trustvis.cli import main
from trustvis.data.forensynths import ForenSynthsDataset
from trustvis.data.io import IMAGE_EXTENSIONS, ImageReadError, iter_image_files, load_image

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


def make_forensynths(root: Path, generators=("gen_a",), n: int = 8, seed: int = 0) -> Path:
    """root/<gen>/{0_real,1_fake}/*.png, 16x16: reals are smooth noise, fakes carry a checkerboard."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16]
    checker = ((yy + xx) % 2 * 2 - 1)[..., None] * 40.0
    for g in generators:
        for label, sub in ((0, "0_real"), (1, "1_fake")):
            (root / g / sub).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.kron(rng.normal(128, 30, (4, 4, 3)), np.ones((4, 4, 1))) + label * checker
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / g / sub / f"{i:03d}.png")
    return root


def _train(method: str, out: Path, *extra: str) -> Path:
    argv = ["-q", "train", method, "--preset", "tiny", "--out", str(out), "--set", "train.progress=false"]
    assert main([*argv, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def cnndet_run(tmp_path_factory) -> Path:
    """A tiny cnndet run, trained once for the module (its own TRUSTVIS_HOME)."""
    base = tmp_path_factory.mktemp("cnndet")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTVIS_HOME", str(base / "home"))
        data = base / "fs"
        make_forensynths(data / "train", ("gen_a",), n=8)
        make_forensynths(data / "val", ("gen_a",), n=4, seed=1)
        return _train("cnndet", base / "run", "--data", str(data), "--set", "train.steps=2")


def _png(path: Path, value: int = 100, size: tuple[int, int] = (16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, value // 2)).save(path)
    return path


# --- symbolic links ------------------------------------------------------------------------------------


def _branching_loop(root: Path) -> set[Path]:
    """a/ and b/ each link to both a/ and b/: following links without a check never ends (2^depth paths)."""
    real = {_png(root / "a" / "1.png"), _png(root / "b" / "2.png", 50)}
    for d in ("a", "b"):
        (root / d / "to_a").symlink_to(root / "a", target_is_directory=True)
        (root / d / "to_b").symlink_to(root / "b", target_is_directory=True)
    return real


def test_link_loop_lists_each_real_file_once(tmp_path):
    real = _branching_loop(tmp_path)
    (tmp_path / "a" / "again.png").symlink_to(tmp_path / "a" / "1.png")  # a link to a listed file
    assert iter_image_files(tmp_path) == sorted(real)


def test_predict_on_a_link_loop_finishes(cnndet_run, tmp_path):
    real = _branching_loop(tmp_path / "imgs")
    res = run_cli_subprocess(["predict", cnndet_run, tmp_path / "imgs", "--json"], cwd=tmp_path, timeout=120)
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert sorted(Path(r["path"]) for r in out["results"]) == sorted(real) and out["errors"] == []


def test_self_link_does_not_multiply_eval_counts(cnndet_run, tmp_path, cli):
    data = make_forensynths(tmp_path / "test", ("gen_a",), n=8, seed=2)
    (data / "gen_a" / "0_real" / "again").symlink_to(".", target_is_directory=True)
    assert len(iter_image_files(data / "gen_a" / "0_real")) == 8
    assert int((ForenSynthsDataset(data, check=False).labels == 0).sum()) == 8
    res = cli(["eval", cnndet_run, "--data", data, "--json", "--no-progress"])
    assert res.code == 0, res.err
    assert json.loads(res.out)["per_generator"]["gen_a"]["n_real"] == 8


# --- GIF and multi-frame files -------------------------------------------------------------------------


def _frames(n: int = 3) -> list[Image.Image]:
    return [Image.new("RGB", (12, 10), (60 * i + 20, 200 - 50 * i, 90)) for i in range(n)]


def test_gif_is_listed_like_it_is_read(tmp_path):
    one = _frames(1)[0]
    one.save(tmp_path / "still.GIF")
    assert ".gif" in IMAGE_EXTENSIONS
    assert iter_image_files(tmp_path) == [tmp_path / "still.GIF"]
    assert load_image(tmp_path / "still.GIF").shape == (10, 12, 3)


@pytest.mark.parametrize("ext", [".gif", ".tif", ".png", ".webp"])
def test_multi_frame_file_uses_the_first_frame_and_says_so_once(tmp_path, caplog, ext):
    frames = _frames()
    path = tmp_path / f"anim{ext}"
    frames[0].save(
        path, save_all=True, append_images=frames[1:], **({"lossless": True} if ext == ".webp" else {})
    )
    with Image.open(path) as im:
        assert getattr(im, "n_frames", 1) == 3, "the writer made a single-frame file"
    assert iter_image_files(tmp_path) == [path]
    with caplog.at_level(logging.WARNING, logger="trustvis.data.io"):
        first = load_image(path)
        again = load_image(path)
    np.testing.assert_allclose(first, np.asarray(frames[0]), atol=2)  # GIF's palette may round by 1-2
    np.testing.assert_array_equal(first, again)
    warned = [r.getMessage() for r in caplog.records if "frames" in r.getMessage()]
    assert len(warned) == 1 and str(path) in warned[0] and "first" in warned[0]


# --- memory ----------------------------------------------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` RGB pixels, followed by a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_huge_header_is_refused_before_decoding(tmp_path):
    path = _png_header_only(tmp_path / "huge.png", 100_000, 100_000)
    with pytest.raises(ImageReadError) as ei:
        load_image(path)
    assert "100000x100000" in str(ei.value) and "too large" in str(ei.value) and "GB" in str(ei.value)


def test_predict_big_png_in_bounded_memory(cnndet_run, tmp_path, cli):
    """A 14000x14000 PNG of ~190 KB: scored on its 2048x2048 centre, in well under 2.5 GB."""
    big = tmp_path / "big.png"
    Image.new("L", (14000, 14000), 120).save(big)
    assert big.stat().st_size < 1_000_000
    small = _png(tmp_path / "small.png")
    huge = _png_header_only(tmp_path / "huge.png", 100_000, 100_000)
    res = run_cli_subprocess(["predict", cnndet_run, big, small, huge, "--json"], cwd=tmp_path, timeout=300)
    assert res.code == 0, res.err
    assert res.peak_mb < 2500, f"peak RSS {res.peak_mb:.0f} MiB"
    out = json.loads(res.out)
    assert [Path(r["path"]).name for r in out["results"]] == ["big.png", "small.png"]
    assert all(0 <= r["score"] <= 1 for r in out["results"])
    [err] = out["errors"]
    assert err["path"] == str(huge) and "100000x100000" in err["error"] and "too large" in err["error"]

    # the centre crop of a constant image is that constant: the same score as a 2048x2048 constant image
    flat = tmp_path / "flat.png"
    Image.new("L", (2048, 2048), 120).save(flat)
    ref = cli(["predict", cnndet_run, flat, "--json"])
    assert json.loads(ref.out)["results"][0]["score"] == pytest.approx(out["results"][0]["score"], abs=1e-6)


# --- one bad image never loses the others ---------------------------------------------------------------


def _patch_predict(monkeypatch, bad):
    """load_method returns the real method whose predict is replaced on the images ``bad(x)`` selects."""
    import trustvis.engine as engine

    real_load = engine.load_method

    def load(*a, **k):
        m = real_load(*a, **k)
        orig = m.predict

        def predict(batch):
            return bad(batch["image"], orig)

        m.predict = predict
        return m

    monkeypatch.setattr(engine, "load_method", load)


def test_one_failing_image_keeps_the_others(cnndet_run, tmp_path, cli, monkeypatch):
    good = [_png(tmp_path / "in" / f"g{i}.png", 30 * i) for i in range(3)]
    odd = _png(tmp_path / "in" / "odd.png", size=(17, 17))  # the model "runs out of memory" on 17x17
    truncated = tmp_path / "in" / "trunc.png"
    truncated.write_bytes(good[0].read_bytes()[:60])
    missing = tmp_path / "nope.png"

    def bad(x, orig):
        if x.shape[-1] == 17:
            raise RuntimeError("CUDA out of memory. Tried to allocate 40.00 GiB")
        return orig({"image": x})

    _patch_predict(monkeypatch, bad)
    res = cli(["predict", cnndet_run, tmp_path / "in", missing, "--json"])
    assert res.code == 0, res.err
    out = json.loads(res.out)
    assert sorted(r["path"] for r in out["results"]) == sorted(map(str, good))
    errors = {Path(e["path"]).name: e["error"] for e in out["errors"]}
    assert set(errors) == {"odd.png", "trunc.png", "nope.png"}
    assert "model failed" in errors["odd.png"] and "out of memory" in errors["odd.png"]
    assert "does not exist" in errors["nope.png"]
    # nothing scored at all: exit 1, every file still reported
    res = cli(["predict", cnndet_run, odd, truncated])
    assert res.code == 1 and "Traceback" not in res.err
    assert "odd.png" in res.out and "trunc.png" in res.out and "error:" in res.out


def test_nan_score_is_an_error_row_never_real(cnndet_run, tmp_path, cli, monkeypatch):
    imgs = [_png(tmp_path / f"{i}.png", 40 * i) for i in range(3)]

    def bad(x, orig):
        out = orig({"image": x})
        score = out["score"].clone()
        score[x[:, 0, 0, 0] == 0] = float("nan")  # image 0 is black in its red channel
        return {**out, "score": score}

    _patch_predict(monkeypatch, bad)
    res = cli(["predict", cnndet_run, *imgs])
    assert res.code == 0, res.err
    row0 = next(ln for ln in res.out.splitlines() if ln.startswith(str(imgs[0])))
    assert "not finite" in row0 and "real" not in row0 and "fake" not in row0
    res = cli(["predict", cnndet_run, *imgs, "--json"])
    out = json.loads(res.out)
    assert [r["path"] for r in out["results"]] == [str(imgs[1]), str(imgs[2])]
    assert out["errors"][0]["path"] == str(imgs[0]) and "not finite" in out["errors"][0]["error"]


def test_nan_weights_never_answer_real(cnndet_run, tmp_path, cli):
    import shutil

    from safetensors.torch import load_file, save_file

    run = tmp_path / "nan_run"
    shutil.copytree(cnndet_run, run)
    weights = load_file(run / "model.safetensors")
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(nan, run / "model.safetensors")
    img = _png(tmp_path / "x.png")
    res = cli(["predict", run, img])
    assert "real" not in res.out and "fake" not in res.out.replace("p(fake)", "")
    if res.code == 2:  # load_method refuses broken weights
        assert_clear_error(res, str(run))
    else:
        assert res.code == 1 and "not finite" in res.out, res.out + res.err


def test_the_python_api_raises_where_the_cli_writes_an_error_row(cnndet_run, tmp_path, monkeypatch):
    """``trustvis.load(run).predict``: no result is silently missing from a list. A truncated file, a model
    failing on an image and a NaN score each raise one line naming the input and its position."""
    import trustvis

    good = [_png(tmp_path / f"g{i}.png", 40 * i) for i in range(3)]
    truncated = tmp_path / "trunc.png"
    truncated.write_bytes(good[0].read_bytes()[:60])
    p = trustvis.load(cnndet_run)
    with pytest.raises(ValueError) as e:
        p.predict([good[0], truncated, good[1], tmp_path / "nope.png"])
    msg = str(e.value)
    assert msg.startswith(f"input 1 ({truncated})") and "truncated" in msg and "1 more input(s)" in msg
    assert "\n" not in msg

    def bad(x, orig):
        if x.shape[-1] == 17:
            raise RuntimeError("CUDA out of memory. Tried to allocate 40.00 GiB")
        out = orig({"image": x})
        return {**out, "score": torch.where(x[:, 0, 0, 0] == 0, float("nan"), out["score"])}

    _patch_predict(monkeypatch, bad)  # the API loads the run as the command line does
    p = trustvis.load(cnndet_run)
    with pytest.raises(
        ValueError, match=r"^input 1 \(numpy array \(17, 17, 3\) uint8\): the model failed.*memory"
    ):
        p.predict([good[1], np.full((17, 17, 3), 9, np.uint8)])
    with pytest.raises(ValueError, match=r"^numpy array \(16, 16, 3\) uint8: model output is not finite"):
        p.predict(np.zeros((16, 16, 3), np.uint8))  # black: NaN score, never "real"
    assert p.predict(good[1])["verdict"] in ("real", "fake")


# --- overlays of same-named files ----------------------------------------------------------------------


def _padim_run(out: Path) -> Path:
    """A tiny PaDiM run fitted on random normal images (no training data set needed: seconds, not a minute)."""
    from trustvis import registry
    from trustvis.config import make_run_config, to_dict
    from trustvis.engine.checkpoint import save_final

    torch.manual_seed(0)
    m = registry.build("padim", "tiny")
    m.fit([{"image": torch.rand(16, 3, 32, 32)}])
    m.threshold.fill_(float(m.predict({"image": torch.rand(4, 3, 32, 32)})["score"].max()))
    save_final(m, out, to_dict(make_run_config("padim", "tiny")), 0)
    return out


def test_same_named_inputs_get_their_own_overlays(tmp_path, cli):
    run = _padim_run(tmp_path / "padim")
    # sizes are batched apart (40, 41, 42 px): the old index-based names collided across such groups
    inputs = [_png(tmp_path / f"{n}.png", 20 * i, size=(40, 40)) for i, n in enumerate("pqr")]
    inputs += [
        _png(tmp_path / "u.png", 90, size=(41, 41)),
        _png(tmp_path / "one" / "a.png", 10, size=(41, 41)),
    ]
    inputs += [_png(tmp_path / "two" / "a.png", 240, size=(42, 42))]
    res = cli(["predict", run, *inputs, "--json"])
    assert res.code == 0, res.err
    maps = {r["path"]: Path(r["map"]) for r in json.loads(res.out)["results"]}
    assert set(maps) == set(map(str, inputs)) and len(set(maps.values())) == len(inputs)
    colours = {src: np.asarray(Image.open(src).convert("RGB"))[0, 0].astype(int) for src in maps}
    for src, overlay in maps.items():  # each overlay shows its own input (one flat colour per input)
        assert overlay.name.startswith(Path(src).stem + "_anomaly"), overlay
        pixels = np.asarray(Image.open(overlay).convert("RGB")).astype(int).reshape(-1, 3)
        for other, colour in colours.items():
            share = float(np.mean(np.abs(pixels - colour).max(axis=1) <= 3))
            if other == src:
                assert share > 0.1, f"{overlay} does not show {src}"
            elif not np.array_equal(colour, colours[src]):
                assert share < 0.01, f"{overlay} shows {other}, not {src}"
