"""``trustvis export``: every detector, anomaly and classifier method of the registry, trained with its ``tiny``
preset, exports to ONNX and TorchScript; onnxruntime and torch.jit.load reproduce ``predict`` within 1e-4 on
real (transformed) images, at batch sizes the export never saw; the sidecar describes input and outputs;
methods without an image network refuse in one line; the check after the export is not blind."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trustvis import registry
from trustvis.cli import build_parser, main
from trustvis.config import RunConfig, make_run_config, to_dict
from trustvis.engine import load_method
from trustvis.engine.checkpoint import build_method, save_final
from trustvis.engine.export import ExportError, export_method, sidecar_path
from trustvis.methods.base import EXPORT_OUTPUTS, NotExportable
from trustvis.tasks import task_of

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

IMAGE_TASKS = ("detect", "anomaly", "classify")  # the task objects whose methods read images
EXPORTABLE = [s.name for s in registry.list_methods() if s.task in EXPORT_OUTPUTS]
REFUSED = [s.name for s in registry.list_methods() if s.task not in EXPORT_OUTPUTS]
SIZE = 32
TOL = {"rtol": 1e-4, "atol": 1e-4}


def test_every_image_method_is_exported():
    """Every method served by the detect, anomaly and classify tasks is tested below, but the calibrators,
    which read another model's logits (listed with their reason in REFUSED)."""
    image_methods = {s.name for s in registry.list_methods() if task_of(s.task).name in IMAGE_TASKS}
    assert image_methods - set(EXPORTABLE) == {
        s.name for s in registry.list_methods() if s.task == "calibrate"
    }
    assert {"bihpf", "cnndet", "d4", "fingerprintnet", "frepgan", "npr", "fyd", "padim", "classifier"} <= set(
        EXPORTABLE
    )


# ----------------------------------------------------------------------------------------------------
# trained runs (one per method, shared by the tests of this module)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``trained(name) -> run folder``: the method trained with its tiny preset on its task's tiny folder."""
    root = tmp_path_factory.mktemp("export_runs")
    runs: dict[str, Path] = {}
    folders: dict[str, Path] = {}  # task -> its tiny folder (what eval reads; training may use its parent)

    def data(name: str) -> Path:
        task = task_of(registry.get(name).task)
        if task.name not in folders:
            folders[task.name] = task.tiny_folder(root / "data" / task.name)
        return folders[task.name]

    def get(name: str) -> Path:
        if name not in runs:
            task = task_of(registry.get(name).task)
            folder = data(name)
            sets = [a for kv in task.tiny_overrides(folder) for a in ("--set", kv)]
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("TRUSTVIS_HOME", str(root / "home"))
                argv = ["-q", "train", name, "--preset", "tiny", "--out", str(root / name), *sets]
                assert main([*argv, "--set", "train.progress=false"]) == 0
            runs[name] = root / name
        return runs[name]

    get.data = data
    return get


def real_batch(method, folder: Path, n: int = 5) -> torch.Tensor:
    """``n`` images of the task's tiny folder, SIZE x SIZE, through the method's eval transform: (n,3,S,S)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".jpg") and "mask" not in p.parts)
    files = files[:: max(1, len(files) // n)][:n]  # spread over the classes / labels
    tf = method.make_transform(False)
    imgs = []
    for f in files:
        img = Image.open(f).convert("RGB")
        if img.size != (SIZE, SIZE):
            img = img.resize((SIZE, SIZE), Image.LANCZOS)
        imgs.append(tf(np.asarray(img)))
    x = torch.stack(imgs)
    if x.shape[-2:] != (SIZE, SIZE):  # a transform that resizes to its own (height, width): a re-ID network
        x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return x


def _close(got, want, what: str) -> None:
    got = torch.as_tensor(np.asarray(got)) if not torch.is_tensor(got) else got
    assert got.shape == want.shape, what
    torch.testing.assert_close(got.float(), want.float(), **TOL, msg=lambda m: f"{what}: {m}")


def _varies(outputs: list[torch.Tensor]) -> bool:
    """Some output differs between the images of the batch (a graph that ignores its input would not)."""
    return any(not torch.allclose(t[:1].expand_as(t), t, rtol=1e-3, atol=1e-5) for t in outputs)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_exported_graphs_reproduce_predict(name, trained, tmp_path, capsys):
    run = trained(name)
    onnx_file, ts_file = tmp_path / f"{name}.onnx", tmp_path / f"{name}.pt"
    size = ["--image-size", str(SIZE)]
    assert main(["export", str(run), "--format", "onnx", "--out", str(onnx_file), *size]) == 0
    out = capsys.readouterr().out
    assert "checked with onnxruntime" in out and str(onnx_file) in out
    assert main(["export", str(run), "--format", "torchscript", "--out", str(ts_file), *size]) == 0
    assert "checked with torch.jit.load" in capsys.readouterr().out

    method = load_method(run)
    x = real_batch(method, trained.data(name))  # 5 images: neither the traced (2) nor the checked (3) batch
    side = json.loads(sidecar_path(onnx_file).read_text())
    names = [o["name"] for o in side["outputs"]]
    assert names == list(EXPORT_OUTPUTS[method.task])
    with torch.no_grad():
        want = method.predict({"image": x})
    want = [want[k].float() for k in names]
    assert _varies(want), f"{name}: predict gives every image the same output; the comparison would be blind"

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == names
    dim0 = onnx.load(str(onnx_file)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value, "the batch axis must be dynamic"
    for batch in (x, x[:1]):
        got = session.run(None, {"image": batch.numpy()})
        for n, g, w in zip(names, got, want):
            _close(g, w[: len(batch)], f"{name} onnx {n} (batch {len(batch)})")

    scripted = torch.jit.load(str(ts_file))
    with torch.no_grad():
        got = scripted(x)
    for n, g, w in zip(names, got, want):
        _close(g, w, f"{name} torchscript {n}")

    # the sidecar: the input as the graph takes it, the outputs, the run
    assert side["method"] == name and side["task"] == method.task and side["export_format"] == "onnx"
    assert side["input"]["shape"] == ["N", 3, SIZE, SIZE] and side["input"]["range"] == [0.0, 1.0]
    assert side["input"]["mean"] == [0.0] * 3 and side["input"]["std"] == [1.0] * 3
    for o, w in zip(side["outputs"], want):
        assert o["shape"] == ["N", *w.shape[1:]]
    assert side["check"]["max_abs_diff"] <= 1e-4 and side["check"]["batch"] == 3
    if method.task == "detect":
        assert side["threshold"] == {"value": 0.5, "on": "score"}
    if method.task == "anomaly":
        assert side["threshold"]["value"] == pytest.approx(float(method.threshold))
    if task_of(method.task).name == "classify":
        assert side["classes"] == ["bright", "dark", "mid"]
        assert "resize to 32x32" in side["preprocess"]


@pytest.mark.parametrize("name", REFUSED)
def test_methods_without_an_image_network_refuse_in_one_line(name, tmp_path, capsys):
    """Codecs, calibrators and the two-input RGB + depth methods: one line naming the method and why, before
    any file is written."""
    method = build_method(make_run_config(name, "tiny"), pretrained=False)
    with pytest.raises(NotExportable, match=f"^{name} cannot be exported: "):
        method.export_module()
    run = tmp_path / "run"
    save_final(method, run, to_dict(RunConfig(method=name, preset="tiny", model=method.config)), 0)
    assert main(["export", str(run), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"trustvis: error: {name} cannot be exported: ") and "\n" not in err
    why = {
        "codec": "entropy coder",
        "antispoof": "two inputs (image and depth)",
        "multimodal": "speech clips or images",
    }
    assert why.get(registry.get(name).task, "calibrator") in err
    assert not (run / "model.onnx").exists() and not (run / "model.onnx.json").exists()


# ----------------------------------------------------------------------------------------------------
# sizes, targets and the check


def test_default_sizes_come_from_the_run(trained, tmp_path, capsys):
    """Classifier: the training images' size (classes.json); D4: model.image_size; a detector that reads
    any size: 256."""
    for name, want in (("classifier", 32), ("d4", 32), ("cnndet", 256)):
        out = tmp_path / f"{name}.pt"
        assert main(["export", str(trained(name)), "--format", "torchscript", "--out", str(out)]) == 0
        assert json.loads(sidecar_path(out).read_text())["input"]["shape"] == ["N", 3, want, want]
    capsys.readouterr()
    # D4 is built for one size: another one is refused, naming the method and both sizes
    assert main(["export", str(trained("d4")), "--format", "onnx", "--image-size", "48"]) == 2
    err = capsys.readouterr().err
    assert "d4 cannot run on a 48x48 input" in err and "(B,3,32,32)" in err


def test_export_never_overwrites_what_is_not_an_export(trained, capsys):
    run = trained("cnndet")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for target in (run / "model", run / "model.safetensors", run / "config.yaml"):
        assert main(["export", str(run), "--format", "onnx", "--out", str(target), "--image-size", "16"]) == 2
        assert "choose another --out" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # a previous export is replaced
    args = ["export", str(run), "--format", "torchscript", "--image-size", "16"]
    assert main(args) == 0 and main(args) == 0


def test_an_unfaithful_file_is_refused_and_not_written(trained, tmp_path, monkeypatch):
    """The check compares the file's outputs with torch's: a file that answers differently fails the export."""
    from trustvis.engine import export as E

    method = load_method(trained("classifier"))
    real = E._run_file
    monkeypatch.setattr(E, "_run_file", lambda *a: [t + 1e-3 for t in real(*a)])
    out = tmp_path / "m.pt"
    with pytest.raises(
        ExportError, match=r"classifier: the torchscript file's 'logits' differs .* by up to 0\.001"
    ):
        export_method(method, out, "torchscript", image_size=SIZE)
    assert not out.exists() and not sidecar_path(out).exists() and not list(tmp_path.iterdir())
    monkeypatch.setattr(E, "_run_file", real)
    side = export_method(method, out, "torchscript", image_size=SIZE)
    assert out.is_file() and side["check"]["max_abs_diff"] < 1e-6


def test_missing_onnx_packages_are_named(trained, tmp_path, monkeypatch):
    import importlib.util

    from trustvis.engine import export as E

    find = importlib.util.find_spec
    monkeypatch.setattr(
        E.importlib.util, "find_spec", lambda n, *a: None if n == "onnxscript" else find(n, *a)
    )
    with pytest.raises(
        ExportError, match="ONNX export needs the package.* onnxscript: pip install onnxscript"
    ):
        export_method(load_method(trained("classifier")), tmp_path / "m.onnx", "onnx", image_size=SIZE)
    with pytest.raises(
        ExportError, match=r"Unknown export format 'tflite'; choose from \['onnx', 'torchscript'\]"
    ):
        export_method(load_method(trained("classifier")), tmp_path / "m.tfl", "tflite", image_size=SIZE)


# ----------------------------------------------------------------------------------------------------
# the command line


def _export_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["export"]


def test_help_examples_run_as_printed(trained, tmp_path, monkeypatch, capsys):
    """The examples of `trustvis export --help`, run in a folder holding the runs they name."""
    examples = [ln.split("#")[0].strip() for ln in _export_parser().epilog.splitlines()]
    examples = [e for e in examples if e.startswith("trustvis export ")]
    assert len(examples) >= 2
    work = tmp_path / "work"
    for name in ("classifier", "d4"):
        shutil.copytree(trained(name), work / "runs" / name)
    monkeypatch.chdir(work)
    for example in examples:
        argv = shlex.split(example)[1:]
        assert main(argv) == 0, example
        out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path(argv[1]) / "model.onnx"
        assert out.is_file() and sidecar_path(out).is_file(), example
    capsys.readouterr()


def test_export_help_imports_no_torch():
    code = (
        "import sys\nfrom trustvis.cli import main\n"
        "try:\n    main(['export', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH", out.stdout[-2000:] + out.stderr[-2000:]
    assert "--format" in out.stdout and "examples:" in out.stdout
