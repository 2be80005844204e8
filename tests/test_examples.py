"""Every example the command line prints, and every command in the README's code blocks, runs as printed.

Collected (``all_examples``): the lines of every parser's description and epilog (``build_parser()`` walked
recursively) that start a ``trustvis`` or ``torchrun`` command, the ``examples`` of every entry of
``trustvis.bench.options.BENCHES``, and the commands (``trustvis ...``, ``torchrun ...``, one ```` ```python````
block each) of the fenced code blocks of README.md and CONTRIBUTING.md. An example is its text without the
trailing ``# comment``, with backslash-continued lines joined and runs of spaces collapsed.

Each example is either run by a scenario below (``SCENARIOS``: in-process through ``trustvis.cli.main``, a
Python block through ``exec``, in a fresh working folder with its own ``TRUSTVIS_HOME``, after the scenario
has built what the examples name; exit status 0, and the files it says it writes are there: ``WRITES`` and
``_check_outputs``) or listed in ``NOT_RUN`` with the reason; ``test_every_example_is_run_or_listed`` fails on an example that
is neither (classify a new one) and on a table entry no longer printed anywhere (the tables cannot rot).

Examples run exactly as printed, except:

- placeholders (``SUBSTITUTIONS``): relative names (``ROOT``, ``photo.jpg``, ``runs/bihpf``, ...) are built
  under the printed name in the working folder, so the argument is unchanged; absolute paths and ``~`` are
  rewritten to folders inside the test's tmp_path;
- budgets (``ADDED``): an example that names no step budget of its own gets ``--steps N`` or
  ``--preset tiny`` appended, listed per example;
- SynthBench ``quick`` is the micro build of ``tests/conftest.py`` (16-pixel patches, built in seconds)
  with 40 training patches per class.

Scenarios that take longer are marked slow (``SLOW_TIMES``, with their time; ``make test-slow`` runs them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_forensynths
from trustvis.bench.options import BENCHES
from trustvis.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "CONTRIBUTING.md")

# ----------------------------------------------------------------------------------------------------
# collecting the examples

_START = re.compile(r"(?<![`\w./-])(?:trustvis|torchrun) ")  # a command, not `quoted` prose
_HEADING = re.compile(r"trustvis(?: [\w-]+)*: ")  # "trustvis bench detect: what it measures"


def _clean(cmd: str) -> str:
    """The example's text: no trailing ``# comment`` (outside quotes), single spaces."""
    cmd = re.sub(r"\s+#[^'\"]*$", "", cmd)
    return " ".join(cmd.split())


def _parsers(p: argparse.ArgumentParser, prog: str = "trustvis"):
    yield prog, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def help_examples() -> dict[str, list[str]]:
    """Example -> where it is printed, from every parser's description and epilog."""
    found: dict[str, list[str]] = {}
    for prog, p in _parsers(build_parser()):
        for part, text in (("description", p.description), ("epilog", p.epilog)):
            for line in (text or "").splitlines():
                m = _START.search(line)
                if m and not _HEADING.match(line[m.start() :]):
                    found.setdefault(_clean(line[m.start() :]), []).append(f"`{prog} --help` {part}")
    return found


def bench_table_examples() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, entry in BENCHES.items():
        for e in entry.examples:
            found.setdefault(_clean(e), []).append(f"BENCHES[{name!r}].examples")
    return found


def _fenced_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the first line, lines) of each fenced code block of a Markdown file."""
    blocks: list[tuple[str, int, list[str]]] = []
    current = None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if current is None:
                current = (line[3:].strip(), n + 1, [])
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current[2].append(line)
    return blocks


def _python_key(code: list[str]) -> str:
    """A Python block is one example: ``python: FIRST LINE ... LAST LINE``."""
    lines = [re.sub(r"\s{2,}#.*$", "", x.strip()) for x in code if x.strip()]
    return f"python: {lines[0]} ... {lines[-1]}"


def doc_examples(path: Path) -> dict[str, list[str]]:
    """Example -> ``FILE:LINE`` for the commands (and Python blocks) of a Markdown file's code blocks."""
    found: dict[str, list[str]] = {}
    for lang, first, lines in _fenced_blocks(path):
        if lang == "python":
            found.setdefault(_python_key(lines), []).append(f"{path.name}:{first}")
            continue
        i = 0
        while i < len(lines):
            line, start = lines[i].strip(), i
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1].rstrip() + " " + lines[i].strip()
            line = line.removeprefix("$ ")
            if _START.match(line):
                found.setdefault(_clean(line), []).append(f"{path.name}:{first + start}")
            i += 1
    return found


def python_blocks() -> dict[str, str]:
    """Python example -> its code."""
    return {
        _python_key(lines): "\n".join(lines)
        for d in DOCS
        if (REPO / d).is_file()
        for lang, _, lines in _fenced_blocks(REPO / d)
        if lang == "python"
    }


def all_examples() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    sources = [help_examples(), bench_table_examples()]
    sources += [doc_examples(REPO / d) for d in DOCS if (REPO / d).is_file()]
    for src in sources:
        for example, where in src.items():
            found.setdefault(example, []).extend(where)
    return found


# ----------------------------------------------------------------------------------------------------
# the tables

# placeholder in an example -> what the test puts there (built before the example runs)
SUBSTITUTIONS = {
    "~": "a home folder in tmp_path; TRUSTVIS_HOME is its .cache/trustvis (the default place)",
    "/data/CNNDetection, ROOT, DIR": "a ForenSynths tree of 32-px images (conftest.make_forensynths): "
    "train/ 80 images of one generator, val/ and test/ 24 of two",
    "GENIMAGE_ROOT": "the same images in the GenImage layout <gen>/{train,val}/{ai,nature}",
    "/ckpt/resnet50.pth, /path/to/resnet50-0676ba61.pth": "a randomly initialised torchvision ResNet-50 "
    "state dict, saved with torch.save",
    "MVTEC_ROOT": "a tiny MVTec AD tree of the category bottle (train/good, test/{good,scratch}, ground_truth)",
    "my_images/, held_out/": "3 classes x 40 images of 16 px (<class>/*.png)",
    "my_parts/": "the anomaly task's tiny folder (normal/, abnormal/, mask/)",
    "photo.jpg, photo.png, shirt.jpg, shirt.png, more_images/, folder_of_images/, photos/": "small photos "
    "(48x48 or 32x32 crops of a scikit-image photo) under those names",
    "my_logits.npz": "logits of 3 classes made with np.savez as `trustvis calibrate --help` says",
    "runs/classifier, runs/d4, runs/cnndet": "runs trained by the test first (`--preset tiny` on the task's "
    "tiny folder; runs/cnndet: the default preset for 1 step, as the init_from example needs)",
    "results/detect-quick/runs/cnndet": "a cnndet trained with --preset tiny on SynthBench (as the detect bench "
    "leaves its runs there)",
    "results/demo/runs/d4": "a d4 trained with --preset tiny on ROOT (what `make demo` trains there)",
    "BENCH": "each bench name in turn",
    "MARKET_ROOT, person1.jpg, crops/": "a tiny Market-1501 tree (trustvis.data.reid.market.tiny_market) and "
    "two of its images / a folder of them",
    "labelled/, unlabelled/": "3 classes x 6 images of 16 px (<class>/*.png, the classify task's tiny folder) "
    "and 12 unlabelled images of the same kinds",
    "spoken/, digits/": "the test clips (0.5 s tones, .wav) and images of the multimodal task's tiny folder",
    "my_pairs/, photo_rgb.jpg, photo_depth.png": "the antispoof task's tiny folder of RGB + depth pairs "
    "(train/ and val/, each {real,spoof}/<medium>/<id>_rgb.png + <id>_depth.png) and one of its pairs as a "
    "JPEG photo with its depth PNG",
}

# example -> what the test appends (the example names no budget of its own)
ADDED: dict[str, str] = {
    "trustvis train bihpf --preset quick --out runs/bihpf": "--steps 2",
    "trustvis train cnndet --data /data/CNNDetection --set model.weights=/ckpt/resnet50.pth": "--steps 1",
    "trustvis train cnndet --data ROOT --set model.weights=/path/to/resnet50-0676ba61.pth --out runs/cnndet-progan": "--steps 1",
    "trustvis train npr --data GENIMAGE_ROOT --out runs/npr-genimage": "--steps 1",
    "trustvis train cnndet --set train.init_from=runs/cnndet --set train.trainable=heads": "--steps 1",
    "trustvis train cnndet --preset quick --lora r=8,alpha=16 --set model.backbone=mobilenet_v2 --set model.weights=imagenet --out runs/cnndet-lora": "--steps 2",
    "trustvis train classifier --data my_images/ --out runs/mine": "--steps 2",
    "trustvis train kmix --preset quick --set model.K=3 --out runs/kmix": "--steps 2",
    "trustvis train kmix --preset quick --set model.K=3 --set model.mode=cutmix --out runs/kmix": "--steps 2",
    "trustvis train lora --preset quick --out runs/lora": "--steps 2",
    "trustvis train classifier --lora 'r=4,targets=re:.*features\\.1[0-8]\\.conv\\.(0\\.0|2)' --set model.backbone=mobilenet_v2 --set model.weights=imagenet --set model.input_size=64": "--steps 2",
    "trustvis train padim --set data.name=elpv-mono --out runs/padim-mono": "--preset tiny",
    "trustvis train fyd --preset quick --set data.name=textures-misaligned --out runs/fyd-tex": "--steps 2",
    "trustvis train padim --set data.name=mvtec --set data.root=MVTEC_ROOT --set data.category=bottle": "--preset tiny",
    "trustvis train fyd --set data.name=folder --set data.root=my_parts/": "--preset tiny",
    "trustvis train mtofnet --data my_pairs/ --out runs/mtofnet": "--preset tiny",
    "trustvis train rgbcnn --set data.protocol=seen --out runs/rgbcnn-seen": "--preset tiny",
    "trustvis train rollback --preset quick --out runs/rollback": "--steps 2 --set data.size=tiny",
    "trustvis train vabal --preset quick --set data.pool=dominant --out runs/vabal": "--steps 2 --set "
    "data.name=sklearn-digits --set data.rounds=1",
    "trustvis train entropy --data labelled/ --set data.oracle=user --out runs/al": "--preset tiny",
    "trustvis train rollback --preset quick --data MARKET_ROOT --out runs/rollback-market": "--steps 2 --set "
    "train.batch_size=8",
    "trustvis train vit --preset quick --out runs/vit": "--steps 2",
    # the real Tux Paint / Asterisk voices only: the synthetic ones would be generated into the test's empty cache
    "trustvis train xmodal --preset quick --out runs/xmodal": "--steps 2 --set model.vae_steps=1 --set "
    "data.sources=tuxpaint,asterisk",
    "trustvis train xmodal --preset quick --set model.vaes_from=runs/xmodal --set data.fraction=0.01 --out "
    "runs/xmodal-1pc": "--steps 2 --set data.sources=tuxpaint,asterisk",
    "trustvis train xmodal --preset quick --set model.vaes_from=runs/xmodal --set model.modalities=image,speech,label "
    "--out runs/xmodal-label": "--steps 2 --set model.vae_steps=1 --set data.sources=tuxpaint,asterisk",
    "trustvis train jmvae --preset quick --set data.fraction=0.01 --out runs/jmvae": "--steps 2 --set "
    "data.sources=tuxpaint,asterisk",
    "trustvis train aal --preset quick --out runs/aal": "--steps 2",
    "trustvis train aal --preset quick --set model.links_from=runs/aal --out runs/aal-adv": "--steps 2",
    "trustvis train classifier --preset quick --set model.backbone=mobilenet_v2 --set model.weights=imagenet --set "
    "model.input_size=32 --set data.max_images=100 --out runs/teacher": "--steps 2",
    "trustvis train deit --preset quick --set model.teacher=runs/teacher --set model.distill=soft --out runs/deit": (
        "--steps 2"
    ),
}

_GPU = "needs a CUDA GPU"
NOT_RUN: dict[str, str] = {
    "trustvis bench detect --quick": "the whole detect bench: 40 min to 2.5 hours on 2 cores",
    "trustvis bench detect --quick --methods bihpf --steps 200 --out results/try": (
        "a bench: 200 training steps, the robustness sweeps and 28 HopSkipJump attacks (over 10 min on "
        "shared 2 cores, even on the micro SynthBench)"
    ),
    "trustvis report results/detect-quick": (
        "needs the folder of `trustvis bench detect --quick` (40 min+); tests/test_report.py renders a bench "
        "folder, and `trustvis report runs/bihpf` runs here"
    ),
    "trustvis bench detect --device cuda --set train.num_workers=8": f"the full detect bench: hours; {_GPU}",
    "trustvis bench detect --quick --data-version v2": (
        "the whole v2 detect bench: about an hour on 2 cores (tests/test_bench_detect.py runs its protocol on a "
        "micro SynthBench v2 through the CLI)"
    ),
    "trustvis data build synthbench --version v2 --quick": (
        "the v2 quick build: about 14 min on 2 cores (the synthbench scenario builds v2 tiny through the same CLI)"
    ),
    "trustvis bench augment --quick": "the whole augment bench: under 30 min on 2 cores",
    "trustvis bench multimodal --quick": "the whole image <-> speech bench: about 16 min on 2 cores",
    "trustvis bench multimodal --quick --methods xmodal,jmvae --fractions 0.05,1 --seeds 0": (
        "6 trainings (the VAEs, 2 x 2 methods, the label modality) on the real digit data: minutes"
    ),
    "trustvis bench augment --quick --methods none,cutmix,dcutmix-K3 --seeds 0 --datasets opencv-digits": (
        "3 trainings of 150 steps plus the robustness sweeps: minutes"
    ),
    "trustvis bench calibrate --quick": "the whole calibrate bench: under 30 min on 2 cores",
    "trustvis bench calibrate --quick --detect-dir results/detect-quick": (
        "the calibrate bench (under 30 min) on a `bench detect --quick` folder (40 min+)"
    ),
    "trustvis bench adapt --quick": "the whole adapt bench: under 30 min on 2 cores",
    "trustvis bench adapt --quick --methods linear,lora-r8 --datasets fmnist": (
        "2 conditions x 2 label budgets of MobileNetV2 training: minutes"
    ),
    "trustvis bench adapt --datasets fmnist --device cuda": f"the full adapt protocol; {_GPU}",
    "trustvis bench anomaly --quick": "the whole anomaly bench: under 30 min on 2 cores",
    "trustvis bench anomaly --quick --datasets textures,textures-misaligned": (
        "PaDiM and FYD on 12 textures: about 10 min"
    ),
    "trustvis bench codec --quick": "the whole codec bench: 11 min on 2 cores",
    "trustvis bench codec --quick --methods eqlinr,jpeg,avif --images 2": (
        "800 overfitting iterations x 2 images x every lambda: minutes"
    ),
    "trustvis bench codec --data-dir ~/kodak --iterations 10000": (
        "needs the user's Kodak folder; 10000 iterations per image: hours"
    ),
    "trustvis bench codec --quick --ablation": "the codec bench plus its ablation: about 80 min",
    "torchrun --nproc_per_node 2 -m trustvis train cnndet --preset quick --out runs/ddp": (
        "starts 2 processes; the 2-process gloo training is tests/test_trainer.py's"
    ),
    "torchrun --nproc_per_node 4 -m trustvis train cnndet --preset default --data ROOT --out runs/ddp": (
        "starts 4 processes (the default preset: 20000 steps of ResNet-50)"
    ),
    "torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29400 -m trustvis train "
    "bihpf --data ROOT --out runs/ddp": "needs 2 machines with 8 GPUs each",
    "trustvis bench antispoof --quick": "the whole antispoof bench: under 30 min on 2 cores",
    "trustvis bench antispoof --quick --methods mtofnet,rgbcnn --protocols unseen --seeds 0": (
        "2 trainings of 600 steps on RecaptureBench quick: minutes"
    ),
    "trustvis bench reid --quick": "the whole reid bench: 3 methods x 3 seeds x 2 sets of MobileNetV2 training",
    "trustvis bench reid --quick --datasets photoreid --seeds 0": (
        "3 trainings of MobileNetV2 on photoreid quick: minutes"
    ),
    "trustvis train finetune --preset quick --set data.name=vtest --out runs/ft-vtest": (
        "builds the vtest.avi tracks first (HOG detector over 795 frames: about 4 min); "
        "tests/test_reid_vtest.py checks the build on a short clip"
    ),
    "trustvis bench active --quick": "36 loops of 6 trainings on Fashion-MNIST: about 15 min; "
    "tests/test_bench_active.py runs the protocol in miniature",
    "trustvis bench active --quick --methods entropy,vabal --datasets dominant --seeds 0": (
        "2 loops of 6 trainings on Fashion-MNIST: about a minute"
    ),
    "trustvis bench vit --quick": "72 trainings (6 methods x 4 settings x 3 seeds): about 25 min; "
    "tests/test_bench_vit.py runs the protocol in miniature",
    "trustvis bench vit --quick --methods vit,aal --datasets fmnist-1k --seeds 0": "2 ViT trainings of 300 steps: "
    "about a minute",
    "trustvis demo": "a bench in miniature (SynthBench demo, two detectors, a report): minutes",
    "trustvis demo --out results/my-demo --steps 500": "the demo with 500 steps per detector: minutes",
}

# ----------------------------------------------------------------------------------------------------
# running examples


class Examples:
    """Runs examples in one working folder; ``home`` is what ``~`` stands for."""

    def __init__(self, work: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.work, self.home, self.capsys = work, home, capsys
        self.abs: dict[str, str] = {}  # absolute placeholder path -> its stand-in

    def argv(self, example: str) -> list[str]:
        words = shlex.split(example)
        assert words[0] == "trustvis", example
        out = []
        for w in words[1:]:
            if w.startswith("~"):
                w = str(self.home) + w[1:]
            for placeholder, stand_in in self.abs.items():
                w = w.replace(placeholder, stand_in)
            out.append(w)
        return out + ADDED.get(example, "").split()

    def cli(self, argv: list[str]) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse: --help, usage errors
            rc = e.code if isinstance(e.code, int) else 1
        cap = self.capsys.readouterr()
        return rc, cap.out, cap.err

    def run(self, example: str) -> str:
        if example.startswith("python: "):
            return self.python(example)
        argv = self.argv(example)
        rc, out, err = self.cli(argv)
        assert rc == 0, (
            f"{example}\n  argv {argv}\n  exit {rc}\n  stderr: {err[-3000:]}\n  stdout: {out[-2000:]}"
        )
        _check_outputs(argv, out, self.work)
        missing = [f for f in WRITES.get(example, []) if not (self.work / f).exists()]
        assert not missing, f"{example} did not write {missing}"
        return out

    def python(self, example: str) -> str:
        """A README Python block, run as a script in the working folder."""
        code = python_blocks()[example]
        self.capsys.readouterr()
        exec(compile(code, f"<{example}>", "exec"), {"__name__": "__main__"})
        out = self.capsys.readouterr().out
        assert out.strip() or "print(" not in code, f"{example} printed nothing"
        return out

    def train(self, *argv: str) -> None:
        """A run the examples need that no example trains (the test's own command)."""
        rc, _, err = self.cli(["train", *argv, "--set", "train.progress=false"])
        assert rc == 0, f"setup: trustvis train {' '.join(argv)}\n{err[-3000:]}"


# example -> files it writes that its text or the README names (checked after it runs, beside the generic
# checks of _check_outputs)
WRITES: dict[str, list[str]] = {
    "trustvis export runs/classifier --format onnx": [
        "runs/classifier/model.onnx",
        "runs/classifier/model.onnx.json",
    ],
    "trustvis export runs/d4 --format torchscript --out d4.pt": ["d4.pt", "d4.pt.json"],
    "trustvis train cnndet --preset tiny --set train.metrics_csv=true --set train.tensorboard=true --out runs/c": [
        "runs/c/metrics.csv",
        "runs/c/tensorboard",
    ],
    "trustvis predict runs/fyd-tex photos/ --json": ["runs/fyd-tex/maps"],
    "trustvis predict runs/xmodal-label spoken/ digits/ --maps generated/": ["generated"],
    "trustvis train lora --preset quick --out runs/lora": [
        "runs/lora/adapter/adapter_config.json",
        "runs/lora/adapter/adapter_model.safetensors",
    ],
}


def _flag(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def _check_outputs(argv: list[str], out: str, work: Path) -> None:
    """What the example says it writes is there (beyond exit status 0)."""
    if "--json" in argv:
        json.loads(out)
    if argv[0] == "train":
        run = _flag(argv, "--out") or re.search(r"-> (\S+)", out).group(1)
        assert (work / run / "model.json").is_file(), out
    for flag in ("--csv", "--recon"):
        if _flag(argv, flag):
            assert (work / _flag(argv, flag)).stat().st_size > 0
    if argv[0] == "eval":
        assert (work / argv[1] / "eval.json").is_file()
    if argv[0] == "calibrate" and _flag(argv, "--out"):
        assert (work / _flag(argv, "--out") / "calibration.json").is_file()
    if argv[0] == "report":
        assert (work / re.search(r"wrote (\S+)", out).group(1)).is_file()
    if argv[:2] in (["codec", "encode"], ["codec", "decode"]):
        assert (work / argv[3]).stat().st_size > 0


# ----------------------------------------------------------------------------------------------------
# what the examples name


def _photo(path: Path, size: int = 48, seed: int = 0) -> Path:
    """A crop of a real photo (scikit-image's), saved in the format its name says."""
    from skimage import data

    img = data.astronaut()
    y, x = 100 + 37 * seed, 150 + 23 * seed
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img[y : y + size, x : x + size]).save(path)
    return path


def _resnet50_file(path: Path) -> str:
    import torch
    import torchvision

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return str(path)


def _detect_root(root: Path) -> Path:
    """ForenSynths ROOT/{train,val,test}/<gen>/{0_real,1_fake}: 80 training images (one default batch)."""
    make_forensynths(root / "train", ("gen_a",), n=40, size=32)
    make_forensynths(root / "val", ("gen_a", "gen_b"), n=6, size=32, seed=1)
    shutil.copytree(root / "val", root / "test")
    return root


def _classify_folder(root: Path) -> Path:
    """ROOT/<class>/*.png, 3 classes x 40 images of 16x16 (a default batch of 64 after the val split)."""
    rng = np.random.default_rng(0)
    for c, level in (("dark", 40), ("mid", 128), ("bright", 215)):
        (root / c).mkdir(parents=True)
        for i in range(40):
            img = np.clip(level + rng.normal(0, 12, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / c / f"{i}.png")
    return root


def _genimage_root(forensynths: Path, root: Path) -> Path:
    for split in ("train", "val"):
        for gen in (forensynths / split).iterdir():
            for src, dst in (("0_real", "nature"), ("1_fake", "ai")):
                shutil.copytree(gen / src, root / gen.name / split / dst)
    return root


def _mvtec_root(root: Path) -> Path:
    rng = np.random.default_rng(0)
    cat = root / "bottle"

    def img(path: Path, defect: bool) -> None:
        a = np.clip(120 + rng.normal(0, 6, (32, 32, 3)), 0, 255).astype(np.uint8)
        if defect:
            a[8:14, 10:16] = 250
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(path)

    for i in range(12):
        img(cat / "train" / "good" / f"{i:03d}.png", False)
    for i in range(3):
        img(cat / "test" / "good" / f"{i:03d}.png", False)
        img(cat / "test" / "scratch" / f"{i:03d}.png", True)
        mask = np.zeros((32, 32), np.uint8)
        mask[8:14, 10:16] = 255
        (cat / "ground_truth" / "scratch").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(cat / "ground_truth" / "scratch" / f"{i:03d}_mask.png")
    return root


def _logits_npz(path: Path) -> None:
    rng = np.random.default_rng(0)
    y_cal, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    logits = lambda y: 3.0 * np.eye(3)[y] + rng.normal(0, 1.5, (len(y), 3))  # noqa: E731
    np.savez(path, cal_logits=logits(y_cal), cal_labels=y_cal, test_logits=logits(y_test), test_labels=y_test)


def _needs_sources(*names: str) -> None:
    """Skip (naming the package) when a data source an example reads is not installed here."""
    from trustvis.data import sources

    rows = {r["name"]: r for r in sources.status()}
    missing = [f"{n} ({rows[n]['package']})" for n in names if not rows[n]["installed"]]
    if missing:
        pytest.skip(f"data not installed: {', '.join(missing)}")


# ----------------------------------------------------------------------------------------------------
# the scenarios: examples run in order in one working folder; a callable step builds what the next need


def _set_up_photos(ex: Examples) -> None:
    _photo(ex.work / "photo.jpg")
    for folder in ("more_images", "folder_of_images"):
        _photo(ex.work / folder / "a.png", seed=1)
        _photo(ex.work / folder / "sub" / "b.jpg", seed=2)


def _set_up_synthbench_runs(ex: Examples) -> None:
    ex.train("cnndet", "--preset", "tiny", "--out", "results/detect-quick/runs/cnndet")
    ex.train("cnndet", "--steps", "1", "--set", "model.weights=", "--out", "runs/cnndet")


def _set_up_folders(ex: Examples) -> None:
    root = _detect_root(ex.work / "ROOT")
    shutil.copytree(root, ex.work / "DIR")
    ex.abs["/data/CNNDetection"] = str(_detect_root(ex.home / "CNNDetection"))
    ex.abs["/ckpt/resnet50.pth"] = _resnet50_file(ex.home / "ckpt" / "resnet50.pth")
    ex.abs["/path/to/resnet50-0676ba61.pth"] = ex.abs["/ckpt/resnet50.pth"]
    _genimage_root(root, ex.work / "GENIMAGE_ROOT")
    ex.train("d4", "--preset", "tiny", "--data", "ROOT", "--out", "runs/d4")


def _set_up_python_api(ex: Examples) -> None:
    _detect_root(ex.work / "ROOT")
    ex.train("d4", "--preset", "tiny", "--data", "ROOT", "--out", "results/demo/runs/d4")
    _photo(ex.work / "photo.jpg")


def _set_up_classifiers(ex: Examples) -> None:
    folder = _classify_folder(ex.work / "my_images")
    shutil.copytree(folder, ex.work / "held_out")
    _photo(ex.work / "shirt.jpg", seed=3)
    _photo(ex.work / "shirt.png", seed=4)
    _logits_npz(ex.work / "my_logits.npz")
    ex.train("classifier", "--preset", "tiny", "--data", "my_images", "--out", "runs/classifier")


def _set_up_anomaly(ex: Examples) -> None:
    from trustvis.tasks import get_task

    pytest.importorskip("elpv_dataset", reason="data not installed: elpv-dataset (pip, the anomaly extra)")
    get_task("anomaly").tiny_folder(ex.work / "my_parts")
    _mvtec_root(ex.work / "MVTEC_ROOT")
    for i in range(2):
        _photo(ex.work / "photos" / f"{i}.png", size=64, seed=i)


def _set_up_multimodal(ex: Examples) -> None:
    from trustvis.tasks import get_task

    pytest.importorskip("soundfile")
    if not Path("/usr/share/tuxpaint/stamps/symbols/math").is_dir():
        pytest.skip("data not installed: tuxpaint-stamps-default (apt; scripts/setup.sh installs it)")
    folder = get_task("multimodal").tiny_folder(ex.work / "tiny")
    shutil.copytree(folder / "test" / "speech", ex.work / "spoken")
    shutil.copytree(folder / "test" / "image", ex.work / "digits")


def _set_up_pairs(ex: Examples) -> None:
    from trustvis.tasks import get_task

    folder = get_task("antispoof").tiny_folder(ex.work / "my_pairs").parent
    rgb = next((folder / "val" / "spoof").rglob("*_rgb.png"))
    Image.open(rgb).save(ex.work / "photo_rgb.jpg", quality=95)
    shutil.copyfile(rgb.with_name(rgb.name.replace("_rgb", "_depth")), ex.work / "photo_depth.png")


def _set_up_market(ex: Examples) -> None:
    from trustvis.data.reid.market import tiny_market

    root = tiny_market(ex.work / "MARKET_ROOT")
    imgs = sorted((root / "query").glob("*.jpg"))
    shutil.copyfile(imgs[0], ex.work / "person1.jpg")
    (ex.work / "crops").mkdir()
    for f in imgs[1:4]:
        shutil.copyfile(f, ex.work / "crops" / f.name)


def _set_up_active(ex: Examples) -> None:
    from trustvis.tasks import get_task

    get_task("classify").tiny_folder(ex.work / "labelled")
    for i, f in enumerate(sorted((ex.work / "labelled").rglob("*.png"))[:12]):
        (ex.work / "unlabelled").mkdir(exist_ok=True)
        shutil.copyfile(f, ex.work / "unlabelled" / f"{i}.png")


def _label_round_1(ex: Examples) -> None:
    """A person fills the label column of the first query CSV (here: with the predicted class)."""
    import csv

    path = ex.work / "runs" / "al" / "queries" / "round-01.csv"
    rows = list(csv.DictReader(path.read_text().splitlines()))
    for r in rows:
        r["label"] = r["predicted"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _remove_runs_kmix(ex: Examples) -> None:
    shutil.rmtree(ex.work / "runs" / "kmix")  # as a user would before rerunning with the same --out


Step = str | Callable[[Examples], None]
SCENARIOS: dict[str, list[Step]] = {
    "help": [
        "trustvis list --task detect",
        "trustvis info bihpf",
        "trustvis data status",
        # "trustvis bench BENCH --help" runs in test_bench_help_example, once per bench
    ],
    "synthbench": [
        "trustvis data build synthbench --quick",
        "trustvis data build synthbench --version v2 --size tiny",
        "trustvis train bihpf --preset quick --out runs/bihpf",
        "trustvis train bihpf --out runs/bihpf --resume",
        "trustvis eval runs/bihpf --data ~/.cache/trustvis/synthbench/v1-quick/test",
        _set_up_photos,
        "trustvis predict runs/bihpf photo.jpg more_images/ --json",
        "trustvis predict runs/bihpf photo.jpg folder_of_images/ --json",
        "trustvis report runs/bihpf",
        "trustvis train cnndet --preset tiny --set train.metrics_csv=true --set train.tensorboard=true --out runs/c",
        _set_up_synthbench_runs,
        "trustvis calibrate --run results/detect-quick/runs/cnndet",
        "trustvis train cnndet --set train.init_from=runs/cnndet --set train.trainable=heads",
        "trustvis train cnndet --preset quick --lora r=8,alpha=16 --set model.backbone=mobilenet_v2 "
        "--set model.weights=imagenet --out runs/cnndet-lora",
    ],
    "folders": [
        _set_up_folders,
        "trustvis train cnndet --data /data/CNNDetection --set model.weights=/ckpt/resnet50.pth",
        "trustvis train cnndet --data ROOT --set model.weights=/path/to/resnet50-0676ba61.pth --out runs/cnndet-progan",
        "trustvis eval runs/cnndet-progan --data ROOT/test",
        "trustvis train npr --data GENIMAGE_ROOT --out runs/npr-genimage",
        "trustvis eval runs/npr-genimage --data GENIMAGE_ROOT --split val",
        "trustvis eval runs/d4 --data DIR --attack pgd-l2 --attack hsja --eps 0.0257 --queries 2000",
        "trustvis eval runs/d4 --data ROOT/test --attack pgd-l2 --attack pgd-linf --attack hsja --queries 2000",
        "trustvis export runs/d4 --format torchscript --out d4.pt",
    ],
    "classifiers": [
        _set_up_classifiers,
        "trustvis train classifier --data my_images/ --out runs/mine",
        "trustvis predict runs/mine shirt.jpg --top-k 3 --csv preds.csv",
        "trustvis eval runs/mine --data held_out/",
        "trustvis predict runs/classifier shirt.png --top-k 5 --csv predictions.csv",
        "trustvis export runs/classifier --format onnx",
        "trustvis calibrate --run runs/classifier --out cal/run",
        "trustvis calibrate --logits my_logits.npz",
        "trustvis calibrate --logits my_logits.npz --method sctl --calibrator cts --out cal/cts_sctl",
        "trustvis calibrate --logits my_logits.npz --method sctl --calibrator cts --out cal/cts",
    ],
    "installed-data": [
        lambda ex: _needs_sources("fashion-mnist", "opencv-digits"),
        "trustvis train kmix --preset quick --set model.K=3 --out runs/kmix",
        _remove_runs_kmix,
        "trustvis train kmix --preset quick --set model.K=3 --set model.mode=cutmix --out runs/kmix",
        "trustvis calibrate --run runs/kmix --out cal/kmix",
    ],
    "installed-data-long": [
        lambda ex: _needs_sources("fashion-mnist", "opencv-digits"),
        "trustvis train classifier --set data.name=opencv-digits --steps 500",
        "trustvis train classifier --set data.name=opencv-digits --set data.imbalance=10 --steps 500",
        "trustvis train lora --preset quick --out runs/lora",
        'python: import torchvision ... model = PeftModel.from_pretrained(net, "runs/lora/adapter")',
        "trustvis train classifier --lora 'r=4,targets=re:.*features\\.1[0-8]\\.conv\\.(0\\.0|2)' "
        "--set model.backbone=mobilenet_v2 --set model.weights=imagenet --set model.input_size=64",
    ],
    "anomaly": [
        _set_up_anomaly,
        "trustvis train padim --set data.name=elpv-mono --out runs/padim-mono",
        "trustvis train fyd --preset quick --set data.name=textures-misaligned --out runs/fyd-tex",
        "trustvis predict runs/fyd-tex photos/ --json",
        "trustvis train padim --set data.name=mvtec --set data.root=MVTEC_ROOT --set data.category=bottle",
        "trustvis train fyd --set data.name=folder --set data.root=my_parts/",
    ],
    "codec": [
        lambda ex: _photo(ex.work / "photo.png", size=32),
        "trustvis codec encode photo.png photo.tvc --quality 4",
        "trustvis codec decode photo.tvc photo_decoded.png",
        "trustvis codec decode photo.tvc decoded.png",
        "trustvis codec info photo.tvc",
    ],
    "codec-coolchic": [
        lambda ex: _photo(ex.work / "photo.png", size=32),
        "trustvis codec encode photo.png photo.tvc --method coolchic --lambda 1e-3 --iterations 6000",
        "trustvis codec encode photo.png photo.tvc --method coolchic --lambda 1e-3 --iterations 6000 --recon rec.png",
    ],
    "antispoof": [
        _set_up_pairs,
        "trustvis data build recapturebench --quick",
        "trustvis train mtofnet --data my_pairs/ --out runs/mtofnet",
        "trustvis predict runs/mtofnet photo_rgb.jpg --depth photo_depth.png",
        "trustvis predict runs/mtofnet my_pairs/val --json",
        "trustvis eval runs/mtofnet --data my_pairs/val",
        "trustvis train rgbcnn --set data.protocol=seen --out runs/rgbcnn-seen",
    ],
    "reid": [
        _set_up_market,
        "trustvis train rollback --preset quick --out runs/rollback",
        "trustvis train rollback --preset quick --data MARKET_ROOT --out runs/rollback-market",
        "trustvis eval runs/rollback-market --data MARKET_ROOT",
        "trustvis predict runs/rollback person1.jpg crops/ --json",
    ],
    "active": [
        _set_up_active,
        "trustvis train vabal --preset quick --set data.pool=dominant --out runs/vabal",
        "trustvis active status runs/vabal",
        "trustvis train entropy --data labelled/ --set data.oracle=user --out runs/al",
        "trustvis active query runs/al --pool unlabelled/ --k 50",
        _label_round_1,
        "trustvis active label runs/al runs/al/queries/round-01.csv",
        "trustvis active status runs/al",
    ],
    "vit": [
        "trustvis train vit --preset quick --out runs/vit",
        "trustvis train aal --preset quick --out runs/aal",
        "trustvis train aal --preset quick --set model.links_from=runs/aal --out runs/aal-adv",
        "trustvis train classifier --preset quick --set model.backbone=mobilenet_v2 --set model.weights=imagenet "
        "--set model.input_size=32 --set data.max_images=100 --out runs/teacher",
        "trustvis train deit --preset quick --set model.teacher=runs/teacher --set model.distill=soft --out runs/deit",
    ],
    "multimodal": [
        _set_up_multimodal,
        "trustvis train xmodal --preset quick --out runs/xmodal",
        "trustvis train xmodal --preset quick --set model.vaes_from=runs/xmodal --set data.fraction=0.01 --out "
        "runs/xmodal-1pc",
        "trustvis train xmodal --preset quick --set model.vaes_from=runs/xmodal --set model.modalities=image,speech,"
        "label --out runs/xmodal-label",
        "trustvis train jmvae --preset quick --set data.fraction=0.01 --out runs/jmvae",
        "trustvis predict runs/xmodal-label spoken/ digits/ --maps generated/",
    ],
    "python-api": [
        _set_up_python_api,
        'python: import trustvis ... print(detector.predict([Image.open("photo.jpg"), "photo.jpg"]))',
    ],
    "cnndet-200-steps": [
        "trustvis train cnndet --preset quick --set train.steps=200 --set model.blur_prob=0.1",
    ],
}
# the scenarios marked slow, with their time on a quiet 2-core CPU (several times longer when the cores are
# shared: a step of a 2-thread torch job can take 30x longer under contention)
SLOW_TIMES: dict[str, str] = {
    "installed-data-long": "53 s: 2 x 500 steps on OpenCV digits, MobileNetV2 validation on Fashion-MNIST",
    "codec-coolchic": "46 s: 2 x 6000 COOL-CHIC iterations",
    "cnndet-200-steps": "19 s: 200 steps of a ResNet-18",
}
SLOW = set(SLOW_TIMES)
RUN_ELSEWHERE = {"trustvis bench BENCH --help": "test_bench_help_example"}


def _run_examples() -> set[str]:
    return {s for steps in SCENARIOS.values() for s in steps if isinstance(s, str)} | set(RUN_ELSEWHERE)


@pytest.fixture
def examples(tmp_path, monkeypatch, capsys, micro_synthbench) -> Examples:
    from trustvis.data import recapturebench, synthbench

    # 40 training patches per class: one batch of the detectors' default preset (64)
    monkeypatch.setitem(synthbench.SIZES, "quick", dataclasses.replace(micro_synthbench, n_train=40))
    # RecaptureBench quick is its tiny build (180 pairs of 32 px, seconds)
    monkeypatch.setitem(recapturebench.SIZES, "quick", recapturebench.SIZES["tiny"])
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("TRUSTVIS_HOME", str(home / ".cache" / "trustvis"))
    monkeypatch.chdir(work)
    return Examples(work, home, capsys)


@pytest.mark.parametrize(
    "scenario", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in SCENARIOS]
)
def test_examples_run_as_printed(scenario, examples):
    for step in SCENARIOS[scenario]:
        if isinstance(step, str):
            examples.run(step)
        else:
            step(examples)


@pytest.mark.parametrize("bench", list(BENCHES))
def test_bench_help_example(bench, examples):
    """``trustvis bench BENCH --help`` for every bench: exit 0, and it prints the bench's own examples."""
    rc, out, _ = examples.cli(examples.argv("trustvis bench BENCH --help".replace("BENCH", bench)))
    assert rc == 0
    assert all(e in out for e in BENCHES[bench].examples)


# ----------------------------------------------------------------------------------------------------
# the tables stay true


def test_every_example_is_run_or_listed():
    found = all_examples()
    run = _run_examples()
    neither = sorted(set(found) - run - set(NOT_RUN))
    assert not neither, "examples neither run by a scenario nor listed in NOT_RUN:\n" + "\n".join(
        f"  {e!r}  ({', '.join(found[e])})" for e in neither
    )
    both = sorted(run & set(NOT_RUN))
    assert not both, f"examples both run and listed as not run: {both}"
    gone = sorted((run | set(NOT_RUN) | set(ADDED)) - set(found))
    assert not gone, "table entries no longer printed in any help text or README block: " + ", ".join(
        map(repr, gone)
    )
    for table in (ADDED, WRITES):
        assert set(table) <= run, f"entries of examples no scenario runs: {sorted(set(table) - run)}"
    assert set(SLOW) <= set(SCENARIOS)
    text = " ".join(run) + " ".join(python_blocks().values())
    unused = [p for key in SUBSTITUTIONS for p in key.split(", ") if p not in text]
    assert not unused, f"SUBSTITUTIONS names placeholders no run example has: {unused}"


def test_the_collector_finds_examples_of_every_kind():
    """Guards the collector itself: an empty or broken parse would make the table test pass vacuously."""
    found = all_examples()
    kinds = {w.split(" ")[0].split(":")[0].split("[")[0] for where in found.values() for w in where}
    assert {"`trustvis", "BENCHES", "README.md"} <= kinds
    assert "trustvis info bihpf" in found  # an epilog
    assert "trustvis bench detect --quick" in found  # the bench table
    assert any(e.startswith("trustvis train cnndet --preset quick --lora") for e in found)  # a continued line
    assert "trustvis data status" in found and "# which" not in " ".join(found)  # comments stripped
    assert not any(e.startswith("trustvis bench detect:") for e in found)  # a description's heading
