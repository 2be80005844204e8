"""``trustvis bench codec``: EQLINR and COOL-CHIC against JPEG, WebP, AVIF and JPEG 2000, rate-distortion.

Protocol::

    Kodak-like set (lossless real photos, 768x512; --quick: their centre 256x256 crops)
      for each codec and each setting (neural: lambda; Pillow: quality / target rate)
        for each image: encode -> file bytes -> decode
          bpp = 8 * file size / pixels (headers included), PSNR (RGB, 8-bit), MS-SSIM, encode / decode time
          neural codecs: check that decoding gives exactly the encoder's reconstruction
      curves: per setting the mean bpp and the mean per-image PSNR / MS-SSIM (CompressAI's convention)
      BD-rate (PCHIP, log rate over the overlapping quality range) of every codec against JPEG and AVIF,
      and of EQLINR against COOL-CHIC, on PSNR and on MS-SSIM in dB (−10·log10(1 − MS-SSIM))
      speed (--no-speed skips it): decode time / one synthesis pass at 256x256, 512x512, 768x512, and one
      overfitting iteration / one synthesis forward + backward + Adam step, each neural codec, in this run
      --ablation: also EQLINR with one of its additions set back to COOL-CHIC's choice (``VARIANTS``),
      each variant's BD-rate against EQLINR and COOL-CHIC
    points.jsonl (one line per image and setting; a re-run resumes from it), results.json, results.md,
    fig_rd.png (fig_ablation.png), report.html

The neural codecs overfit each image for a fixed iteration budget, far below the papers' (COOL-CHIC v1
suggests up to 1e6 iterations, C3 110k): on a CPU the quick protocol measures them at a budget a user can
afford, and says so.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from trustvis.bench.common import payload_header, run_line, write_results
from trustvis.bench.options import BenchOptions

log = logging.getLogger(__name__)

NEURAL = ("eqlinr", "coolchic")
ANCHORS = ("jpeg", "avif")
# Leave-one-out ablation of EQLINR (``--ablation``): EQLINR with one of its additions over COOL-CHIC set
# back to COOL-CHIC's choice: variant -> (method, model config values, what it removes).
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "eqlinr-no-lem": ("eqlinr", {"lem_layers": 0}, "local enhancement CNN (LEM)"),
    "eqlinr-no-sga": ("eqlinr", {"proxy": "noise"}, "SGA phase, with its temperature penalty (noise → STE)"),
    "eqlinr-no-tempreg": ("eqlinr", {"temp_reg": 0}, "dynamic temperature regularisation"),
    "eqlinr-laplace": ("eqlinr", {"distribution": "laplace"}, "Gaussian context model (Laplace instead)"),
}


def variant_overrides(variant: str) -> list[str]:
    """A variant's model values as ``model.key=value`` lines (how points.jsonl and results.md record them)."""
    return [f"model.{k}={v}" for k, v in VARIANTS[variant][1].items()]


# a codec against the methods it is compared with in the same run (beyond the JPEG / AVIF anchors)
BASELINE: dict[str, tuple[str, ...]] = {
    "eqlinr": ("coolchic",),
    **{v: ("eqlinr", "coolchic") for v in VARIANTS},
}

PROTOCOLS = {
    "quick": {"lambdas": (4e-3, 1e-3, 2.5e-4), "iterations": 800, "preset": "quick"},
    "full": {"lambdas": (1e-2, 4e-3, 1e-3, 4e-4, 1e-4), "iterations": 3000, "preset": "default"},
}


def _neural(codec: str) -> bool:
    return codec in NEURAL or codec in VARIANTS


def ms_ssim_db(v: float) -> float:
    """MS-SSIM on a dB scale, ``−10·log10(1 − v)`` (the usual way to plot and BD it)."""
    return -10 * math.log10(max(1 - v, 1e-10))


def _neural_point(
    name: str, preset: str, lmbda: float, iterations: int, seed: int, image: np.ndarray
) -> dict:
    from trustvis import registry
    from trustvis.config import make_run_config

    name, extra, _ = VARIANTS.get(name, (name, {}, ""))
    model = {**extra, "lmbda": lmbda, "iterations": iterations, "seed": seed}
    method = registry.get(name).cls(make_run_config(name, preset, model=model).model)
    res = method.encode(image, progress=False)  # the bench's own bar counts the encodes
    t0 = time.perf_counter()
    x = method.decompress(res.data)
    dec_s = time.perf_counter() - t0
    recon = np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    exact = bool(np.array_equal(recon, np.round(res.x_hat.permute(1, 2, 0).numpy() * 255).astype(np.uint8)))
    return {"data": res.data, "recon": recon, "encode_seconds": res.stats["encode_seconds"],
            "decode_seconds": dec_s, "exact": exact, "estimated_bpp": res.stats["estimated_bpp"]}  # fmt: skip


def _classic_point(name: str, quality: float, image: np.ndarray) -> dict:
    from trustvis.methods.codec.classic import decode_classic, encode_classic

    t0 = time.perf_counter()
    data = encode_classic(name, image, quality)
    t1 = time.perf_counter()
    recon = decode_classic(data)
    return {
        "data": data,
        "recon": recon,
        "encode_seconds": t1 - t0,
        "decode_seconds": time.perf_counter() - t1,
    }


#: image sizes (height, width) of the decode-speed measurement: decode time should grow at most with the pixels
SPEED_SIZES = ((256, 256), (512, 512), (512, 768))
SPEED_ITERATIONS = 100  # the encode budget of the files the decode timing reads (enough for non-zero latents)
SPEED_LAMBDA = 2e-4  # a rate at which every latent grid holds symbols
SPEED_ENCODE_SIZE = (256, 256)  # (height, width) of the encode-iteration timing


def _median_seconds(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _range_coder_seconds(data: bytes, model: Any, grids: list) -> float:
    """Median seconds the range decoder alone takes for a file's latents: every symbol in one call with its (μ, scale)
    given — the part of decoding that no change to the loop around the coder can remove."""
    import constriction

    from trustvis.methods.codec import bitstream as bs
    from trustvis.methods.codec.entropy import arm_to_integers

    header, _ = bs.unpack(data)
    m = max(header.grid_max)
    if m == 0:
        return 0.0
    ints = arm_to_integers(model.arm, header.k_arm)
    everything = sum(g.numel() for g in grids)
    [(symbols, mu, scale)] = bs.latent_symbols(grids, list(header.grid_max), ints, header.k_arm, header.arm_rowcol,
                                               chunk=everything)  # fmt: skip
    fam = bs.quantised_family(header.distribution, -m, m)
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(symbols, fam, mu, scale)
    words = encoder.get_compressed()
    return _median_seconds(lambda: constriction.stream.queue.RangeDecoder(words).decode(fam, mu, scale), 5)


def _speed_image(h: int, w: int) -> np.ndarray:
    """A real photo (scikit-image's astronaut) resized to h x w."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BICUBIC))


def codec_speed(codec: str, preset: str, seed: int = 0, iterations: int = 30) -> dict[str, Any]:
    """Speed of a neural codec as ratios to its own networks, measured in one process:

    - decode: seconds to decode a ``.tvc`` file over seconds of one synthesis pass of the same file's networks and
      latents, for each of :data:`SPEED_SIZES` (and the decode seconds per pixel: linear or better in the pixels);
    - encode: seconds per overfitting iteration (quantisation proxy, synthesis, rate under the ARM, backward, Adam)
      over seconds of the synthesis forward + backward + Adam step alone, at :data:`SPEED_ENCODE_SIZE`, ``iterations``
      steps each.
    """
    from dataclasses import replace

    import torch
    import torch.nn.functional as F

    from trustvis import registry
    from trustvis.config import make_run_config
    from trustvis.methods.codec import coolchic

    name, extra, _ = VARIANTS.get(codec, (codec, {}, ""))
    cfg = make_run_config(name, preset, model={**extra, "lmbda": SPEED_LAMBDA, "iterations": SPEED_ITERATIONS,
                                                "seed": seed}).model  # fmt: skip
    method = registry.get(name).cls(cfg)
    sizes = []
    for h, w in SPEED_SIZES:
        data = method.encode(_speed_image(h, w), progress=False).data
        model, grids = coolchic.decode_parts(data)
        synth = _median_seconds(lambda m=model, g=grids: coolchic.reconstruct(m, g), 21)
        dec = _median_seconds(lambda d=data: coolchic.decode(d), 5)
        coder = _range_coder_seconds(data, model, grids)
        sizes.append({"height": h, "width": w, "decode_seconds": dec, "synthesis_seconds": synth,
                      "decode_ratio": dec / synth, "decode_us_per_pixel": 1e6 * dec / (h * w),
                      "range_coder_seconds": coder, "range_coder_ratio": coder / synth})  # fmt: skip
    eh, ew = SPEED_ENCODE_SIZE
    x = coolchic.as_image_tensor(_speed_image(eh, ew))[None]
    torch.manual_seed(seed)
    model = coolchic.OverfitCodec(eh, ew, cfg.n_grids, tuple(cfg.synthesis), cfg.lem_layers, cfg.arm_rowcol,
                                  tuple(cfg.arm_hidden))  # fmt: skip
    fit_cfg = replace(cfg, iterations=iterations, ste_fraction=0.0)  # no hard-loss evaluations
    t0 = time.perf_counter()
    coolchic.overfit(model, x, fit_cfg)
    per_iteration = (time.perf_counter() - t0) / iterations
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def synthesis_step() -> None:
        loss = F.mse_loss(model.synthesize(list(model.latents)), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def rate_step() -> None:  # the ARM's share: the rate of the latents under it, forward and backward
        rate = model.rate_bits(list(model.latents), cfg.distribution)
        opt.zero_grad(set_to_none=True)
        rate.backward()

    base = _median_seconds(synthesis_step, iterations)
    rate = _median_seconds(rate_step, iterations)
    return {"sizes": sizes, "encode_iteration_seconds": per_iteration, "synthesis_step_seconds": base,
            "encode_iteration_ratio": per_iteration / base, "rate_step_seconds": rate, "rate_step_ratio": rate / base,
            "iterations_timed": iterations}  # fmt: skip


def run_codec_bench(
    opts: BenchOptions,
    codecs: list[str] | None = None,
    images: int | None = None,
    iterations: int | None = None,
    lambdas: list[float] | None = None,
    folder: str | None = None,
    ablation: bool = False,
    speed: bool = True,
) -> Path:
    """Run the protocol; returns the output folder. ``opts.seed`` seeds the neural codecs; no training run
    is made, so ``opts.steps``, ``preset``, ``device`` and ``overrides`` are not used. ``folder``: a user's
    Kodak-style folder of images instead of the built-in set; ``images`` limits the number of images (the
    first ones); ``ablation`` adds EQLINR and its leave-one-out ``VARIANTS`` to the codecs (points already
    in the folder's points.jsonl, e.g. from a plain run, are reused); ``speed``: also :func:`codec_speed` of each
    neural codec (about half a minute each)."""
    from tqdm.auto import tqdm

    from trustvis.data.kodaklike import load_image_folder, load_kodaklike
    from trustvis.methods.codec.classic import CLASSIC_CODECS, available_codecs, default_qualities
    from trustvis.metrics.compression import average_rd, bpp, ms_ssim, psnr

    quick, mode, seed, progress = opts.quick, opts.mode, opts.seed, opts.progress
    proto = PROTOCOLS[mode]
    codecs = list(codecs or [*NEURAL, *CLASSIC_CODECS])
    if ablation:
        codecs += [c for c in ("eqlinr", *VARIANTS) if c not in codecs]
    unknown = [c for c in codecs if c not in (*NEURAL, *VARIANTS, *CLASSIC_CODECS)]
    if unknown:
        raise ValueError(f"Unknown codec(s) {unknown}; choose from {[*NEURAL, *VARIANTS, *CLASSIC_CODECS]}")
    classic = available_codecs([c for c in codecs if c in CLASSIC_CODECS])
    codecs = [c for c in codecs if _neural(c) or c in classic]
    iterations = int(iterations or proto["iterations"])
    lambdas = [float(v) for v in (lambdas or proto["lambdas"])]
    if folder:
        data = load_image_folder(folder)
        if quick:
            from trustvis.data.kodaklike import QUICK_SIZE, centre_crop

            data = [
                (n, centre_crop(im, QUICK_SIZE) if min(im.shape[:2]) > QUICK_SIZE else im) for n, im in data
            ]
    else:
        data = load_kodaklike(quick=quick)
    data = data[: images or None]
    if not data:
        raise ValueError("No images to compress")
    out = opts.output("codec")
    points_file = out / "points.jsonl"
    done: dict[tuple, dict] = {}
    old_text = points_file.read_text(encoding="utf-8") if points_file.is_file() else ""
    for line in old_text.splitlines():
        if not line.strip():
            continue
        try:
            p = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by an interrupted run: that point is redone
            log.warning("skipping an incomplete line of %s", points_file)
            continue
        done[(p["codec"], p["setting"], p["image"], p.get("iterations"))] = p
    t_start = time.perf_counter()
    jobs = [(c, s) for c in codecs for s in (lambdas if _neural(c) else default_qualities(c, quick=quick))]
    total = len(jobs) * len(data)
    bar = tqdm(total=total, desc="codec bench", disable=not progress, dynamic_ncols=True)
    points: list[dict] = []
    reused = 0
    with points_file.open("a", encoding="utf-8") as fh:
        if old_text and not old_text.endswith("\n"):
            fh.write("\n")  # close a line cut short by an interrupted run
        for codec, setting in jobs:
            its = iterations if _neural(codec) else None
            for name, image in data:
                key = (codec, setting, name, its)
                if key in done:
                    points.append(done[key])
                    reused += 1
                    bar.update(1)
                    continue
                bar.set_postfix(codec=codec, setting=f"{setting:g}", image=name[:20])
                if _neural(codec):
                    r = _neural_point(codec, proto["preset"], setting, iterations, seed, image)
                else:
                    r = _classic_point(codec, setting, image)
                h, w = image.shape[:2]
                p = {"codec": codec, "setting": setting, "image": name, "iterations": its, "height": h, "width": w,
                     "bytes": len(r["data"]), "bpp": bpp(len(r["data"]), h, w), "psnr": psnr(image, r["recon"]),
                     "ms_ssim": ms_ssim(image, r["recon"]), "encode_seconds": r["encode_seconds"],
                     "decode_seconds": r["decode_seconds"]}  # fmt: skip
                for k in ("exact", "estimated_bpp"):
                    if k in r:
                        p[k] = r[k]
                if codec in VARIANTS:
                    p["overrides"] = variant_overrides(codec)
                fh.write(json.dumps(p) + "\n")
                fh.flush()
                points.append(p)
                bar.update(1)
    bar.close()

    curves: dict[str, list[dict]] = {}
    timing: dict[str, dict[str, float]] = {}
    for codec in codecs:
        pts = [{**p, "ms_ssim_db": ms_ssim_db(p["ms_ssim"])} for p in points if p["codec"] == codec]
        rows = average_rd(pts, key="setting")
        for row in rows:  # the mean MS-SSIM in dB of the images, like the PSNR
            row["ms_ssim_db"] = float(
                np.mean([q["ms_ssim_db"] for q in pts if q["setting"] == row["setting"]])
            )
        curves[codec] = rows
        timing[codec] = {
            "encode_seconds": float(np.mean([p["encode_seconds"] for p in pts])),
            "decode_seconds": float(np.mean([p["decode_seconds"] for p in pts])),
        }
        if _neural(codec):
            timing[codec]["all_exact"] = bool(all(p.get("exact", False) for p in pts))
    bd = bd_table(curves)
    speeds = {}
    for codec in (c for c in codecs if c in NEURAL and speed):
        log.info(
            "timing %s: decode against its synthesis pass, an encode iteration against a synthesis step",
            codec,
        )
        speeds[codec] = codec_speed(codec, proto["preset"], seed)
    fig = out / "fig_rd.png"
    from trustvis.report.plots import plot_rd_curves

    main = {c: v for c, v in curves.items() if c not in VARIANTS}
    figures = []
    if main:
        plot_rd_curves(main, fig, title=f"Kodak-like set ({len(data)} images, {mode})")
        figures.append({"file": fig.name, "caption": "Rate-distortion: mean bpp vs mean PSNR and MS-SSIM"})
    if any(c in VARIANTS for c in curves):
        abl = {c: v for c, v in curves.items() if c in ("eqlinr", "coolchic", *VARIANTS)}
        plot_rd_curves(abl, out / "fig_ablation.png",
                       title=f"EQLINR leave-one-out ablation ({len(data)} images, {mode}, {iterations} iterations)")  # fmt: skip
        figures.append({"file": "fig_ablation.png", "caption": "EQLINR with one addition removed at a time"})
    payload = {
        **payload_header("codec", opts.command_or("codec"), "cpu"),
        "data": {
            "name": folder or "kodak-like",
            "size": mode,
            "images": [n for n, _ in data],
            "shape": list(data[0][1].shape[:2]),
        },  # fmt: skip
        "seed": seed,
        "iterations": iterations,
        "lambdas": lambdas,
        "codecs": codecs,
        "curves": curves,
        "bd_rate": bd,
        "timing": timing,
        "speed": speeds,
        "figures": figures,
        "bench_seconds": time.perf_counter() - t_start,
        "points_reused": reused,  # read back from points.jsonl, not timed by this invocation
        "points_total": total,
    }
    return write_results(out, payload, results_markdown)


def bd_table(curves: dict[str, list[dict]]) -> dict[str, dict[str, dict[str, float]]]:
    """BD-rate (%) of every codec against each anchor present, and of a seed method against its baseline
    (``BASELINE``), on PSNR and on MS-SSIM (dB)."""
    import warnings

    from trustvis.metrics.compression import bd_rate

    out: dict[str, dict[str, dict[str, float]]] = {}
    for codec, rows in curves.items():
        out[codec] = {}
        for anchor in (*ANCHORS, *BASELINE.get(codec, ())):
            if anchor not in curves or anchor == codec:
                continue
            a = curves[anchor]
            out[codec][anchor] = {}
            for metric, q in (("psnr", "psnr"), ("ms_ssim", "ms_ssim_db")):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        v = bd_rate([r["bpp"] for r in rows], [r[q] for r in rows],
                                    [r["bpp"] for r in a], [r[q] for r in a])  # fmt: skip
                    except ValueError as e:  # a degenerate curve must not lose a finished bench
                        log.warning("BD-rate of %s against %s (%s) is n/a: %s", codec, anchor, metric, e)
                        v = math.nan
                out[codec][anchor][metric] = v
    return out


def results_markdown(res: dict[str, Any]) -> str:
    """The Markdown summary of a codec bench ``results.json`` payload."""
    from trustvis.report.tables import markdown_table

    def f(v: float, spec: str = ".1f") -> str:
        return "n/a" if v is None or not math.isfinite(v) else format(v, spec)

    def pct(v: float) -> str:
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.1f} %"

    anchors = [a for a in ANCHORS if a in res["curves"]]
    lines = [f"# Codec bench ({res['data']['size']})", "", f"Command: `{res['command']}`  ", f"{run_line(res)}  ",
             f"Images: {len(res['data']['images'])} ({res['data']['name']}, {res['data']['shape'][1]}x"
             f"{res['data']['shape'][0]}); neural codecs: {res['iterations']} iterations per image, lambda "
             f"{', '.join(f'{v:g}' for v in res['lambdas'])}. bpp from the real file size; PSNR on 8-bit RGB, "
             "averaged per image (mean of per-image PSNRs); BD-rate: PCHIP on log rate over the overlapping "
             "quality range, negative = fewer bits than the anchor.", ""]  # fmt: skip
    header = ["codec", *(f"BD-rate vs {a} (PSNR)" for a in anchors), *(f"BD-rate vs {a} (MS-SSIM)" for a in anchors),
              "bpp range", "PSNR range", "encode s/img", "decode s/img"]  # fmt: skip
    rows = []
    for codec, pts in res["curves"].items():
        bd = res["bd_rate"].get(codec, {})
        t = res["timing"][codec]
        rows.append([codec, *(pct(bd[a]["psnr"]) if a in bd else "0 (anchor)" for a in anchors),
                     *(pct(bd[a]["ms_ssim"]) if a in bd else "0 (anchor)" for a in anchors),
                     f"{pts[0]['bpp']:.2f}-{pts[-1]['bpp']:.2f}", f"{pts[0]['psnr']:.1f}-{pts[-1]['psnr']:.1f}",
                     f(t["encode_seconds"], ".3g"), f(t["decode_seconds"], ".3g")])  # fmt: skip
    lines += [markdown_table(header, rows), ""]
    lines += ["Mean rate-distortion points:", ""]
    rows = [[codec, f"{p['setting']:g}", f"{p['bpp']:.3f}", f"{p['psnr']:.2f}", f"{p['ms_ssim']:.4f}"]
            for codec, pts in res["curves"].items() for p in pts]  # fmt: skip
    lines += [markdown_table(["codec", "setting", "bpp", "PSNR dB", "MS-SSIM"], rows), ""]
    for codec in res["timing"]:
        if _neural(codec):
            ok = res["timing"][codec].get("all_exact")
            lines.append(
                f"- {codec}: every file decoded to exactly the encoder's reconstruction: {'yes' if ok else 'NO'}."
            )
    bd = res["bd_rate"].get("eqlinr", {}).get("coolchic")
    if bd:
        lines.append(f"- eqlinr against coolchic (the method it extends): BD-rate {f(bd['psnr'])} % on PSNR, "
                     f"{f(bd['ms_ssim'])} % on MS-SSIM (negative = fewer bits for the same quality).")  # fmt: skip
    speed = res.get("speed") or {}
    if speed:
        lines += ["", "## Speed: decoding and overfitting at the cost of the networks", "",
                  "Measured in this run, one process: decode = seconds to decode a `.tvc` file / seconds of one "
                  "synthesis pass of its networks and latents (files of a photo encoded at lambda "
                  f"{SPEED_LAMBDA:g}, {SPEED_ITERATIONS} iterations); encode iteration = seconds of one overfitting "
                  "step (proxy, synthesis, ARM rate, backward, Adam) / seconds of the synthesis forward + backward "
                  f"+ Adam step alone, at {SPEED_ENCODE_SIZE[1]}x{SPEED_ENCODE_SIZE[0]}. Goals of issue 26: decode at most "
                  "5x, an iteration at most 1.5x. Range decoder alone = the file's latent symbols decoded in one "
                  "call with their (μ, scale) given, over the same synthesis pass: what decoding costs with this "
                  "entropy coder before any ARM or loop. ARM rate alone = the rate of the latents under the ARM, "
                  "forward + backward, over the same synthesis step: the part of an iteration the goal leaves 0.5x "
                  "for.", ""]  # fmt: skip
        head = ["codec", *(f"decode {s['width']}x{s['height']}" for s in next(iter(speed.values()))["sizes"]),
                "decode µs/pixel", "range decoder alone", "encode iteration", "ARM rate alone"]  # fmt: skip
        rows = []
        for codec, sp in speed.items():
            rows.append([codec, *(f"{s['decode_ratio']:.1f}x ({1000 * s['decode_seconds']:.0f} ms)" for s in sp["sizes"]),
                         " / ".join(f"{s['decode_us_per_pixel']:.2f}" for s in sp["sizes"]),
                         " / ".join(f"{s['range_coder_ratio']:.1f}x" for s in sp["sizes"]),
                         f"{sp['encode_iteration_ratio']:.2f}x ({1000 * sp['encode_iteration_seconds']:.0f} ms)",
                         f"{sp['rate_step_ratio']:.2f}x"])  # fmt: skip
        lines.append(markdown_table(head, rows))
    variants = [v for v in VARIANTS if v in res["curves"]]
    if variants:
        lines += ["", "## Ablation: EQLINR with one addition set back to COOL-CHIC's choice", "",
                  "BD-rate of each variant against the full EQLINR (positive = the removed part was saving bits) "
                  "and against COOL-CHIC, same images, lambdas and iterations. Figure: fig_ablation.png.", ""]  # fmt: skip
        rows = []
        for v in variants:
            bd = res["bd_rate"].get(v, {})
            rows.append([v, VARIANTS[v][2], ", ".join(variant_overrides(v)),
                         *(pct(bd[a][m]) if a in bd else "n/a" for a in ("eqlinr", "coolchic")
                           for m in ("psnr", "ms_ssim"))])  # fmt: skip
        lines.append(markdown_table(["variant", "removes", "overrides", "vs eqlinr (PSNR)", "vs eqlinr (MS-SSIM)",
                                     "vs coolchic (PSNR)", "vs coolchic (MS-SSIM)"], rows))  # fmt: skip
    reused = res.get("points_reused", 0)
    timed = (f" ({reused} of {res['points_total']} points read back from points.jsonl, not timed by this run; "
             "the encode/decode times are those measured when each point was made)") if reused else ""  # fmt: skip
    figs = ", ".join(fg["file"] for fg in res.get("figures", [])) or "none"
    lines += ["", f"Total bench time: {res['bench_seconds']:.0f} s{timed}. Figures: {figs}."]
    return "\n".join(lines) + "\n"
