"""``trustvis bench TASK``: the benchmark protocols (each writes results.json, results.md, figures and
report.html)."""

from __future__ import annotations

import argparse

from trustvis.cli.common import RAW, UsageError, command_line, csv_list, csv_of, int_at_least

EPILOG_BENCH = """\
benchmarks (each writes results.json, results.md, figures and report.html to --out):
  detect     train detectors on one SynthBench family, test on all; robustness; adversarial table
  augment    no mixing / Mixup / CutMix / DCutMix / DMixup (K=2,3,5) on Fashion-MNIST and OpenCV digits,
             3 seeds: error, NLL, ECE, accuracy under noise/blur/JPEG, sample-wise uncertainty
  calibrate  TS / CTS / ETS / PTS with the CE loss and with SCTL on balanced and long-tailed
             Fashion-MNIST, plus binary detectors' scores on unseen SynthBench families
  adapt      from ImageNet MobileNetV2: linear probe / full fine-tuning / LoRA r=4,8,16 on Fashion-MNIST
             with 10 and 100 labels per class, and a detector adapted to an unseen family from 100 images:
             accuracy/AP, trainable parameters, time per step, training memory
  anomaly    FYD vs PaDiM on ELPV solar cells (mono, poly) and on real textures with synthetic defects
             (aligned and misaligned): image/pixel AUROC, AUPRO, F1, maps
  codec      EQLINR and COOL-CHIC vs JPEG / WebP / AVIF / JPEG 2000 on the Kodak-like set: RD curves (bpp from
             real files vs PSNR and MS-SSIM), BD-rates against JPEG and AVIF, encode / decode times

examples:
  trustvis bench detect --quick
  trustvis bench augment --quick
  trustvis bench augment --quick --methods none,cutmix,dcutmix-K3 --seeds 0 --datasets opencv-digits
  trustvis bench calibrate --quick --detect-dir results/detect-quick
  trustvis bench adapt --quick --methods linear,lora-r8 --datasets fmnist
  trustvis bench codec --quick --methods eqlinr,jpeg,avif --images 2
  trustvis bench codec --data-dir ~/kodak --iterations 10000         # your own Kodak-style folder
  trustvis bench codec --quick --ablation        # + EQLINR leave-one-out variants (after bench-codec: ~80 min)
  trustvis bench detect --device cuda --set train.num_workers=8
"""


BENCHES = ("detect", "augment", "calibrate", "adapt", "anomaly", "codec")


def cmd_bench(args: argparse.Namespace) -> int:
    if args.task not in BENCHES:
        raise UsageError(f"Unknown bench {args.task!r}; choose from {list(BENCHES)}")
    if args.task == "codec":
        from trustvis.bench.codec import run_codec_bench

        out = run_codec_bench(quick=args.quick, codecs=csv_list(args.methods), out_dir=args.out, images=args.images,
                              iterations=args.iterations, lambdas=args.lambdas, seed=args.seed, folder=args.data_dir,
                              command=command_line(args), progress=not args.quiet,
                              ablation=args.ablation)  # fmt: skip
        print(f"results: {out / 'results.md'}\nreport:  {out / 'report.html'}")
        print((out / "results.md").read_text(encoding="utf-8"))
        return 0
    common = {"quick": args.quick, "out_dir": args.out, "steps": args.steps, "device": args.device,
              "preset": args.preset, "overrides": args.set, "command": command_line(args)}  # fmt: skip
    if args.task == "detect":
        from trustvis.bench.detect import run_detect_bench

        out = run_detect_bench(methods=csv_list(args.methods), seed=args.seed, attack_images=args.attack_images,
                               attack_queries=args.queries, **common)  # fmt: skip
    elif args.task == "augment":
        from trustvis.bench.augment import run_augment_bench

        out = run_augment_bench(
            datasets=csv_list(args.datasets), conditions=csv_list(args.methods), seeds=args.seeds, **common
        )
    elif args.task == "anomaly":
        from trustvis.bench.anomaly import run_anomaly_bench

        out = run_anomaly_bench(
            datasets=csv_list(args.datasets),
            methods=csv_list(args.methods),
            seed=args.seed,
            per_category=not args.pooled,
            **common,
        )
    elif args.task == "adapt":
        from trustvis.bench.adapt import run_adapt_bench

        out = run_adapt_bench(conditions=csv_list(args.methods), parts=csv_list(args.datasets), seed=args.seed,
                              family=args.family, **common)  # fmt: skip
    else:
        from trustvis.bench.calibrate import run_calibrate_bench

        datasets = csv_list(args.datasets) or ["fashion-mnist"]
        if len(datasets) != 1:
            raise UsageError(f"bench calibrate takes one --datasets entry, got {datasets}")
        out = run_calibrate_bench(seed=args.seed, detect_dir=args.detect_dir, dataset=datasets[0],
                                  detectors=not args.no_detectors, **common)  # fmt: skip
    print(f"results: {out / 'results.md'}\nreport:  {out / 'report.html'}")
    print((out / "results.md").read_text(encoding="utf-8"))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    raw = RAW
    s = sub.add_parser("bench", help="run a benchmark protocol end to end", formatter_class=raw,
                       epilog=EPILOG_BENCH)  # fmt: skip
    s.add_argument("task", help="detect | augment | calibrate | adapt | anomaly | codec")
    s.add_argument("--quick", action="store_true",
                   help="CPU-sized protocol (on 2 cores: detect 40 min to 2.5 hours; augment, calibrate, adapt, anomaly "
                   "under 30 min each; codec 39 min)")  # fmt: skip
    s.add_argument("--methods", help="comma-separated subset: detectors (detect) or conditions (augment: none, "
                   "mixup, cutmix, dcutmix-K2, ..., dmixup-K5; adapt: linear, full, lora-r4, lora-r8, lora-r16)")  # fmt: skip
    s.add_argument("--steps", type=int_at_least(1), help="training steps per run (default: the protocol's)")
    s.add_argument("--preset", help="method preset for every method (default: quick with --quick)")
    s.add_argument("--seed", type=int, default=0, help="training seed (detect, calibrate)")
    s.add_argument(
        "--seeds", type=csv_of(int), help="augment: comma-separated training seeds (default 0,1,2)"
    )
    s.add_argument(
        "--datasets",
        help="augment: comma-separated data sets (default fashion-mnist,opencv-digits); "
        "calibrate: the one classification data set (default fashion-mnist); adapt: the parts to run "
        "(default fmnist,detect); anomaly: the sets (default elpv-mono,elpv-poly,textures,textures-misaligned)",
    )
    s.add_argument(
        "--family", default="dcgan", help="adapt: the unseen SynthBench family the detector adapts to"
    )
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override for every method, e.g. train.num_workers=8 (model.* keys must exist in all)",
    )
    s.add_argument("--device", default="auto")
    s.add_argument("--out", help="output folder (default results/<task>-quick or results/<task>)")
    s.add_argument("--attack-images", type=int_at_least(0), default=28,
                   help="detect: fake test images attacked for the adversarial table (default 28; 0 skips it)")  # fmt: skip
    s.add_argument(
        "--queries",
        type=int_at_least(1),
        default=1000,
        help="detect: HopSkipJump queries per image (default 1000)",
    )
    s.add_argument("--detect-dir", help="calibrate: a `bench detect` folder whose trained detectors to calibrate "
                   "(default: train a quick cnndet here)")  # fmt: skip
    s.add_argument("--no-detectors", action="store_true", help="calibrate: skip the binary detectors' part")
    s.add_argument("--images", type=int_at_least(1), help="codec: only the first N images")
    s.add_argument(
        "--iterations",
        type=int_at_least(1),
        help="codec: overfitting iterations per image (quick 800, full 3000)",
    )
    s.add_argument(
        "--lambdas",
        type=csv_of(float, positive=True),
        help="codec: comma-separated lambdas of the neural codecs",
    )
    s.add_argument("--data-dir", help="codec: a Kodak-style folder of images instead of the built-in set")
    s.add_argument("--ablation", action="store_true", help="codec: also EQLINR with one addition removed at a time "
                   "(LEM, SGA, temperature penalty, Gaussian); reuses the folder's points")  # fmt: skip
    s.add_argument("--pooled", action="store_true", help="anomaly: one model for all textures of a texture set "
                   "(default: one per texture, metrics averaged, the MVTec convention)")  # fmt: skip
    s.set_defaults(fn=cmd_bench)
