"""Golden ``.tvc`` files: files written by earlier versions of the codec (tests/expected/tvc: format 2, grid by grid,
written before the decoder was vectorised; format 3, grids interleaved by wavefront; make_golden.py writes them) decode
to the same latents — bit for bit: the integer ARM and the range coder are exact on every machine — and to the same
pixels (the synthesis is float: a pixel may differ by one level on another CPU's float path, never more)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from trustvis.data.io import load_image
from trustvis.methods.codec import bitstream as bs
from trustvis.methods.codec import coolchic

GOLDEN = Path(__file__).parent / "expected" / "tvc"
CASES = json.loads((GOLDEN / "golden.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_files_decode_to_the_same_latents_and_pixels(name):
    case = CASES[name]
    raw = (GOLDEN / f"{name}.tvc").read_bytes()
    assert bs.unpack(raw)[0].version == case["version"]  # each format keeps its own files
    model, grids = coolchic.decode_parts(raw)
    assert sum(int(g.abs().max()) > 0 for g in grids) == case["nonzero_grids"] > 0  # not a blank file
    digest = hashlib.sha256(b"".join(g.numpy().astype("<i8").tobytes() for g in grids)).hexdigest()
    assert digest == case["latents_sha256"]
    image = coolchic.decode(raw)  # the public path
    got = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.int64)
    want = load_image(GOLDEN / f"{name}.png").astype(np.int64)
    assert got.shape == want.shape == tuple(case["shape"])
    diff = np.abs(got - want)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01


def test_every_readable_format_has_golden_files():
    assert {case["version"] for case in CASES.values()} == set(bs.READABLE_VERSIONS) - {
        1
    }  # v1: relabelled v2 files
