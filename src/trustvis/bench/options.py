"""What every bench shares, :class:`BenchOptions`, and the table of benches, :data:`BENCHES`.

``trustvis bench BENCH`` is built from this table, with no branch per bench::

    BENCHES[name] ──► sub-command `trustvis bench name`: the shared flags the bench takes (entry.options,
                      see OPTION_FLAGS) + its own flags (entry.add_arguments)
    parsed flags  ──► BenchOptions(...) + entry.kwargs(args) ──► entry.load()(opts, **kwargs) ──► out folder

Every bench is a function ``run_<name>_bench(opts: BenchOptions, **own) -> Path`` whose own keyword
arguments are the dests of its own flags. The bench modules are imported only when a bench runs: this module
imports neither torch nor numpy, so building the parser (``--help``) stays fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustvis.argtypes import csv_of as _csv_of
from trustvis.argtypes import int_at_least as _int_at_least
from trustvis.argtypes import names as _names


@dataclass
class BenchOptions:
    """The settings the benches share. Each sub-command offers only those its bench uses (``entry.options``:
    codec takes no steps, preset, device or ``--set``; augment takes ``--seeds`` instead of ``--seed``)."""

    quick: bool = True  # the CPU-sized protocol
    out_dir: str | Path | None = None  # default results/<bench>-quick or results/<bench>
    steps: int | None = None  # training steps per run; None = the protocol's budgets
    device: str = "auto"
    preset: str | None = None  # one method preset for every method; None = the protocol's
    overrides: list[str] = field(default_factory=list)  # the user's ``--set key=value``, applied last
    seed: int = 0
    command: str = ""  # the command line, recorded in results.json
    progress: bool = True

    def __post_init__(self) -> None:
        self.overrides = list(self.overrides or [])

    @property
    def mode(self) -> str:
        """``quick`` or ``full``."""
        return "quick" if self.quick else "full"

    def output(self, bench: str) -> Path:
        """The output folder (``--out`` or ``results/<bench>-<mode>``), created."""
        out = Path(self.out_dir or f"results/{bench}-{self.mode}")
        out.mkdir(parents=True, exist_ok=True)
        return out

    def command_or(self, bench: str) -> str:
        """The recorded command, or the plain ``trustvis bench <bench> [--quick]`` it stands for."""
        return self.command or f"trustvis bench {bench}{' --quick' if self.quick else ''}"


def _one_name(text: str) -> str:
    names = _names(text) or []
    if len(names) != 1:
        raise argparse.ArgumentTypeError(f"takes one data set, got {names}")
    return names[0]


# ----------------------------------------------------------------------------------------------------
# the shared flags: BenchOptions field -> (flag, argparse keywords); progress and command come from the
# global -q and the command line


OPTION_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "quick": ("--quick", {"action": "store_true", "help": "CPU-sized protocol"}),
    "steps": (
        "--steps",
        {
            "type": _int_at_least(1),
            "metavar": "N",
            "help": "training steps per run (default: the protocol's)",
        },
    ),
    "preset": ("--preset", {"help": "method preset for every method (default: the protocol's)"}),
    "seed": ("--seed", {"type": int, "default": 0, "help": "seed of the runs (default 0)"}),
    "overrides": (
        "--set",
        {
            "action": "append",
            "metavar": "KEY=VALUE",
            "help": "override for every method, applied after the bench's own settings, e.g. "
            "train.num_workers=8 (model.* keys must exist in all)",
        },
    ),
    "device": ("--device", {"default": "auto", "help": "auto | cpu | cuda | cuda:N (default auto)"}),
    "out_dir": ("--out", {"metavar": "DIR", "help": "output folder"}),
}
ALL_OPTIONS = tuple(OPTION_FLAGS)


def add_option_arguments(parser: Any, bench: str, entry: BenchEntry) -> None:
    """Add the shared flags that bench ``bench`` (``entry``) takes to ``parser`` (a parser or an argument
    group), each stored under its :class:`BenchOptions` field name."""
    for name in entry.options:
        flag, kwargs = OPTION_FLAGS[name]
        if name == "quick" and entry.quick_time:
            kwargs = {**kwargs, "help": f"CPU-sized protocol ({entry.quick_time})"}
        elif name == "out_dir":
            kwargs = {**kwargs, "help": f"output folder (default results/{bench}-quick or results/{bench})"}
        parser.add_argument(flag, dest=name, **kwargs)


def options_from(
    args: argparse.Namespace, entry: BenchEntry, command: str = "", quiet: bool = False
) -> BenchOptions:
    """The :class:`BenchOptions` of parsed ``args``: the fields ``entry`` offers as flags, the command line,
    and progress bars unless ``quiet`` (the global ``-q``) and the bench lets ``-q`` turn them off."""
    flags = {name: getattr(args, name) for name in entry.options}
    return BenchOptions(**flags, command=command, progress=not (quiet and entry.quiet_hides_progress))


# ----------------------------------------------------------------------------------------------------
# the table of benches


@dataclass(frozen=True)
class BenchEntry:
    """One bench: its help texts, its flags and the function that runs it."""

    help: str  # one line in `trustvis bench --help`
    about: str  # what the protocol measures: the sub-command's description and the bench help's epilog
    target: str  # "module:function", called as function(opts: BenchOptions, **kwargs(args))
    add_arguments: Callable[[Any], None]  # adds the bench's own flags (dests = the function's keywords)
    kwargs: Callable[[argparse.Namespace], dict[str, Any]]  # parsed flags -> the function's own keywords
    options: tuple[str, ...] = ALL_OPTIONS  # the BenchOptions fields it takes as flags
    quick_time: str = ""  # how long --quick takes, for the --quick help
    # whether the global -q turns the bench's progress bars off. Not for the benches that train: their
    # progress setting is part of every run config (train.progress), which a rerun compares to reuse a
    # finished run, so -q must not change it (``--set train.progress=false`` does, on purpose)
    quiet_hides_progress: bool = False
    examples: tuple[str, ...] = ()

    def load(self) -> Callable[..., Path]:
        """The bench function (its module is imported now)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


def _pick(*names: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    """``args -> {name: args.name}``: the bench's own keywords are the dests of its own flags."""
    return lambda args: {n: getattr(args, n) for n in names}


def _detect_args(p: Any) -> None:
    p.add_argument("--methods", type=_names, help="comma-separated detectors (default cnndet,bihpf,frepgan,"
                   "fingerprintnet,d4,npr)")  # fmt: skip
    p.add_argument("--attack-images", type=_int_at_least(0), default=28, metavar="N",
                   help="fake test images attacked for the adversarial table (default 28; 0 skips it)")  # fmt: skip
    p.add_argument("--queries", dest="attack_queries", type=_int_at_least(1), default=1000, metavar="N",
                   help="HopSkipJump queries per image (default 1000)")  # fmt: skip
    p.add_argument("--synthbench", choices=("tiny", "demo", "quick", "full"), metavar="SIZE",
                   help="SynthBench size: tiny (seconds), demo (trustvis demo), quick, full (default: quick with "
                   "--quick, else full)")  # fmt: skip
    p.add_argument("--no-robustness", dest="robustness", action="store_false",
                   help="skip the degraded test sets (JPEG, blur, resize)")  # fmt: skip
    p.add_argument("--data-version", choices=("v1", "v2"), default="v1",
                   help="SynthBench edition: v1 (default; 7 families, one seed, degradations, adversarial table) or "
                   "v2 (10 unseen families incl. diffusion, inpainting and codec ones, clean and laundered test "
                   "sets, 3 seeds, false alarms at the validation threshold; default --out results/detect-v2-quick)")  # fmt: skip
    p.add_argument("--seeds", type=_csv_of(int), help="v2: comma-separated training seeds (default 0,1,2)")


def _augment_args(p: Any) -> None:
    p.add_argument("--methods", dest="conditions", type=_names, metavar="CONDITIONS",
                   help="comma-separated conditions: none, mixup, cutmix, dcutmix-K2, dcutmix-K3, dcutmix-K5, "
                   "dmixup-K2, dmixup-K3, dmixup-K5 (default all)")  # fmt: skip
    p.add_argument("--seeds", type=_csv_of(int), help="comma-separated training seeds (default 0,1,2)")
    p.add_argument(
        "--datasets", type=_names, help="comma-separated data sets (default fashion-mnist,opencv-digits)"
    )


def _calibrate_args(p: Any) -> None:
    p.add_argument("--datasets", dest="dataset", type=_one_name, default="fashion-mnist", metavar="DATASET",
                   help="the one classification data set (default fashion-mnist)")  # fmt: skip
    p.add_argument("--detect-dir", metavar="DIR", help="a `bench detect` folder whose trained detectors to "
                   "calibrate (default: train a quick cnndet here)")  # fmt: skip
    p.add_argument(
        "--no-detectors", dest="detectors", action="store_false", help="skip the binary detectors' part"
    )


def _adapt_args(p: Any) -> None:
    p.add_argument("--methods", dest="conditions", type=_names, metavar="CONDITIONS",
                   help="comma-separated conditions: linear, full, lora-rK (default linear,full,lora-r4,lora-r8,"
                   "lora-r16)")  # fmt: skip
    p.add_argument("--datasets", dest="parts", type=_names, metavar="PARTS",
                   help="the parts to run: fmnist, detect (default both)")  # fmt: skip
    p.add_argument("--family", default="dcgan", help="the unseen SynthBench family the detector adapts to "
                   "(default dcgan)")  # fmt: skip


def _anomaly_args(p: Any) -> None:
    p.add_argument("--methods", type=_names, help="comma-separated anomaly methods (default padim,fyd)")
    p.add_argument("--datasets", type=_names, help="comma-separated sets (default elpv-mono,elpv-poly,textures,"
                   "textures-misaligned)")  # fmt: skip
    p.add_argument("--pooled", dest="per_category", action="store_false", help="one model for all textures of "
                   "a texture set (default: one per texture, metrics averaged, the MVTec convention)")  # fmt: skip


def _codec_args(p: Any) -> None:
    p.add_argument("--methods", dest="codecs", type=_names, metavar="CODECS", help="comma-separated codecs: "
                   "eqlinr, coolchic, jpeg, webp, avif, jpeg2000 (default all that Pillow can write)")  # fmt: skip
    p.add_argument("--images", type=_int_at_least(1), metavar="N", help="only the first N images")
    p.add_argument("--iterations", type=_int_at_least(1), metavar="N",
                   help="overfitting iterations per image (quick 800, full 3000)")  # fmt: skip
    p.add_argument("--lambdas", type=_csv_of(float, positive=True), help="comma-separated lambdas of the neural "
                   "codecs")  # fmt: skip
    p.add_argument("--data-dir", dest="folder", metavar="DIR", help="a Kodak-style folder of images instead of "
                   "the built-in set")  # fmt: skip
    p.add_argument("--ablation", action="store_true", help="also EQLINR with one addition removed at a time (LEM, "
                   "SGA, temperature penalty, Gaussian); reuses the folder's points")  # fmt: skip
    p.add_argument("--no-speed", dest="speed", action="store_false", help="skip the speed ratios (decode against a "
                   "synthesis pass at 256x256, 512x512, 768x512; an encode iteration against a synthesis step)")  # fmt: skip


def _antispoof_args(p: Any) -> None:
    p.add_argument("--methods", type=_names, help="comma-separated anti-spoofing methods (default mtofnet,rgbcnn,"
                   "silentface,depthcnn,rgbdcnn)")  # fmt: skip
    p.add_argument("--protocols", type=_names, help="unseen (train on 4 display types, test on the other 5), seen "
                   "(all 9 in training) or both (default unseen,seen)")  # fmt: skip
    p.add_argument("--seeds", type=_csv_of(int), help="comma-separated training seeds (default 0,1)")
    p.add_argument("--recapturebench", choices=("tiny", "quick", "full"), metavar="SIZE",
                   help="RecaptureBench size: tiny (seconds), quick, full (default: quick with --quick, else full)")  # fmt: skip


def _reid_args(p: Any) -> None:
    p.add_argument("--methods", type=_names, help="comma-separated re-identification methods (default finetune,"
                   "fixbase,rollback)")  # fmt: skip
    p.add_argument("--datasets", type=_names, help="vtest (pedestrian tracks of OpenCV's vtest.avi), photoreid "
                   "(photos as identities through synthetic cameras) or both (default vtest,photoreid)")  # fmt: skip
    p.add_argument("--seeds", type=_csv_of(int), help="comma-separated training seeds (default 0,1,2)")
    p.add_argument("--size", choices=("tiny", "quick", "full"), help="photoreid size (default: quick with --quick, "
                   "else full)")  # fmt: skip


def _active_args(p: Any) -> None:
    p.add_argument("--methods", type=_names, help="comma-separated query strategies (default random,entropy,margin,"
                   "coreset,bald,vabal)")  # fmt: skip
    p.add_argument("--datasets", dest="pools", type=_names, metavar="POOLS", help="comma-separated pools: "
                   "balanced, dominant (class 0 whole, the others at 10 %%), longtail (default balanced,dominant)")  # fmt: skip
    p.add_argument("--seeds", type=_csv_of(int), help="comma-separated seeds: each draws the initial labels and "
                   "trains every strategy (default 0,1,2)")  # fmt: skip
    p.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "opencv-digits", "sklearn-digits"),
                   help="the classification data set (default fashion-mnist)")  # fmt: skip


def _vit_args(p: Any) -> None:
    p.add_argument("--methods", dest="conditions", type=_names, metavar="CONDITIONS",
                   help="comma-separated conditions: cnn, vit, deit-hard, deit-soft, aal, aal-adv (default all; "
                   "deit-* add cnn, their teacher, and aal-adv adds aal, its first run)")  # fmt: skip
    p.add_argument("--datasets", dest="settings", type=_names, metavar="SETTINGS",
                   help="comma-separated settings: fmnist-1k, fmnist-5k, digits, stamps (default all)")  # fmt: skip
    p.add_argument("--seeds", type=_csv_of(int), help="comma-separated training seeds (default 0,1,2)")


def _multimodal_args(p: Any) -> None:
    p.add_argument("--methods", type=_names, help="comma-separated image <-> speech methods (default xmodal,latentreg,"
                   "jmvae)")  # fmt: skip
    p.add_argument("--fractions", type=_csv_of(float), help="comma-separated paired fractions of the training clips, "
                   "in (0, 1] (default 0.01,0.05,0.1,1)")  # fmt: skip
    p.add_argument("--seeds", type=_csv_of(int), help="comma-separated training seeds (default 0,1,2)")
    p.add_argument("--images", default="opencv-digits", choices=("opencv-digits", "sklearn-digits"),
                   help="the digit images (default opencv-digits, 20x20)")  # fmt: skip
    p.add_argument("--no-third-modality", dest="third_modality", action="store_false",
                   help="skip adding the label as a third modality to each seed's VAEs")  # fmt: skip


BENCHES: dict[str, BenchEntry] = {
    "detect": BenchEntry(
        help="detectors trained on one SynthBench family, tested on every family",
        about="train detectors on one SynthBench family, test on all; robustness; adversarial table",
        target="trustvis.bench.detect:run_detect_bench",
        add_arguments=_detect_args,
        kwargs=_pick(
            "methods", "attack_images", "attack_queries", "synthbench", "robustness", "data_version", "seeds"
        ),
        quick_time="40 min to 2.5 hours on 2 cores",
        examples=(
            "trustvis bench detect --quick",
            "trustvis bench detect --quick --methods bihpf --steps 200 --out results/try",
            "trustvis bench detect --quick --data-version v2",
            "trustvis bench detect --device cuda --set train.num_workers=8",
        ),
    ),
    "augment": BenchEntry(
        help="no mixing / Mixup / CutMix / DCutMix / DMixup, over seeds",
        about="no mixing / Mixup / CutMix / DCutMix / DMixup (K=2,3,5) on Fashion-MNIST and OpenCV digits,\n"
        "3 seeds: error, NLL, ECE, accuracy under noise/blur/JPEG, sample-wise uncertainty",
        target="trustvis.bench.augment:run_augment_bench",
        add_arguments=_augment_args,
        kwargs=_pick("conditions", "seeds", "datasets"),
        options=tuple(o for o in ALL_OPTIONS if o != "seed"),  # --seeds instead
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench augment --quick",
            "trustvis bench augment --quick --methods none,cutmix,dcutmix-K3 --seeds 0 --datasets opencv-digits",
        ),
    ),
    "calibrate": BenchEntry(
        help="TS / CTS / ETS / PTS fitted with the CE loss and with SCTL",
        about="TS / CTS / ETS / PTS with the CE loss and with SCTL on balanced and long-tailed\n"
        "Fashion-MNIST, plus binary detectors' scores on unseen SynthBench families",
        target="trustvis.bench.calibrate:run_calibrate_bench",
        add_arguments=_calibrate_args,
        kwargs=_pick("dataset", "detect_dir", "detectors"),
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench calibrate --quick",
            "trustvis bench calibrate --quick --detect-dir results/detect-quick",
        ),
    ),
    "adapt": BenchEntry(
        help="linear probe / full fine-tuning / LoRA from ImageNet MobileNetV2",
        about="from ImageNet MobileNetV2: linear probe / full fine-tuning / LoRA r=4,8,16 on Fashion-MNIST\n"
        "with 10 and 100 labels per class, and a detector adapted to an unseen family from 100 images:\n"
        "accuracy/AP, trainable parameters, time per step, training memory",
        target="trustvis.bench.adapt:run_adapt_bench",
        add_arguments=_adapt_args,
        kwargs=_pick("conditions", "parts", "family"),
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench adapt --quick",
            "trustvis bench adapt --quick --methods linear,lora-r8 --datasets fmnist",
            "trustvis bench adapt --datasets fmnist --device cuda",
        ),
    ),
    "anomaly": BenchEntry(
        help="FYD vs PaDiM on ELPV solar cells and on textures with synthetic defects",
        about="FYD vs PaDiM on ELPV solar cells (mono, poly) and on real textures with synthetic defects\n"
        "(aligned and misaligned): image/pixel AUROC, AUPRO, F1, maps",
        target="trustvis.bench.anomaly:run_anomaly_bench",
        add_arguments=_anomaly_args,
        kwargs=_pick("methods", "datasets", "per_category"),
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench anomaly --quick",
            "trustvis bench anomaly --quick --datasets textures,textures-misaligned",
        ),
    ),
    "antispoof": BenchEntry(
        help="mToFNet vs RGB-only, Silent-Face, depth-only and RGB-D CNNs on unseen displays",
        about="mToFNet vs RGB-only, Silent-Face (RGB + Fourier loss), depth-only and early-fusion RGB-D CNNs\n"
        "on RecaptureBench (real RGB-D scenes vs the same scenes re-photographed from 9 simulated displays):\n"
        "APCER / BPCER / ACER per unseen and seen display type, AUC, EER, power spectra",
        target="trustvis.bench.antispoof:run_antispoof_bench",
        add_arguments=_antispoof_args,
        kwargs=_pick("methods", "protocols", "seeds", "recapturebench"),
        options=tuple(o for o in ALL_OPTIONS if o != "seed"),  # --seeds instead
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench antispoof --quick",
            "trustvis bench antispoof --quick --methods mtofnet,rgbcnn --protocols unseen --seeds 0",
        ),
    ),
    "reid": BenchEntry(
        help="rolling-back fine-tuning vs plain fine-tuning and fixbase on pedestrian tracks and photo identities",
        about="rolling-back fine-tuning vs plain fine-tuning and torchreid's fixbase at equal budget, from ImageNet\n"
        "MobileNetV2, on vtest.avi pedestrian tracks and photo identities: rank-1, mAP, gradients per layer",
        target="trustvis.bench.reid:run_reid_bench",
        add_arguments=_reid_args,
        kwargs=_pick("methods", "datasets", "seeds", "size"),
        options=tuple(o for o in ALL_OPTIONS if o != "seed"),  # --seeds instead
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench reid --quick",
            "trustvis bench reid --quick --datasets photoreid --seeds 0",
        ),
    ),
    "active": BenchEntry(
        help="VaB-AL vs random, entropy, margin, core-set and BALD on balanced and dominant-class pools",
        about="active learning: VaB-AL against random, entropy, margin, core-set and BALD on Fashion-MNIST pools,\n"
        "balanced and dominant-k (class 0 whole, the others at 10 %), same initial labels and budgets: test\n"
        "accuracy, balanced accuracy and macro-F1 per round, area under the learning curve, queries per class",
        target="trustvis.bench.active:run_active_bench",
        add_arguments=_active_args,
        kwargs=_pick("methods", "pools", "seeds", "dataset"),
        options=tuple(o for o in ALL_OPTIONS if o != "seed"),  # --seeds instead
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench active --quick",
            "trustvis bench active --quick --methods entropy,vabal --datasets dominant --seeds 0",
        ),
    ),
    "vit": BenchEntry(
        help="ViTs on small data: AAL vs the plain ViT and DeiT-style distillation, CNN teacher as reference",
        about="Vision Transformers trained from scratch on small data (Fashion-MNIST 1k and 5k, OpenCV digits, Tux\n"
        "Paint stamps): AAL (attention links to a frozen ImageNet CNN) and its advanced module against the plain\n"
        "ViT and DeiT hard/soft distillation from the fine-tuned CNN, same budget, 3 seeds: test top-1, steps\n"
        "to the plain ViT's accuracy, validation curves, the link matrix, attention beside CNN maps",
        target="trustvis.bench.vit:run_vit_bench",
        add_arguments=_vit_args,
        kwargs=_pick("conditions", "settings", "seeds"),
        options=tuple(o for o in ALL_OPTIONS if o != "seed"),  # --seeds instead
        quick_time="under 30 min on 2 cores",
        examples=(
            "trustvis bench vit --quick",
            "trustvis bench vit --quick --methods vit,aal --datasets fmnist-1k --seeds 0",
        ),
    ),
    "multimodal": BenchEntry(
        help="image <-> speech from few pairs: cross-modal VAE associators vs JMVAE and a latent regressor",
        about="Digit images <-> spoken digits (real Tux Paint and Asterisk voices, synthetic espeak-ng / flite\n"
        "voices, speaker-disjoint): xmodal (per-modality VAEs + associators), latentreg (the same VAEs + least-\n"
        "squares maps) and jmvae (JMVAE-kl) at 1/5/10/100 % pairs, 3 seeds: judged cross-modal accuracy, R@1,\n"
        "real and synthetic speech apart; a third modality added without retraining the VAEs",
        target="trustvis.bench.multimodal:run_multimodal_bench",
        add_arguments=_multimodal_args,
        kwargs=_pick("methods", "fractions", "seeds", "images", "third_modality"),
        options=tuple(o for o in ALL_OPTIONS if o != "seed"),  # --seeds instead
        quick_time="about 16 min on 2 cores",
        examples=(
            "trustvis bench multimodal --quick",
            "trustvis bench multimodal --quick --methods xmodal,jmvae --fractions 0.05,1 --seeds 0",
        ),
    ),
    "codec": BenchEntry(
        help="EQLINR and COOL-CHIC vs JPEG / WebP / AVIF / JPEG 2000: RD curves, BD-rates",
        about="EQLINR and COOL-CHIC vs JPEG / WebP / AVIF / JPEG 2000 on the Kodak-like set: RD curves (bpp from\n"
        "real files vs PSNR and MS-SSIM), BD-rates against JPEG and AVIF, encode / decode times",
        target="trustvis.bench.codec:run_codec_bench",
        add_arguments=_codec_args,
        kwargs=_pick("codecs", "images", "iterations", "lambdas", "folder", "ablation", "speed"),
        options=("quick", "seed", "out_dir"),  # no training run: no steps, preset, device or --set
        quiet_hides_progress=True,
        quick_time="11 min on 2 cores",
        examples=(
            "trustvis bench codec --quick",
            "trustvis bench codec --quick --methods eqlinr,jpeg,avif --images 2",
            "trustvis bench codec --data-dir ~/kodak --iterations 10000         # your own Kodak-style folder",
            "trustvis bench codec --quick --ablation        # + EQLINR leave-one-out variants (after bench-codec: "
            "~80 min)",
        ),
    ),
}
