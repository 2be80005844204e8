"""Task ``codec``: neural image compression by overfitting (``eqlinr``, ``coolchic``).

A codec trains no shared model: encoding one image overfits a small network to it and writes the
network, the quantised latents and a header into a ``.tvc`` file (:mod:`trustvis.methods.codec.bitstream`);
decoding reads it back. So ``trustvis train`` does not apply, and ``trustvis codec encode|decode|info``
are this task's commands; ``trustvis bench codec`` measures rate–distortion against JPEG/WebP/AVIF.

encode     image file ──► method.encode (overfit, quantise, entropy-code) ──► .tvc bytes [+ PNG recon]
decode     .tvc bytes ──► header + integer latents ──► synthesis ──► PNG
info       .tvc bytes ──► header fields, size, bits per pixel
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvis.tasks.base import Task, TaskError, register_task

log = logging.getLogger(__name__)


@dataclass
class EncodeOptions:
    """What ``trustvis codec encode`` passes (``quality`` and ``lmbda`` exclude each other)."""

    method: str = "eqlinr"
    quality: int | None = None  # 1 (smallest file) .. 8 (best quality); default 5 (lambda 1e-3)
    lmbda: float | None = None  # rate weight instead of quality
    iterations: int | None = None  # overfitting budget (default: the preset's; 3000 default, 1500 quick)
    preset: str = "default"
    seed: int = 0
    sets: list[str] | None = None  # codec config fields, FIELD=VALUE
    recon: str | None = None  # also write the decoded image (PNG) here
    progress: bool = True


def _check_output(output: str | Path, source: str | Path, what: str) -> None:
    """Refuse an output path that would overwrite the input or is a folder (before any work)."""
    if Path(output).is_dir():
        raise TaskError(f"{output}: is a folder; give a file path for {what}")
    if Path(output).resolve() == Path(source).resolve():
        raise TaskError(
            f"{output}: is the input file; give another path for {what} (it would be overwritten)"
        )


def _check_input(path: str | Path) -> None:
    if not Path(path).is_file():
        raise TaskError(f"{path}: no such file")


def file_info(path: str | Path) -> dict[str, Any]:
    """Header fields of a ``.tvc`` file, its size in bytes and its bits per pixel."""
    from trustvis.methods.codec import bitstream as bs

    _check_input(path)
    try:
        header, words = bs.unpack(Path(path).read_bytes())
    except bs.BitstreamError as e:
        raise TaskError(f"{path}: {e}") from None
    info = {**header.__dict__, "bytes": Path(path).stat().st_size, "payload_bytes": 4 * len(words)}
    info["bpp"] = 8 * info["bytes"] / (header.height * header.width)
    return info


def decode_file(source: str | Path, output: str | Path, progress: bool = True) -> str:
    """Decode the ``.tvc`` file ``source`` into the PNG ``output``; returns the line to print."""
    import numpy as np

    from trustvis.data.io import save_png
    from trustvis.methods.codec import bitstream as bs
    from trustvis.methods.codec.coolchic import decode

    t0 = time.perf_counter()
    _check_input(source)
    _check_output(output, source, "the decoded PNG")
    try:
        x = decode(Path(source).read_bytes(), progress=progress)
    except bs.BitstreamError as e:
        raise TaskError(f"{source}: {e}") from None
    img = np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    save_png(output, img)
    return f"{source} -> {output} ({img.shape[1]}x{img.shape[0]}, {time.perf_counter() - t0:.1f} s)"


def encode_file(source: str | Path, output: str | Path, opts: EncodeOptions) -> str:
    """Overfit ``opts.method`` to the image ``source`` and write its ``.tvc`` file; returns the line to print."""
    import numpy as np

    from trustvis import registry
    from trustvis.atomic import atomic_write_bytes
    from trustvis.config import make_run_config
    from trustvis.data.io import ImageReadError, load_image, save_png
    from trustvis.methods.codec import bitstream as bs
    from trustvis.methods.codec.coolchic import lambda_for_quality
    from trustvis.metrics.compression import psnr

    codecs = [s.name for s in registry.list_methods("codec")]
    if opts.method not in codecs:
        raise TaskError(f"Unknown codec {opts.method!r}; choose from {codecs}")
    if opts.quality is not None and opts.lmbda is not None:
        raise TaskError("give --quality or --lambda, not both")
    if opts.quality is not None and not 1 <= opts.quality <= 8:
        raise TaskError(f"--quality must be in 1..8, got {opts.quality}")
    if opts.lmbda is not None and not (math.isfinite(opts.lmbda) and opts.lmbda > 0):
        raise TaskError(f"--lambda must be a finite number > 0 (typically 1e-4 .. 2e-2), got {opts.lmbda}")
    if opts.iterations is not None and opts.iterations < 1:
        raise TaskError(f"--iterations must be >= 1, got {opts.iterations}")
    _check_input(source)
    _check_output(output, source, "the .tvc file")
    if opts.recon:
        _check_output(opts.recon, source, "--recon")
        if Path(opts.recon).resolve() == Path(output).resolve():
            raise TaskError(f"--recon {opts.recon} is the .tvc output file; give another path")
    lmbda = opts.lmbda if opts.lmbda is not None else lambda_for_quality(opts.quality or 5)
    overrides = [
        f"model.lmbda={lmbda}",
        f"model.seed={opts.seed}",
        *(f"model.{kv}" for kv in opts.sets or []),
    ]
    if opts.iterations is not None:
        overrides.append(f"model.iterations={opts.iterations}")
    run_cfg = make_run_config(opts.method, opts.preset, overrides=overrides)
    try:
        method = registry.get(opts.method).cls(run_cfg.model)
    except ValueError as e:
        raise TaskError(f"invalid codec setting (--set / --preset {opts.preset}): {e}") from None
    try:
        image = load_image(source)
    except ImageReadError as e:
        raise TaskError(str(e)) from e
    h, w = image.shape[:2]
    cfg = method.config
    try:
        bs.check_size(h, w, cfg.n_grids, tuple(cfg.synthesis))
    except ValueError as e:
        raise TaskError(f"{source}: {e}") from None
    log.info("encoding %s (%dx%d) with %s, lambda=%g, %d iterations", source, w, h, opts.method, lmbda,
             method.config.iterations)  # fmt: skip
    res = method.encode(image, progress=opts.progress)
    atomic_write_bytes(output, res.data)
    x8 = np.round(res.x_hat.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    if opts.recon:
        save_png(opts.recon, x8)
    st = res.stats
    return (f"{source} -> {output}: {len(res.data)} bytes, {st['bpp']:.4f} bpp, PSNR {psnr(image, x8):.2f} dB "
            f"(RGB), encoded in {st['encode_seconds']:.1f} s ({int(st['iterations'])} iterations)")  # fmt: skip


class CodecTask(Task):
    """Neural image compression (one overfitted network per image)."""

    name = "codec"
    method_tasks = ("codec",)
    trains = False
    #: the codec ``trustvis codec encode`` uses without --method
    default_method = "eqlinr"

    def instead(self, command: str) -> str:
        return (
            "a codec overfits one network per image: `trustvis codec encode IMAGE OUT.tvc --method NAME`, "
            "`trustvis codec decode OUT.tvc IMAGE.png`; `trustvis bench codec` measures rate-distortion"
        )

    def check_method(self, spec: Any, command: str) -> None:
        if command in ("train", "predict", "eval"):
            raise TaskError(f"{spec.name} is a codec; {self.instead(command)}")


register_task(CodecTask())
