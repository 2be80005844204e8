"""Bad-input corpus, area D: the ``.tvc`` codec file and ``trustvis codec`` (issue 18).

Every case ends in a correct result or a one-line error that names the file (or flag) and the problem:
damaged files (any bit of the header, a sample of payload bits), forged headers with a valid checksum
(sizes above the limits, sizes whose latents cannot fit the payload, impossible architectures), bad
encoder flags, outputs that would overwrite the input, and images too large for the format or that used
to need an n x n identity matrix to up-sample.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from badcli import assert_clear_error, run_cli_subprocess
from PIL import Image

from trustvis import registry
from trustvis.methods.codec import bitstream as bs
from trustvis.methods.codec import coolchic
from trustvis.methods.codec.coolchic import OverfitCodec, _upsampling_matrix, _upsampling_taps, decode

ROOT = Path(__file__).resolve().parents[2]

# byte offsets of the fixed header fields (see the layout in bitstream.py)
VERSION_AT, METHOD_AT, HEIGHT_AT, WIDTH_AT, LAMBDA_AT, N_GRIDS_AT = 3, 4, 5, 7, 9, 13


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[120:144, 170:190])  # 24x20 real photo crop


@pytest.fixture(scope="module")
def encoded(photo):
    """A small real EQLINR file with non-zero latents and its reconstruction."""
    res = registry.build("eqlinr", "tiny", iterations=40, lmbda=1e-4).encode(photo)
    header, _ = bs.unpack(res.data)
    assert any(m > 0 for m in header.grid_max)  # latents are range-coded: the payload checks apply
    return res


def _crc_pos(data: bytes) -> int:
    _, words = bs.unpack(data)
    return len(data) - 4 * len(words) - 4


def _reseal(data: bytearray | bytes, crc_pos: int) -> bytes:
    """The checksum a malicious writer would recompute: crc32 of every byte but the checksum."""
    d = bytearray(data)
    d[crc_pos : crc_pos + 4] = struct.pack(
        "<I", zlib.crc32(bytes(d[crc_pos + 4 :]), zlib.crc32(bytes(d[:crc_pos])))
    )
    return bytes(d)


def _forge(data: bytes, grid_max: int | None = None, **fields) -> bytes:
    """``data`` with header fields overwritten (height, width, method, lmbda, arm_rowcol, k_arm; every
    grid's magnitude ``M_i`` = ``grid_max``) and resealed: the same layout, a valid checksum."""
    crc_pos = _crc_pos(data)
    d = bytearray(data)
    h, _ = bs.unpack(data)
    rowcol_at = N_GRIDS_AT + 2 + len(h.synthesis) + 1  # after n_grids, n_synth, widths, lem_layers
    k_arm_at = rowcol_at + 2 + len(h.arm_hidden) + 3  # after arm_rowcol, n_arm, widths, dist, k_synth, k_lem
    if grid_max is not None:
        at = k_arm_at + 1
        d[at : at + 2 * h.n_grids] = struct.pack(f"<{h.n_grids}H", *[grid_max] * h.n_grids)
    fmt = {"height": ("<H", HEIGHT_AT), "width": ("<H", WIDTH_AT), "method": ("<B", METHOD_AT),
           "lmbda": ("<f", LAMBDA_AT), "arm_rowcol": ("<B", rowcol_at), "k_arm": ("<B", k_arm_at)}  # fmt: skip
    for name, value in fields.items():
        f, at = fmt[name]
        d[at : at + struct.calcsize(f)] = struct.pack(f, value)
    return _reseal(d, crc_pos)


def _no_training(monkeypatch):
    """Fail the test if the encoder starts overfitting (a flag must be refused before any work)."""

    def boom(*a, **k):
        raise AssertionError("the encoder started training")

    monkeypatch.setattr(coolchic, "overfit", boom)


# ------------------------------------------------------------------------- damaged files: the checksum


def test_every_header_bit_flip_and_sampled_payload_flips_are_refused(encoded):
    data = encoded.data
    n_payload = 4 * len(bs.unpack(data)[1])
    header_bits = 8 * (len(data) - n_payload)  # everything before the payload, the checksum included
    rng = np.random.default_rng(0)
    payload_bits = rng.choice(8 * n_payload, size=min(64, 8 * n_payload), replace=False) + header_bits
    for bit in [*range(header_bits), *payload_bits.tolist()]:
        d = bytearray(data)
        d[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(bs.BitstreamError):
            decode(bytes(d))
        with pytest.raises(bs.BitstreamError):
            bs.unpack(bytes(d))


@pytest.mark.parametrize(
    "field,at",
    [
        ("height", HEIGHT_AT),
        ("width", WIDTH_AT + 1),
        ("lambda", LAMBDA_AT + 2),
        ("n_grids", N_GRIDS_AT),
        ("checksum", -1),
        ("payload", None),
    ],  # fmt: skip
)
def test_cli_refuses_a_damaged_file_naming_it(cli, tmp_path, encoded, field, at):
    data = bytearray(encoded.data)
    if at == -1:
        at = _crc_pos(encoded.data)
    elif at is None:
        at = len(data) - 3
    data[at] ^= 0x10
    f = tmp_path / "damaged.tvc"
    f.write_bytes(bytes(data))
    png = tmp_path / "out.png"
    msg = assert_clear_error(cli(["codec", "decode", f, png, "--no-progress"]), str(f), ".tvc")
    assert "checksum" in msg or "Truncated" in msg
    assert not png.exists()
    assert_clear_error(cli(["codec", "info", f]), str(f), ".tvc")


def test_an_intact_file_still_decodes_to_the_encoders_reconstruction(encoded):
    torch.testing.assert_close(decode(encoded.data), encoded.x_hat, rtol=0, atol=0)
    assert encoded.data[VERSION_AT] == bs.VERSION == 3


def test_version_1_files_still_decode_with_a_warning_and_their_payload_is_still_checked(encoded, caplog):
    """v1 (CRC of the payload only, otherwise format 2): an intact file is not lost; a damaged payload is refused.
    The v1 file is a golden format-2 file relabelled (formats 1 and 2 share the payload order)."""
    v2 = (ROOT / "tests" / "expected" / "tvc" / "coolchic_q3.tvc").read_bytes()
    assert v2[VERSION_AT] == 2
    crc_pos = _crc_pos(v2)
    v1 = bytearray(v2)
    v1[VERSION_AT] = 1
    v1[crc_pos : crc_pos + 4] = struct.pack("<I", zlib.crc32(bytes(v1[crc_pos + 4 :])))
    with caplog.at_level("WARNING"):
        torch.testing.assert_close(decode(bytes(v1)), decode(v2), rtol=0, atol=0)
    assert "re-encode" in caplog.text
    v1[-1] ^= 0x01
    with pytest.raises(bs.BitstreamError, match="checksum"):
        decode(bytes(v1))
    with pytest.raises(bs.BitstreamError, match=r"version 9.*\[1, 2, 3\]"):
        decode(encoded.data[:VERSION_AT] + bytes([9]) + encoded.data[VERSION_AT + 1 :])


# ------------------------------------------------------------ forged files: valid checksum, bad header


def test_a_forged_65535x65535_header_is_refused_fast_with_bounded_memory(tmp_path, encoded):
    assert len(encoded.data) < 1200
    f = tmp_path / "huge.tvc"
    f.write_bytes(_forge(encoded.data, height=65535, width=65535))
    for argv in (["codec", "decode", f, tmp_path / "huge.png", "--no-progress"], ["codec", "info", f]):
        res = run_cli_subprocess(argv, cwd=tmp_path, timeout=120)
        assert_clear_error(res, str(f), "65535x65535", "pixels")
        assert res.peak_mb < 1000, res.peak_mb
    assert not (tmp_path / "huge.png").exists()


def test_a_size_whose_latents_cannot_fit_the_payload_is_refused(cli, tmp_path, encoded):
    """4000x4000 is within the pixel limit, but ~21 M latents of magnitude up to 65535 cost at least 0.011
    bits each (the coder's precision): ~30 KB, not ~1 KB."""
    f = tmp_path / "tall.tvc"
    f.write_bytes(_forge(encoded.data, height=4000, width=4000, grid_max=65535))
    assert 4000 * 4000 <= bs.MAX_PIXELS
    msg = assert_clear_error(
        cli(["codec", "decode", f, tmp_path / "x.png", "--no-progress"]), str(f), "4000x4000"
    )
    assert "payload" in msg
    assert_clear_error(cli(["codec", "info", f]), str(f), "payload")
    # the bound is sound: the real file and the same header with a real size pass it
    assert bs.min_payload_bits(bs.unpack(encoded.data)[0]) <= 32 * len(bs.unpack(encoded.data)[1])


@pytest.mark.parametrize(
    "fields,needle",
    [
        ({"height": 0}, "sides"),
        ({"method": 7}, "codec id"),
        ({"lmbda": float("nan")}, "lambda"),
        ({"arm_rowcol": 0}, "arm_rowcol"),
        ({"k_arm": 200}, "lattice exponents"),
    ],  # fmt: skip
)
def test_forged_impossible_headers_are_refused(cli, tmp_path, encoded, fields, needle):
    f = tmp_path / "forged.tvc"
    f.write_bytes(_forge(encoded.data, **fields))
    with pytest.raises(bs.BitstreamError, match=needle):
        decode(f.read_bytes())
    assert_clear_error(cli(["codec", "decode", f, tmp_path / "x.png", "--no-progress"]), str(f), needle)


def test_format_limits_name_the_problem():
    bs.check_size(4096, 4096)  # the documented maximum, default architecture
    with pytest.raises(ValueError, match="pixels"):
        bs.check_size(4097, 4096)
    with pytest.raises(ValueError, match="1..65535"):
        bs.check_size(2, 70000)
    with pytest.raises(ValueError, match="narrower"):
        bs.check_size(4096, 4096, 7, (12, 200))  # 16.8 MP x a 200-wide layer: 13 GB per layer output
    with pytest.raises(ValueError, match="arm_rowcol"):
        bs.check_architecture(7, (12, 12), 0, 0, (12, 12))
    with pytest.raises(ValueError, match="synthesis widths"):
        bs.check_architecture(7, (12, 0), 0, 2, (12, 12))


# ------------------------------------------------------------------------------------- encoder flags


@pytest.fixture
def png(tmp_path, photo) -> Path:
    p = tmp_path / "photo.png"
    Image.fromarray(photo).save(p)
    return p


@pytest.mark.parametrize(
    "flags,needles",
    [
        (["--iterations", "0"], ["--iterations", ">= 1"]),
        (["--iterations", "-3"], ["--iterations"]),
        (["--lambda", "-1"], ["--lambda", "> 0"]),
        (["--lambda", "nan"], ["--lambda", "finite"]),
        (["--lambda", "inf"], ["--lambda"]),
        (["--lambda", "0"], ["--lambda"]),
        (["--quality", "0"], ["--quality", "1..8"]),
        (["--quality", "9"], ["--quality", "1..8"]),
        (["--set", "nonsense=1"], ["nonsense", "valid keys"]),
        (["--set", "iterations=0"], ["iterations", ">= 1"]),
        (["--set", "lmbda=.nan"], ["lmbda", "finite"]),
        (["--set", "n_grids=0"], ["n_grids"]),
        (["--set", "synthesis=[300]"], ["synthesis", "1..255"]),
        (["--set", "distribution=cauchy"], ["choose from"]),
        (["--set", "ste_fraction=2"], ["ste_fraction", "[0, 1]"]),
        (["--preset", "huge"], ["huge", "choose from"]),
    ],  # fmt: skip
)
def test_bad_encode_flags_are_refused_before_any_work(cli, monkeypatch, tmp_path, png, flags, needles):
    _no_training(monkeypatch)
    out = tmp_path / "photo.tvc"
    assert_clear_error(cli(["codec", "encode", png, out, "--no-progress", *flags]), *needles)
    assert not out.exists()


def test_an_output_that_would_overwrite_the_input_is_refused(cli, monkeypatch, tmp_path, png, encoded):
    _no_training(monkeypatch)
    before = png.read_bytes()
    assert_clear_error(cli(["codec", "encode", png, png, "--no-progress"]), str(png), "input")
    assert_clear_error(cli(["codec", "encode", png, tmp_path, "--no-progress"]), str(tmp_path), "folder")
    out = tmp_path / "a.tvc"
    assert_clear_error(cli(["codec", "encode", png, out, "--recon", out, "--no-progress"]), "--recon")
    assert png.read_bytes() == before and not out.exists()
    f = tmp_path / "b.tvc"
    f.write_bytes(encoded.data)
    assert_clear_error(cli(["codec", "decode", f, f, "--no-progress"]), str(f), "input")
    assert f.read_bytes() == encoded.data


# --------------------------------------------------------------------------------- large images


def test_an_image_above_the_pixel_limit_is_refused_before_training(cli, monkeypatch, tmp_path):
    _no_training(monkeypatch)
    big = tmp_path / "big.png"
    Image.new("RGB", (4097, 4097), (90, 120, 30)).save(big)
    assert_clear_error(
        cli(["codec", "encode", big, tmp_path / "big.tvc", "--no-progress"]), str(big), "pixels"
    )


def test_a_2x70000_png_is_refused_cleanly_with_bounded_memory(tmp_path):
    p = tmp_path / "strip.png"
    Image.new("RGB", (70000, 2), (200, 10, 10)).save(p)
    res = run_cli_subprocess(["codec", "encode", p, tmp_path / "s.tvc", "--iterations", "1", "--no-progress"],
                             cwd=tmp_path, timeout=120)  # fmt: skip
    assert_clear_error(res, str(p), "70000x2", "65535")
    assert res.peak_mb < 2000, res.peak_mb


def test_a_2x20000_png_encodes_and_decodes_with_bounded_memory(tmp_path):
    """Its grids used to be up-sampled by dense (20000, n) matrices: 1.6 GB for grid 0 alone."""
    rng = np.random.default_rng(0)
    p = tmp_path / "strip.png"
    Image.fromarray(rng.integers(0, 256, (2, 20000, 3), dtype=np.uint8)).save(p)
    tvc, rec, dec = tmp_path / "s.tvc", tmp_path / "rec.png", tmp_path / "dec.png"
    argv = [
        "codec",
        "encode",
        p,
        tvc,
        "--method",
        "coolchic",
        "--iterations",
        "1",
        "--recon",
        rec,
        "--no-progress",
    ]
    res = run_cli_subprocess(argv, cwd=tmp_path, timeout=300)
    assert res.code == 0, res.err
    assert res.peak_mb < 2000, res.peak_mb
    res = run_cli_subprocess(["codec", "decode", tvc, dec, "--no-progress"], cwd=tmp_path, timeout=300)
    assert res.code == 0, res.err
    assert res.peak_mb < 2000, res.peak_mb
    assert np.array_equal(np.asarray(Image.open(rec)), np.asarray(Image.open(dec)))


def test_banded_upsampling_has_pytorchs_bicubic_weights_exactly():
    """The taps rebuild the dense matrix bit for bit (so sizes that keep the dense path keep their numbers)."""
    for n, f in [(1, 2), (3, 2), (5, 4), (7, 8), (13, 16), (33, 2), (6, 64), (100, 1)]:
        for out in {n * f, max(1, n * f - f + 1)}:
            idx, w = _upsampling_taps(n, f, out)
            dense = torch.zeros(out, n).scatter_add_(1, idx, w)
            assert torch.equal(dense, _upsampling_matrix(n, f, out)), (n, f, out)


def test_a_wide_model_upsamples_like_interpolate_without_dense_matrices():
    width = 20000  # dense, grid 1 would need a 20000x10000 matrix (0.8 GB)
    model = OverfitCodec(3, width, n_grids=4, synthesis=(4,), arm_rowcol=1, arm_hidden=(4,))
    assert (
        model.up_w0 is None and model.up_w1_idx is not None and model.up_w1.shape == (width, 4)
    )  # grid 0: as is
    assert max(b.numel() for b in model.buffers()) <= coolchic.DENSE_UPSAMPLING_LIMIT
    g = [torch.randn(*lat.shape) for lat in model.latents]
    up = model.upsample(g).reshape(4, 3, width)
    for i, gi in enumerate(g):
        ref = F.interpolate(gi[None, None], scale_factor=2**i, mode="bicubic", align_corners=False)
        torch.testing.assert_close(up[i], ref[0, 0, :3, :width], rtol=1e-5, atol=1e-5)
    assert math.isfinite(float(up.sum()))
