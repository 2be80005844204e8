"""Bench figures, Markdown tables and the self-contained HTML report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trustvis.report.html import write_report
from trustvis.report.plots import (
    plot_cost,
    plot_family_metric,
    plot_robustness,
    plot_roc,
    plot_spectra,
    plot_training_curves,
)
from trustvis.report.tables import format_cell, markdown_table

PNG = b"\x89PNG\r\n\x1a\n"
FAMILIES = ["ae_tconv", "ae_nearest", "ae_bilinear"]
METHODS = ["bihpf", "cnndet<x>"]  # '<' and '>' must come out escaped
DEGS = ["jpeg95", "jpeg75", "jpeg50", "blur1", "blur2", "resize0.5"]
COMMAND = "trustvis bench detect --quick --set 'note=<b>&c'"


def _metrics(rng: np.random.Generator) -> dict:
    acc, ap = rng.uniform(0.5, 1.0, 2)
    return {
        "acc": acc,
        "acc_real": 0.9,
        "acc_fake": float("nan"),
        "ap": ap,
        "auc": ap,
        "eer": 0.2,
        "n_real": 10,
        "n_fake": 10,
    }


def _results(rng: np.random.Generator) -> dict:
    methods = {}
    for i, name in enumerate(METHODS):
        methods[name] = {
            "paper": "Some et al. 2022",
            "params": 1_440_000 * (i + 1),
            "train_steps": 100,
            "train_seconds": 3.5 * (i + 1),
            "throughput_img_s": 250.0 / (i + 1),
            "clean": {f: _metrics(rng) for f in FAMILIES},
            "mean_unseen": {"acc": 0.7, "ap": 0.8, "auc": 0.81},
            "robustness": {
                d: {
                    "per_family": {f: _metrics(rng) for f in FAMILIES},
                    "mean_unseen": {"acc": 0.6, "ap": 0.7},
                }
                for d in DEGS
            },
            "roc": {f: {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, 0.7, 1.0]} for f in FAMILIES},
        }
    return {
        "bench": "detect",
        "trustvis_version": "0.1.0",
        "created": "2025-01-01T00:00:00+00:00",
        "command": COMMAND,
        "environment": {"python": "3.11", "torch": "2.4", "device": "cpu", "threads": 2, "platform": "linux"},
        "data": {"name": "synthbench", "size": "quick", "path": "/tmp/x", "image_size": 64},
        "train_family": FAMILIES[0],
        "families": FAMILIES,
        "degradations": DEGS,
        "methods": methods,
        "figures": [{"file": "fig_family_ap.png", "caption": "AP per family & method"}],
    }


def test_plot_functions_write_png(tmp_path):
    rng = np.random.default_rng(0)
    per = {m: {f: float(rng.uniform(0.4, 1)) for f in FAMILIES} for m in METHODS}
    rob = {m: {d: float(rng.uniform(0.4, 1)) for d in ["clean", *DEGS]} for m in METHODS}
    curves = {m: {f: ([0.0, 0.3, 1.0], [0.0, 0.8, 1.0]) for f in FAMILIES} for m in METHODS}
    curves[METHODS[1]][FAMILIES[2]] = ([], [])  # single-class family: no curve
    aucs = {m: {f: 0.85 for f in FAMILIES} for m in METHODS}
    spectra = {"real": rng.normal(size=(16, 16)), "ae_tconv": rng.normal(size=(16, 16))}
    records = [{"step": s, "loss": 1 / (s + 1), "lr": 1e-4, "split": "train"} for s in range(0, 100, 10)]
    records += [
        {"step": 50, "split": "val", "acc": 0.7, "ap": 0.8},
        {"step": 100, "split": "val", "acc": 0.8},
    ]
    cost = {m: {"throughput_img_s": 100.0 * (i + 1), "train_seconds": None} for i, m in enumerate(METHODS)}
    paths = [
        plot_family_metric(per, "ap", tmp_path / "fam.png", train_family=FAMILIES[0]),
        plot_family_metric(per, "acc", tmp_path / "fam_acc.png", title="Accuracy"),
        plot_roc(curves, tmp_path / "roc.png", aucs=aucs, train_family=FAMILIES[0]),
        plot_robustness(rob, tmp_path / "rob.png", metric="ap"),
        plot_spectra(spectra, tmp_path / "spec.png"),
        plot_training_curves(records, tmp_path / "curves.png", keys=("loss", "acc", "missing")),
        plot_cost(cost, tmp_path / "cost.png"),
    ]
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000, p
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
    with pytest.raises(ValueError, match="Reference spectrum"):
        plot_spectra(spectra, tmp_path / "x.png", reference="nope")
    with pytest.raises(ValueError, match="empty"):
        plot_family_metric({}, "ap", tmp_path / "x.png")
    with pytest.raises(ValueError, match="step"):
        plot_training_curves([{"loss": 1.0}], tmp_path / "x.png")


def test_markdown_table():
    md = markdown_table(
        ["method", "ap", "note"], [["a|b", 0.91234, "x"], ["c", float("nan"), None], ["d", 3, "y"]]
    )
    lines = md.strip().split("\n")
    assert lines[0] == "| method | ap | note |"
    assert lines[1] == "|---|---:|---|"
    assert lines[2] == "| a\\|b | 0.912 | x |"
    assert lines[3] == "| c | \u2013 | \u2013 |"
    assert lines[4] == "| d | 3 | y |"
    assert format_cell(np.float32(0.5)) == "0.500" and format_cell(True) == "True"
    assert format_cell(1e-4) == "1.00e-04" and format_cell(0.0) == "0.000" and format_cell(np.int64(7)) == "7"
    with pytest.raises(ValueError, match="Row 0"):
        markdown_table(["a", "b"], [[1]])


def test_bench_report(tmp_path):
    rng = np.random.default_rng(1)
    res = _results(rng)
    plot_family_metric(
        {m: {f: v["ap"] for f, v in res["methods"][m]["clean"].items()} for m in METHODS},
        "ap",
        tmp_path / "fig_family_ap.png",
        train_family=res["train_family"],
    )
    (tmp_path / "results.json").write_text(json.dumps(res))
    (tmp_path / "results.md").write_text("# results\n")
    out = write_report(tmp_path)
    assert out == tmp_path / "report.html"
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "bihpf" in page and "cnndet&lt;x&gt;" in page and "cnndet<x>" not in page
    assert "data:image/png;base64," in page
    assert "--set &#x27;note=&lt;b&gt;&amp;c&#x27;" in page and "<b>&c" not in page
    assert "AP per family &amp; method" in page
    assert "ae_tconv (train)" in page and "mean unseen" in page
    assert "jpeg75" in page and "1.44 M" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    custom = write_report(tmp_path, out=tmp_path / "sub" / "r.html")
    assert custom.is_file()


def test_run_report(tmp_path):
    (tmp_path / "config.yaml").write_text("method: npr\ntrain:\n  steps: 40\n  lr: 0.0001\nnote: a<b\n")
    lines = [
        json.dumps({"step": s, "loss": 1.0 / s, "lr": 1e-4, "split": "train"}) for s in range(10, 50, 10)
    ]
    lines.append(json.dumps({"step": 40, "split": "val", "acc": 0.75, "ap": 0.9, "auc": 0.88}))
    lines.append('{"step": 50, "loss": ')  # a half-written last line is skipped
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    per = {
        "ae_tconv": {"acc": 0.9, "ap": 0.95, "auc": 0.94, "n_real": 5, "n_fake": 5},
        "ae_nearest": {"acc": 0.6, "ap": float("nan"), "auc": 0.7, "n_real": 5, "n_fake": 0},
    }
    (tmp_path / "eval.json").write_text(
        json.dumps({"data": "/data/synth", "per_generator": per, "mean": {"acc": 0.75, "ap": 0.95}})
    )
    (tmp_path / "model.json").write_text(json.dumps({"method": "npr", "version": "0.1.0", "config": {}}))
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert (tmp_path / "training_curves.png").read_bytes().startswith(PNG)
    assert "trustvis run: npr" in page and "data:image/png;base64," in page
    assert "note: a&lt;b" in page
    assert "ae_nearest" in page and "0.950" in page and "\u2013" in page


def test_unknown_folder(tmp_path):
    (tmp_path / "config.yaml").write_text("a: 1\n")
    with pytest.raises(FileNotFoundError, match="results.json"):
        write_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "nope")


# --- results first, configuration folded ----------------------------------------------------------------


def _folded(page: str, text: str) -> bool:
    """Is ``text`` on the page, and inside a <details> fold?"""
    at = page.find(text)
    if at < 0:
        return False
    opened = page.rfind("<details", 0, at)
    return opened >= 0 and page.find("</details>", opened) > at


def _sections(page: str) -> tuple[int, int, int]:
    return page.index('<h2 id="results">'), page.index("<figure"), page.index("<details")


def test_bench_report_puts_the_headline_first_and_folds_the_configuration(tmp_path):
    res = _results(np.random.default_rng(2))
    res["methods"]["bihpf"]["mean_unseen"] = {"acc": 0.7, "ap": 0.8771, "auc": 0.81}
    plot_family_metric({m: {f: 0.7 for f in FAMILIES} for m in METHODS}, "ap", tmp_path / "fig_family_ap.png")
    (tmp_path / "results.json").write_text(json.dumps(res))
    (tmp_path / "results.md").write_text("# results\n\n| a | b |\n|---|---|\n| long | table |\n")
    page = write_report(tmp_path).read_text(encoding="utf-8")
    results, figure, details = _sections(page)
    assert results < figure < details  # results, then figures, then the folds
    headline = page[results:figure]
    assert "0.877" in headline and "AP, worst degradation" in headline and "<table>" in headline
    assert page.count("<h1>") == 1 and page.index("<h1>") < results
    # the command, the environment and the long per-family tables are folded away at the end
    assert _folded(page, "--set &#x27;note=&lt;b&gt;&amp;c&#x27;")
    assert _folded(page, "Environment and versions") and _folded(page, "platform")
    assert _folded(page, "ae_tconv (train)") and _folded(page, "1.44 M")
    assert _folded(page, "<td>long</td>")  # results.md in full
    assert not _folded(page, "0.877")


def _anomaly_results() -> dict:
    per = {"image_auroc": 0.9123, "image_ap": 0.8, "f1": 0.7, "pixel_auroc": 0.95, "aupro": 0.6}
    return {
        "bench": "anomaly",
        "trustvis_version": "0.1.0",
        "created": "2025-01-01T00:00:00",
        "command": "trustvis bench anomaly --quick",
        "environment": {"python": "3.11", "torch": "2.4", "device": "cpu", "threads": 2, "platform": "linux"},
        "data": {"name": "textures", "size": "quick"},
        "seed": 0,
        "methods": ["padim", "fyd"],
        "normal_quantile": 0.99,
        "results": {"textures": {"padim": {**per, "image_auroc": 0.8}, "fyd": per}},
        "figures": [{"file": "fig_roc_textures.png", "caption": "ROC"}],
        "bench_seconds": 12.0,
    }


def test_summary_bench_report_has_a_headline_from_results_json(tmp_path):
    """A bench with a results.md (anomaly): the headline table first, results.md and settings folded."""
    from trustvis.report.plots import plot_anomaly_curves

    res = _anomaly_results()
    plot_anomaly_curves({"fyd": ([0, 0.5, 1], [0, 1, 1])}, tmp_path / "fig_roc_textures.png")
    (tmp_path / "results.json").write_text(json.dumps(res))
    (tmp_path / "results.md").write_text("# Anomaly bench\n\nCommand: `trustvis bench anomaly --quick`\n\n"
                                         "| set | method |\n|---|---|\n| textures | fyd |\n")  # fmt: skip
    page = write_report(tmp_path).read_text(encoding="utf-8")
    results, figure, details = _sections(page)
    assert results < figure < details
    headline = page[results:figure]
    assert "image AUROC" in headline and "AUPRO" in headline
    assert '<td class="num best">0.912</td>' in headline  # fyd's AUROC, the best of the set
    assert _folded(page, "trustvis bench anomaly --quick") and _folded(page, "normal_quantile: 0.99")
    assert not _folded(page, "image AUROC")


def test_bench_without_a_headline_function_shows_the_first_results_md_table(tmp_path):
    res = {"bench": "newbench", "command": "trustvis bench newbench --flag", "results": {}, "figures": []}
    (tmp_path / "results.json").write_text(json.dumps(res))
    (tmp_path / "results.md").write_text("# New\n\nCommand: `x`\n\n| method | score |\n|---|---:|\n| m | 0.5 |\n\n"
                                         "| second | table |\n|---|---|\n| z | 1 |\n")  # fmt: skip
    page = write_report(tmp_path).read_text(encoding="utf-8")
    results, details = page.index('<h2 id="results">'), page.index("<details")
    assert "<td>m</td>" in page[results:details] and "second" not in page[results:details]
    assert _folded(page, "trustvis bench newbench --flag")


def test_run_report_puts_results_first_and_folds_the_config(tmp_path):
    (tmp_path / "config.yaml").write_text("method: npr\ntrain:\n  steps: 40\n")
    lines = [json.dumps({"step": s, "loss": 1.0 / s, "split": "train"}) for s in range(10, 50, 10)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "eval.json").write_text(json.dumps({"image_auroc": 0.8642, "n": 24, "data": "/d"}))
    page = write_report(tmp_path).read_text(encoding="utf-8")
    results, figure, details = _sections(page)
    assert results < figure < details
    assert "0.864" in page[results:figure]  # another task's eval.json: {metric: value}
    assert _folded(page, "steps: 40") and not _folded(page, "0.864")


def test_run_report_draws_no_curve_of_single_points(tmp_path):
    """One logged value per metric: the table has it, no figure of lone dots is drawn."""
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 3, "loss": 0.5, "split": "train"}) + "\n")
    (tmp_path / "model.json").write_text(json.dumps({"method": "npr", "config": {}}))
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert not (tmp_path / "training_curves.png").exists() and "<figure" not in page
    assert "0.500" in page
    with pytest.raises(ValueError, match="two logged values"):
        plot_training_curves([{"step": 1, "loss": 0.5}, {"step": 2, "acc": 0.5}], tmp_path / "x.png",
                             keys=("loss", "acc"))  # fmt: skip


# --- one colour per method, no single-point plots, labels not cut off ----------------------------------


@pytest.fixture
def figures(monkeypatch):
    """The Figure objects the plot functions build, by file name (nothing is written)."""
    import trustvis.report.plots.anomaly as anomaly_plots
    import trustvis.report.plots.classify as classify_plots
    import trustvis.report.plots.codec as codec_plots
    import trustvis.report.plots.detect as detect_plots

    made = {}

    def keep(fig, path):
        made[str(path).rsplit("/", 1)[-1]] = fig
        return path

    for module in (anomaly_plots, classify_plots, codec_plots, detect_plots):
        monkeypatch.setattr(module, "_save", keep)
    return made


def _bar_colours(fig) -> dict[str, str]:
    """Legend label -> face colour of the bars of the first axes (bars are added one container per label)."""
    from matplotlib.colors import to_hex

    ax = fig.axes[0]
    return {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in ax.containers}


def _line_colours(fig) -> dict[str, str]:
    from matplotlib.colors import to_hex

    return {
        ln.get_label().split(" ")[0].rstrip(":"): to_hex(ln.get_color()) for ax in fig.axes for ln in ax.lines
    }


def test_a_method_has_one_colour_in_every_figure(tmp_path, figures):
    from trustvis.report.plots import (
        method_color,
        plot_anomaly_curves,
        plot_metric_bars,
        plot_rd_curves,
        series_styles,
    )

    # the colour depends on the name only, not on the position among the series
    assert method_color("fyd") == method_color("FYD") != method_color("padim")
    assert series_styles(["a", "fyd"])["fyd"]["color"] == series_styles(["fyd"])["fyd"]["color"]
    assert len({method_color(m) for m in ("cnndet", "bihpf", "frepgan", "fingerprintnet", "d4", "npr")}) == 6

    y = np.array([0, 0, 1, 1])
    plot_anomaly_curves({"padim": {"labels": y, "scores": [0.1, 0.4, 0.35, 0.8]},
                         "fyd": {"labels": y, "scores": [0.1, 0.2, 0.7, 0.8]}}, tmp_path / "roc.png")  # fmt: skip
    plot_family_metric({"npr": {"f1": 0.6}, "fyd": {"f1": 0.9}}, "ap", tmp_path / "fam.png")
    plot_metric_bars({"set": {"padim": 0.5, "other": 0.4, "fyd": 0.3}}, "acc", tmp_path / "bars.png")
    plot_robustness({"fyd": {"clean": 0.9, "jpeg75": 0.8}, "padim": {"clean": 0.7, "jpeg75": 0.6}},
                    tmp_path / "rob.png")  # fmt: skip
    plot_rd_curves({"jpeg": [{"bpp": 1, "psnr": 30}, {"bpp": 2, "psnr": 33}],
                    "fyd": [{"bpp": 1, "psnr": 31}, {"bpp": 2, "psnr": 34}]}, tmp_path / "rd.png")  # fmt: skip
    want = method_color("fyd").lower()
    assert _line_colours(figures["roc.png"])["fyd"] == want
    assert _bar_colours(figures["fam.png"])["fyd"] == want
    assert _bar_colours(figures["bars.png"])["fyd"] == want
    assert _line_colours(figures["rob.png"])["fyd"] == want
    assert _line_colours(figures["rd.png"])["fyd"] == want
    assert _line_colours(figures["roc.png"])["padim"] == _bar_colours(figures["bars.png"])["padim"]


def test_names_sharing_a_colour_differ_by_hatch_and_dash():
    from trustvis.report.plots import series_styles

    st = series_styles(["ts+ce", "ts+sctl", "cts+ce"])
    assert st["ts+ce"]["color"] == st["ts+sctl"]["color"] != st["cts+ce"]["color"]
    assert st["ts+ce"]["hatch"] != st["ts+sctl"]["hatch"]
    assert st["ts+ce"]["linestyle"] != st["ts+sctl"]["linestyle"]


def test_single_point_series_become_bars(tmp_path, figures):
    from trustvis.report.plots import plot_rd_curves

    one = {"eqlinr": [{"bpp": 0.5, "psnr": 30.0, "ms_ssim_db": 12.0}],
           "coolchic": [{"bpp": 0.6, "psnr": 29.0, "ms_ssim_db": 11.0}]}  # fmt: skip
    plot_rd_curves(one, tmp_path / "rd1.png")
    fig = figures["rd1.png"]
    assert len(fig.axes) == 3  # bpp, PSNR, MS-SSIM
    assert all(len(ax.patches) == 2 and not ax.lines for ax in fig.axes)
    plot_robustness({"bihpf": {"clean": 0.9}, "npr": {"clean": 0.7}}, tmp_path / "rob1.png")
    ax = figures["rob1.png"].axes[0]
    assert len(ax.patches) == 2 and not [ln for ln in ax.lines if len(ln.get_xdata()) == 1]


def test_long_tick_labels_are_wrapped_and_turned(tmp_path, figures):
    long = "textures-misaligned-with-a-long-name"
    plot_family_metric({"fyd": {long: 0.5, "b": 0.6}}, "ap", tmp_path / "long.png")
    labels = [t for t in figures["long.png"].axes[0].get_xticklabels() if t.get_text()]
    first = next(t for t in labels if t.get_text().startswith("textures"))
    assert "\n" in first.get_text() and first.get_rotation() == 30


def test_anomaly_roc_legend_gives_the_tables_auroc(tmp_path, figures):
    from trustvis.report.plots import plot_anomaly_curves

    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.8, 0.7, 0.2, 0.3])  # pooled AUROC 0.667
    plot_anomaly_curves({"fyd": {"labels": y, "scores": s, "auroc": 0.8125, "pooled": 3}}, tmp_path / "r.png")
    text = [t.get_text() for t in figures["r.png"].axes[0].get_legend().get_texts()]
    assert any("AUROC 0.812" in t and "mean of 3" in t and "pooled curve 0.667" in t for t in text), text
    plot_anomaly_curves({"fyd": {"labels": y, "scores": s, "auroc": 0.8125}}, tmp_path / "r1.png")
    text = [t.get_text() for t in figures["r1.png"].axes[0].get_legend().get_texts()]
    assert "fyd (AUROC 0.812)" in text
