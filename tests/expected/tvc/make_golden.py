"""Write a golden ``.tvc`` file of the current format for tests/test_codec_golden.py (run once per format version;
files of earlier versions are kept as they are, so each format stays decodable).

    python tests/expected/tvc/make_golden.py NAME METHOD QUALITY SOURCE.png [--iterations N]

writes NAME.tvc, NAME.png (its decoded image) and NAME's entry in golden.json (shape, latent digest, magnitudes,
format version) from the codec itself: nothing in golden.json is typed by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from trustvis.data.io import load_image, save_png
from trustvis.methods.codec import bitstream as bs
from trustvis.methods.codec import coolchic
from trustvis.registry import build

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("method", choices=["coolchic", "eqlinr"])
    ap.add_argument("quality", type=int)
    ap.add_argument("source", type=Path, help="RGB image to encode")
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args()
    codec = build(args.method, lmbda=coolchic.lambda_for_quality(args.quality))
    data = codec.compress(load_image(args.source), progress=False, iterations=args.iterations)
    _, grids = coolchic.decode_parts(data)
    image = (coolchic.decode(data).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    header, _ = bs.unpack(data)
    (HERE / f"{args.name}.tvc").write_bytes(data)
    save_png(HERE / f"{args.name}.png", image)
    index = HERE / "golden.json"
    cases = json.loads(index.read_text(encoding="utf-8"))
    cases[args.name] = {
        "method": args.method,
        "quality": args.quality,
        "version": header.version,
        "shape": list(image.shape),
        "latents_sha256": hashlib.sha256(
            b"".join(g.numpy().astype("<i8").tobytes() for g in grids)
        ).hexdigest(),
        "grid_max": list(header.grid_max),
        "nonzero_grids": sum(m > 0 for m in header.grid_max),
    }
    index.write_text(json.dumps(cases, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.name}.tvc ({len(data)} bytes, format {header.version})")


if __name__ == "__main__":
    main()
