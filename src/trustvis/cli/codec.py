"""``trustvis codec encode | decode | info``: the neural codecs on single images; the logic is
:mod:`trustvis.tasks.codec`'s."""

from __future__ import annotations

import argparse
import json

from trustvis.cli.common import RAW, UsageError

EPILOG_CODEC = """\
examples:
  trustvis codec encode photo.png photo.tvc --quality 4          # EQLINR, lambda 2e-3
  trustvis codec encode photo.png photo.tvc --method coolchic --lambda 1e-3 --iterations 6000
  trustvis codec decode photo.tvc photo_decoded.png
  trustvis codec info photo.tvc

Encoding overfits a small network to the image: --iterations steps (default 3000 with --preset default,
1500 with --preset quick), about 0.016 s (coolchic) to 0.026 s (eqlinr) each for a 256x256 image on two CPU
cores, so about a minute at the default budget; time grows with the pixel count. A progress bar shows the
iterations (--no-progress: none). Decoding a 256x256 file takes about 35 ms. A file decodes to exactly the encoder's
reconstruction on the same machine; across machines the latents decode exactly (integer entropy model), the
float synthesis may differ in the last bit.

Python: registry.build("eqlinr", lmbda=1e-3).encode(image, iterations=500) (a tqdm bar by default;
progress=False for none) returns the bytes, the reconstruction and stats.
"""


def cmd_codec(args: argparse.Namespace) -> int:
    from trustvis.tasks import TaskError
    from trustvis.tasks import codec as C

    try:
        if args.codec_cmd == "info":
            info = C.file_info(args.file)
            print(
                json.dumps(info, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items())
            )
        elif args.codec_cmd == "decode":
            print(C.decode_file(args.input, args.output, progress=not args.no_progress))
        else:
            opts = C.EncodeOptions(method=args.method, quality=args.quality, lmbda=args.lmbda,
                                   iterations=args.iterations, preset=args.preset, seed=args.seed, sets=args.set,
                                   recon=args.recon, progress=not args.no_progress)  # fmt: skip
            print(C.encode_file(args.input, args.output, opts))
    except TaskError as e:
        raise UsageError(str(e)) from None
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from trustvis import registry
    from trustvis.tasks.codec import CodecTask

    codecs = [m["name"] for m in registry.catalog()["methods"] if m["task"] == "codec"]
    s = sub.add_parser("codec", help="compress / decompress images with the neural codecs (" + ", ".join(codecs) + ")",
                       formatter_class=RAW, epilog=EPILOG_CODEC)  # fmt: skip
    csub = s.add_subparsers(dest="codec_cmd", required=True, metavar="{encode,decode,info}")
    e = csub.add_parser("encode", help="overfit the codec to one image and write its .tvc file", formatter_class=RAW,
                        epilog=EPILOG_CODEC)  # fmt: skip
    e.add_argument(
        "input", help="image file (PNG, JPEG, ...; grayscale, RGBA and 16-bit are converted to 8-bit RGB)"
    )
    e.add_argument("output", help="the .tvc file to write")
    e.add_argument("--method", default=CodecTask.default_method,
                   help=f"the codec: {' or '.join(codecs)} (default {CodecTask.default_method})")  # fmt: skip
    e.add_argument(
        "--quality", type=int, help="1 (smallest file) .. 8 (best quality); default 5 (lambda 1e-3)"
    )
    e.add_argument(
        "--lambda", dest="lmbda", type=float, help="rate weight instead of --quality (1e-4 .. 2e-2)"
    )
    e.add_argument(
        "--iterations",
        type=int,
        help="overfitting budget in steps (default: the preset's, 3000 or 1500); more = better and slower, "
        "about 0.07-0.09 s per step for a 256x256 image on 2 CPU cores (3000 steps: 4-5 min)",
    )
    e.add_argument(
        "--preset", default="default", help="default (3000 iterations), quick (1500) or tiny (4, for tests)"
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--set", action="append", metavar="FIELD=VALUE", help="any codec config field, e.g. lem_layers=0"
    )
    e.add_argument("--recon", help="also write the decoded image (PNG) the file gives")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    d = csub.add_parser("decode", help="decode a .tvc file to PNG")
    d.add_argument("input", help="the .tvc file")
    d.add_argument("output", help="PNG to write")
    d.add_argument("--no-progress", action="store_true")
    i = csub.add_parser("info", help="print the header of a .tvc file")
    i.add_argument("file")
    i.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_codec)
