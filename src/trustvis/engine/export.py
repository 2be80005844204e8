"""Export the network of a trained method as an ONNX or TorchScript file, checked against torch.

::

    method (a loaded run) ──► method.export_module()     image (N,3,H,W) float32 in [0,1] -> tuple of outputs
        ├─► onnx:         torch.onnx.export (torch.export / dynamo exporter); the batch axis N is dynamic
        └─► torchscript:  torch.jit.trace (eval mode, no grad); the batch axis follows the input
      ──► FILE, written to a temporary sibling first
      ──► check: the file, run by onnxruntime or torch.jit.load on a new batch of another size, gives torch's
          outputs within 1e-4 (|Δ| <= 1e-4 + 1e-4·|torch|); otherwise ExportError and no FILE
      ──► FILE is renamed into place; FILE.json, the sidecar: input, outputs, method, task (+ what the caller
          adds: threshold, class names, how to shape a photo)

What the graph takes: the image as the method's eval transform hands it to the network, RGB, channels first,
float32 in [0, 1] (uint8 / 255), at the exported height and width. There is no mean/std to apply outside
the graph (the sidecar says mean 0, std 1): each network normalises its input itself. Height and width are
fixed when the graph is made (the BiHPF filters, D4's DCT statistics and the anomaly methods' Gaussian
statistics are built for one size); export again with another ``image_size`` for another size.

Which module is exported is the method's (:meth:`trustvis.methods.base.Method.export_module`); a method
without an image network (codecs, calibrators) raises :class:`~trustvis.methods.base.NotExportable`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

import trustvis
from trustvis.atomic import atomic_write_json

log = logging.getLogger(__name__)

#: export format -> the file suffix used when the caller names no file
FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
#: the ``format`` entry of every sidecar
SIDECAR_FORMAT = "trustvis-export/1"
#: largest allowed |exported − torch| is ATOL + RTOL·|torch|
ATOL = RTOL = 1e-4
#: batch sizes of the traced example and of the check (different, so a batch size baked into the graph fails)
TRACE_BATCH, CHECK_BATCH = 2, 3
#: loggers of the exporters that report every optimisation pass at INFO level
_CHATTY = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._export")


class ExportError(ValueError):
    """The export failed or its file does not reproduce torch's outputs; the message says which and why."""


def sidecar_path(path: str | Path) -> Path:
    """The JSON description next to an exported file: ``FILE.json`` (``model.onnx`` -> ``model.onnx.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _side(image_size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h < 1 or w < 1:
        raise ExportError(f"image size must be positive, got {h}x{w}")
    return int(h), int(w)


def _reason(e: BaseException) -> str:
    """The most specific line of an exporter's error: the first line of the innermost cause, ANSI-free."""
    lines = []
    while e is not None:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
        lines.append(first if first.startswith(type(e).__name__) else f"{type(e).__name__}: {first}")
        e = e.__cause__ or (e.__context__ if not e.__suppress_context__ else None)
    return lines[-1] if len(lines) == 1 else f"{lines[0]} ({lines[-1]})"


def _need(modules: list[str], fmt: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(
            f"{fmt} export needs the package(s) {', '.join(missing)}: pip install {' '.join(missing)} "
            "(or install trustvis with the export extra)"
        )


@contextlib.contextmanager
def _quiet():
    """The exporters' deprecation and tracer warnings, progress lines and graph dumps say nothing to a user
    (the check after the export does); they are logged at debug level (``trustvis -v``)."""
    buf = io.StringIO()
    loggers = [logging.getLogger(n) for n in _CHATTY]
    levels = [lg.level for lg in loggers]
    if not log.isEnabledFor(logging.DEBUG):
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if buf.getvalue().strip():
            log.debug("exporter output:\n%s", buf.getvalue())


def _write_onnx(
    graph: torch.nn.Module, x: torch.Tensor, names: list[str], tmp: Path, opset: int | None
) -> None:
    _need(["onnx", "onnxscript"], "ONNX")
    batch = torch.export.Dim("batch", min=1)
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            graph,
            (x,),
            str(tmp),
            input_names=["image"],
            output_names=names,
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def _write_torchscript(graph: torch.nn.Module, x: torch.Tensor, tmp: Path) -> None:
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(graph, (x,), check_trace=False)
        torch.jit.save(traced, str(tmp))


def _run_file(fmt: str, path: Path, x: torch.Tensor) -> list[torch.Tensor] | None:
    """The outputs of the exported file on ``x`` (CPU), or None when onnxruntime is not installed."""
    if fmt == "onnx":
        if importlib.util.find_spec("onnxruntime") is None:
            return None
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return [torch.from_numpy(a) for a in session.run(None, {"image": x.cpu().numpy()})]
    with _quiet(), torch.no_grad():
        loaded = torch.jit.load(str(path), map_location="cpu")
        return [t.cpu() for t in loaded(x.cpu())]


def _as_tuple(out: Any, names: list[str], who: str) -> list[torch.Tensor]:
    out = list(out) if isinstance(out, tuple | list) else [out]
    if len(out) != len(names) or not all(torch.is_tensor(t) for t in out):
        raise ExportError(f"{who}: its export module returned {len(out)} value(s), expected tensors {names}")
    return out


def export_method(
    method: Any,
    path: str | Path,
    fmt: str = "onnx",
    image_size: int | tuple[int, int] | None = None,
    info: dict[str, Any] | None = None,
    check: bool = True,
    opset: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``method``'s network (:meth:`Method.export_module`) to ``path`` and write ``path``.json.

    Args:
        method: a built, loaded method (``trustvis.engine.load_method``); it is put in eval mode.
        path: the file to write (replaced if it exists; written only when the check passes).
        fmt: ``onnx`` or ``torchscript``.
        image_size: the input side (or (height, width)); None = the method's own
            (:meth:`Method.export_image_size`), an error when it reads any size.
        info: entries added to the sidecar (the run, its threshold, class names, how to shape a photo).
        check: run the file (onnxruntime / torch.jit.load) on a new batch and compare with torch.
        opset: ONNX opset (None: the exporter's default).
        seed: seeds the random example and check batches (uniform in [0, 1]).

    Returns:
        The sidecar (also written to :func:`sidecar_path`).

    Raises:
        NotExportable: the method has no exportable image network (the message says why).
        ExportError: an unknown format, a missing package, a failing exporter, or a file that does not
            reproduce torch's outputs.
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose from {list(FORMATS)}")
    who = method.method_name or type(method).__name__
    graph = method.export_module()  # NotExportable for codecs, calibrators, ...
    names = list(method.export_outputs())
    size = image_size if image_size is not None else method.export_image_size()
    if size is None:
        raise ExportError(f"{who} reads images of any size: give the size to export for (--image-size N)")
    h, w = _side(size)
    method.eval()
    graph.eval()
    dev = method.device
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(TRACE_BATCH, 3, h, w, generator=g).to(dev)
    x_check = torch.rand(CHECK_BATCH, 3, h, w, generator=g).to(dev)
    try:
        with torch.no_grad():
            _as_tuple(graph(x), names, who)
            expected = [t.float().cpu() for t in _as_tuple(graph(x_check), names, who)]
    except ExportError:
        raise
    except Exception as e:  # the method refuses this input (e.g. a size it was not built for)
        raise ExportError(f"{who} cannot run on a {h}x{w} input: {_reason(e)}") from None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            if fmt == "onnx":
                _write_onnx(graph, x, names, tmp, opset)
            else:
                _write_torchscript(graph, x, tmp)
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"{who} cannot be exported to {fmt}: {_reason(e)}") from None
        result: dict[str, Any] | None = None
        if check:
            try:
                got = _run_file(fmt, tmp, x_check.cpu())
            except Exception as e:
                raise ExportError(f"{who}: the exported {fmt} file does not run: {_reason(e)}") from None
            if got is None:
                log.warning(
                    "onnxruntime is not installed: the ONNX file was not checked (pip install onnxruntime)"
                )
            else:
                result = _compare(who, fmt, names, got, expected)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()

    sidecar = {
        "format": SIDECAR_FORMAT,
        "file": path.name,
        "export_format": fmt,
        "method": method.method_name,
        "task": method.task,
        **(info or {}),
        "input": {
            "name": "image",
            "shape": ["N", 3, h, w],
            "dtype": "float32",
            "layout": "NCHW, RGB",
            "range": [0.0, 1.0],
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "normalization": "pixel values / 255 only; the graph applies the network's own normalisation",
        },
        "outputs": [
            {"name": n, "shape": ["N", *t.shape[1:]], "dtype": "float32"} for n, t in zip(names, expected)
        ],
        "dynamic_axes": {"N": "batch size, any >= 1"},
        "check": result,
        "trustvis_version": trustvis.__version__,
        "torch_version": torch.__version__,
    }
    atomic_write_json(sidecar_path(path), sidecar)
    return sidecar


def _compare(
    who: str, fmt: str, names: list[str], got: list[torch.Tensor], expected: list[torch.Tensor]
) -> dict[str, Any]:
    """The check entry of the sidecar; ExportError when an output differs from torch's."""
    if len(got) != len(expected):
        raise ExportError(f"{who}: the {fmt} file returns {len(got)} output(s), torch {len(expected)}")
    worst = 0.0
    for n, a, b in zip(names, got, expected):
        if tuple(a.shape) != tuple(b.shape):
            raise ExportError(f"{who}: {fmt} output {n!r} has shape {tuple(a.shape)}, torch {tuple(b.shape)}")
        a = a.float()
        if not torch.isfinite(a).all() or not torch.allclose(a, b, rtol=RTOL, atol=ATOL):
            d = float((a - b).abs().nan_to_num(float("inf")).max())
            raise ExportError(
                f"{who}: the {fmt} file's {n!r} differs from torch's by up to {d:.3g} (allowed {ATOL} + "
                f"{RTOL}·|torch|) on a batch of {len(b)}; the graph is not faithful"
            )
        worst = max(worst, float((a - b).abs().max()) if a.numel() else 0.0)
    return {"batch": len(expected[0]), "max_abs_diff": worst, "atol": ATOL, "rtol": RTOL}


__all__ = ["FORMATS", "SIDECAR_FORMAT", "ExportError", "export_method", "sidecar_path"]
