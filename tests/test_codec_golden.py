"""Golden ``.tvc`` files: files written by an earlier version of the codec (tests/expected/tvc, format 2, written
before the decoder was vectorised) decode to the same latents — bit for bit: the integer ARM and the range coder are
exact on every machine — and to the same pixels (the synthesis is float: a pixel may differ by one level on another
CPU's float path, never more)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from trustvis.data.io import load_image
from trustvis.methods.codec import coolchic

GOLDEN = Path(__file__).parent / "expected" / "tvc"
CASES = json.loads((GOLDEN / "golden.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_files_decode_to_the_same_latents_and_pixels(name):
    case = CASES[name]
    raw = (GOLDEN / f"{name}.tvc").read_bytes()
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
