"""``trustvis list | info | data | report``: what is registered, which data is installed, HTML reports.

``list`` and ``info`` read the registry's stored catalog (``trustvis/catalog.json``): they import neither
torch nor any method module.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from pathlib import Path

from trustvis.cli.common import RAW, UsageError, table


def _method_entry(name: str) -> dict:
    from trustvis import registry

    methods = {m["name"]: m for m in registry.catalog()["methods"]}
    if name not in methods:
        raise UsageError(f"Unknown method {name!r}; choose from {sorted(methods)}")
    return methods[name]


def cmd_list(args: argparse.Namespace) -> int:
    from trustvis import registry

    cat = registry.catalog()
    if args.task is not None and args.task not in cat["tasks"]:
        raise UsageError(f"Unknown task {args.task!r}; choose from {cat['tasks']}")
    rows = [[m["name"], m["task"], "seed" if m["seed_method"] else "baseline", m["paper"]["venue"], m["paper"]["url"]]
            for m in cat["methods"] if args.task is None or m["task"] == args.task]  # fmt: skip
    print(table(["method", "task", "kind", "paper", "link"], rows))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import trustvis

    m = _method_entry(args.method)
    print(f"{m['name']}  ({m['task']}, {'seed method' if m['seed_method'] else 'baseline'})")
    p = m["paper"]
    print(f"paper:   {p['title']}. {p['venue']}. {p['url']}")
    print(f"summary: {m['summary']}")
    print(f"file:    {Path(trustvis.__file__).resolve().parent / m['file']}")
    if m["doc"]:
        print("\n" + textwrap.indent(m["doc"], "  "))
    print("\nconfig fields (default preset):")
    for name, value in m["config"].items():
        print(f"  model.{name} = {value!r}")
    print("\npresets:")
    for name, preset in m["presets"].items():
        run = {k: preset[k] for k in ("train", "data") if preset[k]}
        print(f"  {name}: model {preset['model'] or '{}'}  run {run or '{}'}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_cmd == "status":
        from trustvis.data import sources
        from trustvis.nn.backbones import weights_status

        rows, weights = sources.status(), weights_status()
        if args.json:
            print(json.dumps(rows + [{"name": w["backbone"], "kind": "weights", **w} for w in weights],
                             indent=2, default=str))  # fmt: skip
        else:
            print(sources.format_status(rows))
            print("\nImageNet weights (offline; `model.weights=imagenet`):")
            for w in weights:
                where = w["path"] if w["installed"] else f"not found — {w['install_hint']}"
                print(f"  {w['backbone']:<20} {where}")
        return 0
    if args.name not in BUILDERS:
        raise UsageError(f"Unknown data set {args.name!r}; choose from {sorted(BUILDERS)}")
    import importlib

    title, target = BUILDERS[args.name]
    module, _, fn = target.partition(":")
    size = "quick" if args.quick else args.size
    extra = {}
    if args.version is not None:
        if args.name != "synthbench":
            raise UsageError(f"--version applies to synthbench (v1, v2), not to {args.name}")
        extra["version"] = args.version
    t0 = time.perf_counter()
    build = getattr(importlib.import_module(module), fn)
    path = build(size, force=args.force, progress=not args.no_progress, **extra)
    label = " ".join(x for x in (title, extra.get("version"), size) if x)
    print(f"{label} ready at {path} ({time.perf_counter() - t0:.0f} s)")
    return 0


#: ``trustvis data build NAME``: the benchmark sets built into the cache -> (title, "module:function(size, ...)")
BUILDERS = {
    "synthbench": ("SynthBench", "trustvis.tasks.detect:build_synthbench_data"),
    "recapturebench": ("RecaptureBench", "trustvis.data.recapturebench:build_recapturebench"),
}


def cmd_report(args: argparse.Namespace) -> int:
    from trustvis.report.html import write_report

    print(f"wrote {write_report(args.folder, out=args.out)}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("list", help="list registered methods", formatter_class=RAW,
                       epilog="example:\n  trustvis list --task detect")  # fmt: skip
    s.add_argument("--task", help="only methods of this task (detect, anomaly, classify, ...)")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("info", help="describe one method: paper, presets, config fields", formatter_class=RAW,
                       epilog="example:\n  trustvis info bihpf")  # fmt: skip
    s.add_argument("method")
    s.set_defaults(fn=cmd_info)

    s = sub.add_parser("data", help="real-data sources and benchmark builders", formatter_class=RAW,
                       epilog="examples:\n  trustvis data status\n  trustvis data build synthbench --quick\n"
                       "  trustvis data build synthbench --version v2 --size tiny\n"
                       "  trustvis data build recapturebench --quick")  # fmt: skip
    dsub = s.add_subparsers(dest="data_cmd", required=True, metavar="{status,build}")
    st = dsub.add_parser("status", help="which sources are installed and how many images each gives")
    st.add_argument("--json", action="store_true")
    b = dsub.add_parser("build", help="build a benchmark data set into the cache ($TRUSTVIS_HOME)")
    b.add_argument(
        "name", help="synthbench (generated-image detection) or recapturebench (RGB + depth recaptures)"
    )
    b.add_argument(
        "--size", default="quick", choices=["tiny", "quick", "full"], help="tiny builds in seconds"
    )
    b.add_argument("--quick", action="store_true", help="same as --size quick")
    b.add_argument(
        "--version",
        choices=["v1", "v2"],
        help="synthbench edition: v1 (default; autoencoder, DCGAN and VAE families) or v2 (adds an anti-aliased "
        "GAN, a diffusion model, diffusion inpainting and the toolkit's neural codecs' reconstructions, and a "
        "laundered test split, test_wild)",
    )
    b.add_argument("--force", action="store_true", help="rebuild even if a valid cache exists")
    b.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_data)

    s = sub.add_parser("report", help="write a self-contained HTML report", formatter_class=RAW,
                       epilog="example:\n  trustvis report results/detect-quick")  # fmt: skip
    s.add_argument("folder", help="a bench folder (results.json) or a run folder (model.json)")
    s.add_argument("--out", help="HTML file (default FOLDER/report.html)")
    s.set_defaults(fn=cmd_report)
