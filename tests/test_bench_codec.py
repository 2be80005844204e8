"""The codec bench end to end on two tiny real-photo crops (few iterations) through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from trustvis.cli import main


@pytest.fixture()
def folder(tmp_path):
    from skimage import data

    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(data.astronaut()[100:140, 150:196]).save(d / "astronaut.png")
    Image.fromarray(data.coffee()[60:100, 200:246]).save(d / "coffee.png")
    return d


def _argv(out, folder) -> list[str]:
    return ["-q", "bench", "codec", "--quick", "--methods", "coolchic,jpeg,avif", "--data-dir", str(folder), "--iterations", "6",
            "--lambdas", "1e-2,1e-3", "--out", str(out), "--no-speed"]  # fmt: skip


def test_bench_codec_writes_curves_bd_rates_and_the_rd_figure(tmp_path, folder):
    out = tmp_path / "codec"
    assert main(_argv(out, folder)) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["curves"]) == {"coolchic", "jpeg", "avif"}
    for pts in res["curves"].values():
        assert all(p["n_images"] == 2 and p["bpp"] > 0 for p in pts)
        assert [p["bpp"] for p in pts] == sorted(p["bpp"] for p in pts)
    assert res["timing"]["coolchic"]["all_exact"] is True
    assert "avif" in res["bd_rate"]["jpeg"] and "jpeg" in res["bd_rate"]["avif"]
    assert (out / "fig_rd.png").is_file() and (out / "report.html").is_file()
    md = (out / "results.md").read_text()
    assert "BD-rate vs jpeg (PSNR)" in md and "exactly the encoder's reconstruction: yes" in md
    # every point is on disk, one line each; a second run resumes from them (no re-encoding)
    lines = (out / "points.jsonl").read_text().splitlines()
    n_jpeg = len([json.loads(x) for x in lines if json.loads(x)["codec"] == "jpeg"])
    assert n_jpeg == 2 * len(res["curves"]["jpeg"])
    assert main(_argv(out, folder)) == 0
    assert (out / "points.jsonl").read_text().splitlines() == lines
    again = json.loads((out / "results.json").read_text())
    assert again["curves"] == res["curves"]
    # the resumed run says that its points were read back, not timed by it
    assert res["points_reused"] == 0 and "read back" not in md
    assert again["points_reused"] == again["points_total"] == len(lines)
    assert f"{len(lines)} of {len(lines)} points read back" in (out / "results.md").read_text()
    # an interrupted run can leave half a line: the point is redone, the rest reused
    (out / "points.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert main(_argv(out, folder)) == 0
    assert json.loads((out / "results.json").read_text())["curves"] == res["curves"]
    assert all(
        json.loads(x) for x in (out / "points.jsonl").read_text().splitlines()[-1:]
    )  # a whole line again


def test_bench_codec_rejects_unknown_codecs(tmp_path, folder):
    assert (
        main(["bench", "codec", "--methods", "bpg", "--data-dir", str(folder), "--out", str(tmp_path / "x")])
        == 2
    )


def test_bd_table_against_a_scaled_copy_of_the_anchor():
    from trustvis.bench.codec import bd_table

    jpeg = [{"bpp": b, "psnr": q, "ms_ssim_db": q / 2} for b, q in [(0.25, 28.0), (0.5, 31.0), (1.0, 34.0)]]
    better = [{**p, "bpp": 0.75 * p["bpp"]} for p in jpeg]
    bd = bd_table({"jpeg": jpeg, "x": better})
    assert bd["x"]["jpeg"]["psnr"] == pytest.approx(-25.0) and bd["x"]["jpeg"]["ms_ssim"] == pytest.approx(
        -25.0
    )
    assert np.isnan(
        bd_table({"jpeg": jpeg, "y": [{"bpp": 1.0, "psnr": 50.0, "ms_ssim_db": 30}]})["y"]["jpeg"]["psnr"]
    )
    # a curve that does not move with lambda (two rates, one PSNR) is n/a, not a crash after hours of encoding
    flat = [{"bpp": 0.5, "psnr": 30.0, "ms_ssim_db": 12.0}, {"bpp": 0.51, "psnr": 30.0, "ms_ssim_db": 12.0}]
    assert np.isnan(bd_table({"jpeg": jpeg, "z": flat})["z"]["jpeg"]["ms_ssim"])


def test_the_seed_method_is_measured_against_its_baseline():
    from trustvis.bench.codec import bd_table, results_markdown

    cool = [
        {"bpp": b, "psnr": q, "ms_ssim_db": q / 2, "ms_ssim": 0.9, "setting": b}
        for b, q in [(0.25, 28.0), (0.5, 31.0), (1.0, 34.0)]
    ]
    eq = [{**p, "bpp": 0.8 * p["bpp"]} for p in cool]
    bd = bd_table({"coolchic": cool, "eqlinr": eq})
    assert bd["eqlinr"]["coolchic"]["psnr"] == pytest.approx(-20.0)
    assert "eqlinr" not in bd["coolchic"]  # only the seed method gets the extra column
    res = {"command": "x", "trustvis_version": "0", "created": "d", "environment": {"torch": "0", "device": "cpu", "threads": 1},
           "data": {"size": "quick", "images": ["a"], "name": "n", "shape": [8, 8]}, "iterations": 1,
           "lambdas": [1e-3], "curves": {"coolchic": cool, "eqlinr": eq}, "bd_rate": bd,
           "timing": {c: {"encode_seconds": 1.0, "decode_seconds": 1.0, "all_exact": True} for c in ("coolchic", "eqlinr")},
           "bench_seconds": 3.0}  # fmt: skip
    assert "eqlinr against coolchic (the method it extends): BD-rate -20.0 % on PSNR" in results_markdown(res)


def test_ablation_variants_each_set_one_eqlinr_field_back_to_coolchics():
    from dataclasses import asdict

    from trustvis.bench.codec import VARIANTS, variant_overrides
    from trustvis.config import make_run_config

    full = asdict(make_run_config("eqlinr", "quick").model)
    cool = asdict(make_run_config("coolchic", "quick").model)
    for name, (method, values, _) in VARIANTS.items():
        assert method == "eqlinr"
        cfg = asdict(make_run_config(method, "quick", model=values).model)
        changed = {k for k in cfg if cfg[k] != full[k]}
        assert changed == set(values), name
        assert all(cfg[k] == cool[k] for k in changed), name
        # what points.jsonl and results.md record sets the same values through --set
        assert asdict(make_run_config(method, "quick", overrides=variant_overrides(name)).model) == cfg


def test_bench_codec_ablation_adds_the_variants_and_their_table(tmp_path, folder):
    from trustvis.methods.codec import bitstream as bs

    out = tmp_path / "abl"
    argv = ["-q", "bench", "codec", "--quick", "--methods", "coolchic", "--ablation", "--data-dir", str(folder),
            "--images", "1", "--iterations", "4", "--lambdas", "1e-2,1e-3", "--out", str(out), "--no-speed"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["curves"]) == {"coolchic", "eqlinr", "eqlinr-no-lem", "eqlinr-no-sga", "eqlinr-no-tempreg",
                                  "eqlinr-laplace"}  # fmt: skip
    for v in ("eqlinr-no-lem", "eqlinr-laplace"):
        assert set(res["bd_rate"][v]) == {"eqlinr", "coolchic"}
        assert res["timing"][v]["all_exact"] is True
    pts = [json.loads(x) for x in (out / "points.jsonl").read_text().splitlines()]
    assert {tuple(p["overrides"]) for p in pts if p["codec"] == "eqlinr-laplace"} == {
        ("model.distribution=laplace",)
    }
    assert all("overrides" not in p for p in pts if p["codec"] in ("eqlinr", "coolchic"))
    # the variants' files really are EQLINR files with the part removed
    from trustvis.bench.codec import _neural_point

    image = np.asarray(Image.open(folder / "astronaut.png"))
    for name, check in (("eqlinr-no-lem", lambda h: h.lem_layers == 0), ("eqlinr-laplace",
                        lambda h: h.distribution == "laplace"), ("eqlinr", lambda h: h.lem_layers == 2 and
                        h.distribution == "gaussian")):  # fmt: skip
        header, _ = bs.unpack(_neural_point(name, "quick", 1e-2, 2, 0, image)["data"])
        assert header.method == "eqlinr" and check(header), name
    md = (out / "results.md").read_text()
    assert "## Ablation" in md and "| eqlinr-no-sga | SGA phase" in md
    assert (out / "fig_ablation.png").is_file() and (out / "fig_rd.png").is_file()
    assert [f["file"] for f in res["figures"]] == ["fig_rd.png", "fig_ablation.png"]


def test_speed_ratios_of_a_neural_codec(tmp_path, folder, monkeypatch):
    """Decode time against one synthesis pass per size, an encode iteration against a synthesis step, in the bench's
    results and its Markdown: positive ratios of real timings (their size is the bench's business, not a test's)."""
    import trustvis.bench.codec as bc

    monkeypatch.setattr(bc, "SPEED_SIZES", ((32, 32), (48, 64)))
    monkeypatch.setattr(bc, "SPEED_ITERATIONS", 20)
    monkeypatch.setattr(bc, "SPEED_ENCODE_SIZE", (32, 48))
    out = tmp_path / "speed"
    argv = ["-q", "bench", "codec", "--quick", "--methods", "coolchic", "--data-dir", str(folder), "--images", "1",
            "--iterations", "2", "--lambdas", "1e-2", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    sp = json.loads((out / "results.json").read_text())["speed"]["coolchic"]
    assert [(s["height"], s["width"]) for s in sp["sizes"]] == [(32, 32), (48, 64)]
    for s in sp["sizes"]:
        assert s["decode_seconds"] > 0 and s["synthesis_seconds"] > 0
        assert s["decode_ratio"] == pytest.approx(s["decode_seconds"] / s["synthesis_seconds"])
        assert (
            0 < s["range_coder_seconds"] < s["decode_seconds"]
        )  # the same symbols, without the ARM and the loop
        assert s["range_coder_ratio"] == pytest.approx(s["range_coder_seconds"] / s["synthesis_seconds"])
    assert sp["encode_iteration_ratio"] == pytest.approx(
        sp["encode_iteration_seconds"] / sp["synthesis_step_seconds"]
    )
    assert sp["rate_step_seconds"] > 0
    assert sp["rate_step_ratio"] == pytest.approx(sp["rate_step_seconds"] / sp["synthesis_step_seconds"])
    md = (out / "results.md").read_text()
    assert "## Speed" in md and "| coolchic |" in md.split("## Speed")[1] and "decode 64x48" in md
    assert "range decoder alone" in md and "ARM rate alone" in md
