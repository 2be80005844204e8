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
