"""Self-contained HTML reports for bench folders and training-run folders.

Every page puts results first, then the figures, then the configuration folded away::

    title, one line of metadata (date, version, device, bench time)
    Results      the headline table: the bench's main numbers (trustvis.report.headline), or a run's
                 evaluation and last logged values
    Figures      every figure with its caption
    Details      <details> folds: every long table (per family, robustness, cost; the whole results.md),
                 and the configuration (command, environment and versions, data, settings / config.yaml)

``write_report(folder)`` recognises two kinds of folder:

- a **bench folder** (``results.json``, ``results.md``, PNG figures, as written by ``trustvis bench``);
  a bench without a headline function gets the first table of its ``results.md`` as headline;
- a **training-run folder** (``config.yaml``, ``metrics.jsonl``, optional ``eval.json`` and
  ``model.json``): the training curves are drawn into the folder as ``training_curves.png`` when a
  metric has two logged values or more.

The page has no external dependencies: images are embedded as base64 ``data:`` URIs, CSS is inline,
there is no JavaScript and no web font. All text taken from the folder is HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from trustvis.atomic import atomic_write_text
from trustvis.report.headline import Headline, Shown, headline, mean_unseen
from trustvis.report.tables import MISSING, as_dict, as_float, format_cell, is_number, markdown_table

logger = logging.getLogger(__name__)

__all__ = ["markdown_table", "write_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .15em; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
.meta { color: #555; font-size: .92em; }
.wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #d0d0d0; padding: .25em .6em; }
th { background: #f2f4f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; background: #eef6fb; }
th.train { background: #e9e9e9; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: .7em; overflow-x: auto; font-size: .88em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: .9em; margin-top: .3em; }
.missing { color: #a00; }
footer { margin-top: 3em; color: #777; font-size: .85em; }
details { margin: .6em 0; border: 1px solid #ddd; border-radius: 4px; padding: .3em .8em; }
details[open] { padding-bottom: .8em; }
summary { cursor: pointer; font-weight: 600; }
"""

_METRIC_TITLES = {"ap": "Average precision (AP)", "acc": "Accuracy at 0.5", "auc": "ROC AUC", "eer": "EER"}
_EVAL_KEYS = ("acc", "acc_real", "acc_fake", "ap", "auc", "eer", "n_real", "n_fake")
_NOT_CURVES = {"step", "epoch", "time", "timestamp", "elapsed", "wall_time", "n_real", "n_fake"}
_MAX_CURVES = 6


# --------------------------------------------------------------------------------------------- helpers
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc


def _human_count(value: Any) -> str:
    """``25557032 -> '25.56 M'``; non-numbers pass through :func:`format_cell`."""
    if not is_number(value) or not math.isfinite(float(value)):
        return format_cell(value)
    v = float(value)
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.2f} {unit}"
    return format_cell(int(v) if v == int(v) else v)


def _value(c: Any) -> Any:
    return c.value if isinstance(c, Shown) else c


def _html_table(
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    best_cols: Sequence[int] = (),
    lower_is_better: bool = False,
    header_classes: Mapping[int, str] | None = None,
    lower_cols: Sequence[int] = (),
    group_col: int | None = None,
) -> str:
    """An HTML table; numbers right-aligned, the best value of each column in ``best_cols`` (largest, or
    smallest with ``lower_is_better``) and ``lower_cols`` (smallest) bolded, among the rows that share the
    value of ``group_col`` when given. A :class:`~trustvis.report.headline.Shown` cell shows its text and
    competes with its value."""
    direction = {j: lower_is_better for j in best_cols} | {j: True for j in lower_cols}
    best: dict[tuple[Any, int], float] = {}
    groups: dict[Any, list[Sequence[Any]]] = {}
    for r in rows:
        groups.setdefault(r[group_col] if group_col is not None else None, []).append(r)
    for g, members in groups.items():
        for j, low in direction.items():
            vals = [as_float(_value(r[j])) for r in members if is_number(_value(r[j]))]
            vals = [v for v in vals if math.isfinite(v)]
            if len(vals) >= 2:
                best[(g, j)] = min(vals) if low else max(vals)
    hc = header_classes or {}
    out = ['<div class="wrap"><table>', "<thead><tr>"]
    for j, h in enumerate(header):
        cls = f' class="{hc[j]}"' if j in hc else ""
        out.append(f"<th{cls}>{_e(h)}</th>")
    out.append("</tr></thead><tbody>")
    for r in rows:
        g = r[group_col] if group_col is not None else None
        out.append("<tr>")
        for j, c in enumerate(r):
            v = _value(c)
            classes = []
            if is_number(v) or c is None:
                classes.append("num")
            if (g, j) in best and is_number(v) and as_float(v) == best[(g, j)]:
                classes.append("best")
            cls = f' class="{" ".join(classes)}"' if classes else ""
            text = c.text if isinstance(c, Shown) else format_cell(c)
            out.append(f"<td{cls}>{_e(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _kv_table(d: Mapping[str, Any]) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, (Mapping, list, tuple)):
            v = json.dumps(v, default=str)
        rows.append([k, v])
    if not rows:
        return f'<p class="meta">{MISSING}</p>'
    return _html_table(["key", "value"], rows)


def _figure(path: Path, caption: str) -> str:
    if not path.is_file():
        return f'<p class="missing">Figure file missing: {_e(path.name)}</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption or path.name)}">'
        f"<figcaption>{_e(caption or path.name)}</figcaption></figure>"
    )


def _page(title: str, body: list[str]) -> str:
    from trustvis import __version__

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="trustvis {_e(__version__)}">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<footer>Generated by trustvis {_e(__version__)} on {_e(now)}.</footer>\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------------------ bench page
#: keys of results.json that hold results (shown in the tables and figures), not configuration
_RESULT_KEYS = {"results", "methods", "figures", "curves", "bd_rate", "timing", "uncertainty", "adversarial"}
#: keys shown in the page's own places (title, metadata line, configuration tables)
_HEADER_KEYS = {"bench", "trustvis_version", "created", "command", "environment", "data", "bench_seconds"}


def _details(summary: str, body: str | list[str], open_: bool = False) -> str:
    """A folded section: ``summary`` (escaped) is always shown, ``body`` (HTML) when unfolded."""
    inner = "\n".join(body) if isinstance(body, list) else body
    return f"<details{' open' if open_ else ''}><summary>{_e(summary)}</summary>\n{inner}\n</details>"


def _headline_html(hl: Headline) -> str:
    parts = [_html_table(hl.header, hl.rows, best_cols=hl.higher, lower_cols=hl.lower, group_col=hl.group)]
    notes = [n for n in (hl.note, *hl.extra) if n]
    if hl.higher or hl.lower:
        within = f" within each {hl.header[hl.group]}" if hl.group is not None else ""
        notes.append(f"Best value per column{within} in bold.")
    if notes:
        parts.append(f'<p class="meta">{_e(" ".join(notes))}</p>')
    return "\n".join(parts)


def _first_md_table(md: str) -> str:
    """The first pipe table of a Markdown text, as HTML ('' when it has none)."""
    lines = md.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return ""
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return markdown_to_html("\n".join(lines[start:end]))


def _without_title(md: str) -> str:
    """``md`` without its first ``# `` title line (the page has its own)."""
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.strip():
            return "\n".join(lines[i + 1 :]) if line.startswith("# ") else md
    return md


def _detect_tables(r: Mapping[str, Any]) -> list[str]:
    """The detection bench's long tables: each metric per family, real/fake accuracy, robustness,
    adversarial accuracy, cost."""
    methods = as_dict(r.get("methods"))
    train = r.get("train_family")
    families = list(r.get("families") or [])
    if not families:
        seen: dict[str, None] = {}
        for m in methods.values():
            for f in as_dict(as_dict(m).get("clean")):
                seen.setdefault(f, None)
        families = list(seen)
    b: list[str] = []
    fam_header = [f"{f} (train)" if f == train else f for f in families]
    train_cls = {1 + families.index(train): "train"} if train in families else {}
    mean_label = "mean unseen" if train else "mean"
    unseen = [f for f in families if f != train]

    if methods:
        b.append("<h3>Results per generator family</h3>")
        b.append(
            '<p class="meta">Clean test images. Best value per column in bold; '
            f"{_e(mean_label)} = mean over the families not trained on.</p>"
        )
        for metric in ("ap", "acc", "auc"):
            rows = []
            for name, m in methods.items():
                m = as_dict(m)
                clean = as_dict(m.get("clean"))
                rows.append(
                    [name]
                    + [as_dict(clean.get(f)).get(metric) for f in families]
                    + [mean_unseen(m, unseen).get(metric)]
                )
            b.append(f"<h4>{_e(_METRIC_TITLES.get(metric, metric))}</h4>")
            b.append(
                _html_table(
                    ["method", *fam_header, mean_label],
                    rows,
                    best_cols=range(1, len(families) + 2),
                    header_classes=train_cls,
                )
            )
        rows = []
        for name, m in methods.items():
            clean = as_dict(as_dict(m).get("clean"))
            cells = []
            for f in families:
                fm = as_dict(clean.get(f))
                cells.append(f"{format_cell(fm.get('acc_real'))} / {format_cell(fm.get('acc_fake'))}")
            rows.append([name, *cells])
        b.append("<h4>Accuracy on real / fake images</h4>")
        b.append(
            '<p class="meta">A detector that ranks well (high AP) but is miscalibrated out of domain shows '
            "a large gap here.</p>"
        )
        b.append(_html_table(["method", *fam_header], rows, header_classes=train_cls))

        degs = list(r.get("degradations") or [])
        if not degs:
            seen = {}
            for m in methods.values():
                for d in as_dict(as_dict(m).get("robustness")):
                    seen.setdefault(d, None)
            degs = list(seen)
        if degs:
            b.append("<h3>Robustness</h3>")
            b.append(
                f'<p class="meta">{_e(mean_label.capitalize())} metric after degrading real and fake test images alike.</p>'
            )
            for metric in ("ap", "acc"):
                rows = []
                for name, m in methods.items():
                    m = as_dict(m)
                    rob = as_dict(m.get("robustness"))
                    row: list[Any] = [name, mean_unseen(m, unseen).get(metric)]
                    for d in degs:
                        row.append(as_dict(as_dict(rob.get(d)).get("mean_unseen")).get(metric))
                    rows.append(row)
                b.append(f"<h4>{_e(_METRIC_TITLES.get(metric, metric))}</h4>")
                b.append(_html_table(["method", "clean", *degs], rows, best_cols=range(1, len(degs) + 2)))

        adv = as_dict(r.get("adversarial"))
        if adv:
            budgets = as_dict(as_dict(r.get("attacks")).get("budgets"))
            names = list(budgets) or list(as_dict(next(iter(adv.values()))))
            b.append("<h3>Adversarial accuracy on fake test images</h3>")
            b.append('<p class="meta">Share of attacked fakes still flagged fake (the attacker wants fake → real); '
                     "budgets: " + _e(", ".join(f"{a} ε={as_float(e):.4g}" for a, e in budgets.items()))
                     + " (L2 normalised by √(C·H·W), L∞ as max |δ|).</p>")  # fmt: skip
            rows = []
            for row, res in adv.items():
                res = as_dict(res)
                first = as_dict(res.get(names[0])) if names else {}
                rows.append(
                    [row, first.get("clean_acc"), *[as_dict(res.get(a)).get("adv_acc") for a in names]]
                )
            b.append(_html_table(["detector", "no attack", *names], rows, best_cols=range(1, len(names) + 2)))

        b.append("<h3>Cost</h3>")
        rows = []
        for name, m in methods.items():
            m = as_dict(m)
            rows.append(
                [
                    name,
                    m.get("paper", MISSING),
                    _human_count(m.get("params")),
                    m.get("train_steps"),
                    m.get("train_seconds"),
                    m.get("throughput_img_s"),
                ]
            )
        device = as_dict(r.get("environment")).get("device")
        if device:
            b.append(f'<p class="meta">Measured on device: {_e(device)}.</p>')
        b.append(
            _html_table(
                ["method", "paper", "parameters", "train steps", "train seconds", "throughput (img/s)"], rows
            )
        )

    return b


def _bench_body(folder: Path) -> tuple[str, list[str]]:
    r = as_dict(_load_json(folder / "results.json"))
    bench = str(r.get("bench", "?"))
    md_path = folder / "results.md"
    md = md_path.read_text(encoding="utf-8") if md_path.is_file() else ""
    data = as_dict(r.get("data"))
    title = f"trustvis bench {bench}"
    if data.get("name"):
        title += f": {data['name']}" + (f" ({data['size']})" if data.get("size") else "")

    b = [f"<h1>{_e(title)}</h1>"]
    meta = []
    if r.get("created"):
        meta.append(f"created {_e(r['created'])}")
    if r.get("trustvis_version"):
        meta.append(f"trustvis {_e(r['trustvis_version'])}")
    device = as_dict(r.get("environment")).get("device")
    if device:
        meta.append(f"device {_e(device)}")
    if is_number(r.get("bench_seconds")):
        meta.append(f"bench time {as_float(r['bench_seconds']):.0f} s")
    if r.get("train_family"):
        meta.append(f"trained on <b>{_e(r['train_family'])}</b>")
    if meta:
        b.append(f'<p class="meta">{" &middot; ".join(meta)}</p>')

    # 1. results: the headline table
    b.append('<h2 id="results">Results</h2>')
    try:
        hl = headline(r)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning(
            "%s: no headline table from results.json (%s); using results.md's first table.", folder, exc
        )
        hl = None
    if hl is not None and hl.rows:
        b.append(_headline_html(hl))
    elif _first_md_table(md):
        b.append(_first_md_table(md))
        b.append('<p class="meta">The first table of results.md; every table is under Details.</p>')
    else:
        b.append('<p class="missing">results.json lists no results.</p>')

    # 2. figures
    figs = [f for f in r.get("figures") or [] if isinstance(f, Mapping) and f.get("file")]
    listed = {str(f["file"]) for f in figs}
    extra = sorted(p.name for p in folder.glob("*.png") if p.name not in listed)
    if figs or extra:
        b.append('<h2 id="figures">Figures</h2>')
        for f in figs:
            b.append(_figure(folder / str(f["file"]), str(f.get("caption") or f["file"])))
        for name in extra:
            b.append(_figure(folder / name, name))

    # 3. details, folded: every table, then the configuration
    b.append('<h2 id="details">Details</h2>')
    if bench == "detect" and as_dict(r.get("methods")):
        b.append(
            _details("All tables: per family, real / fake, robustness, adversarial, cost", _detect_tables(r))
        )
    if md:
        link = '<p class="meta">As in <a href="results.md">results.md</a>.</p>'
        b.append(
            _details("Full summary (results.md)", [link, markdown_to_html(_without_title(md), demote=1)])
        )
    conf = []
    if r.get("command"):
        conf.append(f"<h3>Command</h3><pre><code>{_e(r['command'])}</code></pre>")
    env = {"trustvis": r.get("trustvis_version"), **as_dict(r.get("environment"))}
    env = {k: v for k, v in env.items() if v is not None}
    if env:
        conf.append("<h3>Environment and versions</h3>" + _kv_table(env))
    if data:
        conf.append("<h3>Data</h3>" + _kv_table(data))
    settings = {k: v for k, v in r.items() if k not in _RESULT_KEYS | _HEADER_KEYS}
    if settings:
        dump = yaml.safe_dump(json.loads(json.dumps(settings, default=str)), sort_keys=False,
                              default_flow_style=False, allow_unicode=True)  # fmt: skip
        conf.append(f"<h3>Settings</h3><pre>{_e(dump)}</pre>")
    if conf:
        b.append(_details("Configuration: command, versions, data, settings", conf))
    return title, b


# -------------------------------------------------------------------------------------------- run page
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records, bad = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(obj, dict):
            records.append(obj)
        else:
            bad += 1
    if bad:
        logger.warning("%s: skipped %d malformed line(s).", path, bad)
    return records


def _curve_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k not in _NOT_CURVES and is_number(v):
                seen.setdefault(k, None)

    def rank(k: str) -> int:
        if "loss" in k:
            return 0
        if k in ("ap", "acc", "auc"):
            return 1
        return 3 if k == "lr" else 2

    return sorted(seen, key=rank)[:_MAX_CURVES]


def _run_body(folder: Path) -> tuple[str, list[str]]:
    model = as_dict(_load_json(folder / "model.json")) if (folder / "model.json").is_file() else {}
    cfg: Any = None
    cfg_text = ""
    if (folder / "config.yaml").is_file():
        raw = (folder / "config.yaml").read_text(encoding="utf-8")
        try:
            cfg = yaml.safe_load(raw)
            cfg_text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, allow_unicode=True)
        except yaml.YAMLError as exc:
            logger.warning("%s/config.yaml is not valid YAML (%s); shown as is.", folder, exc)
            cfg_text = raw
    elif model.get("config") is not None:
        cfg = model["config"]
        cfg_text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, allow_unicode=True)
    cfg_method = cfg.get("method") if isinstance(cfg, Mapping) else None
    if isinstance(cfg_method, Mapping):
        cfg_method = cfg_method.get("name")
    method = model.get("method") or model.get("name") or cfg_method or folder.name
    title = f"trustvis run: {method}"

    b = [f"<h1>{_e(title)}</h1>", f'<p class="meta">Run folder: <code>{_e(folder.resolve())}</code></p>']
    b.append('<h2 id="results">Results</h2>')
    shown = False
    if (folder / "eval.json").is_file():
        ev = as_dict(_load_json(folder / "eval.json"))
        per = as_dict(ev.get("per_generator"))
        b.append("<h3>Evaluation</h3>")
        if ev.get("data"):
            b.append(f'<p class="meta">Data: <code>{_e(ev["data"])}</code></p>')
        keys_e = [k for k in _EVAL_KEYS if any(k in as_dict(v) for v in per.values())]
        extra = [k for v in per.values() for k in as_dict(v) if k not in _EVAL_KEYS]
        keys_e += list(dict.fromkeys(extra))
        rows = [[g, *(as_dict(m).get(k) for k in keys_e)] for g, m in per.items()]
        mean = as_dict(ev.get("mean"))
        if mean:
            rows.append(["mean", *(mean.get(k) for k in keys_e)])
        if rows and keys_e:
            b.append(_html_table(["generator", *keys_e], rows))
        else:  # the other tasks' eval.json: {metric: value}
            flat = [[k, v] for k, v in ev.items() if is_number(v)]
            b.append(_html_table(["metric", "value"], flat) if flat else
                     '<p class="missing">eval.json has no numbers.</p>')  # fmt: skip
        shown = True

    records = _read_jsonl(folder / "metrics.jsonl") if (folder / "metrics.jsonl").is_file() else []
    figures: list[tuple[Path, str]] = []
    if records:
        keys = _curve_keys(records)
        if keys:
            from trustvis.report.plots import plot_training_curves

            try:
                p = plot_training_curves(
                    records, folder / "training_curves.png", keys=keys, title=f"{method}"
                )
                figures.append((p, f"Training curves of {method} ({', '.join(keys)}) from metrics.jsonl."))
            except ValueError as exc:  # e.g. one logged value per metric: the table below has them
                logger.info("No training curves for %s: %s", folder, exc)
        b.append("<h3>Last logged values</h3>")
        splits: dict[str, Mapping[str, Any]] = {}
        for rec in records:
            splits[str(rec.get("split", "train"))] = rec
        cols = ["step", *keys] if keys else ["step"]
        b.append(
            _html_table(["split", *cols], [[s, *(rec.get(c) for c in cols)] for s, rec in splits.items()])
        )
        shown = True
    if not shown:
        b.append(
            '<p class="missing">No evaluation (eval.json) and no logged metrics (metrics.jsonl) yet.</p>'
        )

    known = {p.name for p, _ in figures}
    figures += [(p, p.name) for p in sorted(folder.glob("*.png")) if p.name not in known]
    if figures:
        b.append('<h2 id="figures">Figures</h2>')
        b.extend(_figure(p, c) for p, c in figures)

    info = {k: v for k, v in model.items() if k != "config" and not isinstance(v, (Mapping, list))}
    conf = []
    if info:
        conf.append("<h3>Model</h3>" + _kv_table(info))
    if cfg_text:
        conf.append(f"<h3>Config</h3><pre>{_e(cfg_text)}</pre>")
    if conf:
        b.append('<h2 id="details">Details</h2>')
        b.append(_details("Configuration: model and config.yaml", conf))
    return title, b


# ------------------------------------------------------------------------------------ markdown
def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** of our own Markdown summaries."""
    out = _e(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def markdown_to_html(md: str, demote: int = 0) -> str:
    """The subset of Markdown that trustvis writes (``#`` headings, pipe tables, ``-`` lists, paragraphs);
    ``demote`` moves every heading that many levels down (``##`` -> ``<h3>`` with 1), for a nested section."""
    html: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line:
            i += 1
        elif line.startswith("#"):
            hashes = len(line) - len(line.lstrip("#"))
            level = min(hashes + demote, 6)
            html.append(f"<h{level}>{_inline(line[hashes:].strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            head, body = rows[0], rows[1:]
            out = [
                '<div class="wrap"><table><thead><tr>',
                *(f"<th>{_inline(h)}</th>" for h in head),
                "</tr></thead><tbody>",
            ]
            for r in body:
                out.append("<tr>" + "".join(
                    f'<td{" class=num" if is_number(c.split(" ")[0]) else ""}>{_inline(c)}</td>' for c in r) + "</tr>")  # fmt: skip
            html.append("".join(out) + "</tbody></table></div>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:].strip())}</li>")
                i += 1
            html.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ")):
                para.append(lines[i].strip())
                i += 1
            html.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(html)


# ---------------------------------------------------------------------------------------------- public
def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write a self-contained HTML report of a bench folder or a training-run folder.

    Args:
        folder: a bench folder (with ``results.json``) or a run folder (with ``metrics.jsonl`` and/or
            ``model.json``; ``config.yaml`` and ``eval.json`` are used when present).
        out: output file; default ``<folder>/report.html``.

    Returns:
        Path of the written HTML file.

    Raises:
        FileNotFoundError: if ``folder`` does not exist or holds neither kind of results.
        ValueError: if a JSON file in it is malformed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Report folder {folder} does not exist or is not a folder.")
    if (folder / "results.json").is_file():
        title, body = _bench_body(folder)
    elif (folder / "metrics.jsonl").is_file() or (folder / "model.json").is_file():
        title, body = _run_body(folder)
    else:
        raise FileNotFoundError(
            f"{folder} is neither a bench folder nor a training-run folder: expected results.json "
            "(from `trustvis bench`) or metrics.jsonl / model.json (from `trustvis train`)."
        )
    path = Path(out) if out is not None else folder / "report.html"
    atomic_write_text(path, _page(title, body))
    logger.info("wrote report %s", path)
    return path
