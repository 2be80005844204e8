"""Contract test over the task registry: every task that trains runs the whole user path through
``main(argv)`` on a tiny folder in its own layout — train a tiny method, predict (table, JSON lines,
CSV), evaluate — with no per-task branch here; what differs lives in the task objects.
"""

from __future__ import annotations

import csv
import json

import pytest

from trustvis import registry
from trustvis.cli import main
from trustvis.tasks import TaskError, get_task, list_tasks, task_of
from trustvis.tasks.predict import collect_files

TRAINING = [t.name for t in list_tasks() if t.trains]


def _method_for(task) -> str:
    """The first registered method (by name) of ``task`` that `trustvis train` accepts."""
    for spec in registry.list_methods():
        if spec.task in task.method_tasks:
            try:
                task.check_method(spec, "train")
            except TaskError:
                continue
            return spec.name
    pytest.fail(f"task {task.name!r} serves no trainable method")


def test_every_method_task_has_a_task_object_and_data_config():
    for spec in registry.list_methods():
        task = task_of(spec.task)
        assert spec.task in task.method_tasks
        assert registry.data_config(spec.task) is task.data_config
    assert {"detect", "classify", "anomaly", "codec", "antispoof"} <= {t.name for t in list_tasks()}


def test_task_lookup_errors_name_the_choices():
    with pytest.raises(KeyError, match="choose from"):
        get_task("nope")


@pytest.mark.parametrize("name", TRAINING)
def test_task_contract(name, tmp_path, capsys):
    task = get_task(name)
    method = _method_for(task)
    folder = task.tiny_folder(tmp_path / "data")
    run = tmp_path / "run"
    sets = [a for kv in task.tiny_overrides(folder) for a in ("--set", kv)]
    assert (
        main(["train", method, "--preset", "tiny", "--out", str(run), *sets, "--set", "train.progress=false"])
        == 0
    )
    assert (run / "model.json").is_file()
    capsys.readouterr()

    # predict: a table, one JSON object per image, a CSV with one row per image
    files = task.predict_inputs(collect_files([folder], task.input_suffixes()))
    table_csv = tmp_path / "pred.csv"
    assert main(["predict", str(run), str(folder), "--csv", str(table_csv)]) == 0
    table = capsys.readouterr().out
    assert all(str(f) in table for f in files[:3])
    assert main(["predict", str(run), str(folder), "--jsonl"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == len(files)
    assert [r["path"] for r in lines] == [str(f) for f in files]
    assert all("error" not in r for r in lines), [r for r in lines if "error" in r][:1]
    with open(table_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [str(f) for f in files]

    # evaluate the folder in the task's layout: numbers, written next to the run
    assert main(["eval", str(run), "--data", str(folder), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (run / "eval.json").is_file()
    assert any(isinstance(v, float) for v in res.values()) or "mean" in res


@pytest.mark.parametrize("name", [t.name for t in list_tasks() if not t.trains])
def test_tasks_that_do_not_train_say_what_to_use(name, tmp_path, capsys):
    task = get_task(name)
    spec = next(s for s in registry.list_methods() if s.task in task.method_tasks)
    assert main(["train", spec.name, "--preset", "tiny", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "trustvis" in err and spec.name in err
    assert not (tmp_path / "r").exists()


def test_classifier_predict_lists_top_k_classes_by_name(tmp_path, capsys):
    task = get_task("classify")
    folder = task.tiny_folder(tmp_path / "data")
    run = tmp_path / "run"
    sets = [a for kv in task.tiny_overrides(folder) for a in ("--set", kv)]
    assert main(["train", "classifier", "--preset", "tiny", "--out", str(run), *sets, "--steps", "3"]) == 0
    classes = json.loads((run / "classes.json").read_text())["classes"]
    assert classes == ["bright", "dark", "mid"]
    capsys.readouterr()
    assert main(["predict", str(run), str(folder / "mid"), "--json", "--top-k", "2"]) == 0
    records = json.loads(capsys.readouterr().out)["results"]
    assert len(records) == 6
    for r in records:
        probs = [t["prob"] for t in r["top_k"]]
        assert len(probs) == 2 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert r["class"] == r["top_k"][0]["class"] and r["class"] in classes
    # more than the number of classes: every class once
    assert main(["predict", str(run), str(folder / "mid" / "0.png"), "--json", "--top-k", "9"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)["results"]
    assert sorted(t["class"] for t in rec["top_k"]) == classes
    assert abs(sum(t["prob"] for t in rec["top_k"]) - 1) < 1e-5


def test_a_run_saved_with_the_old_shared_data_config_still_loads(caplog):
    """Runs saved before each task had its own data config hold every task's data keys: the ones the task
    does not know are dropped without a warning; a key nobody knows still warns."""
    from trustvis.config import run_config_from_dict

    old = {"method": "cnndet", "preset": "tiny", "model": {}, "train": {},
           "data": {"name": "synthbench", "root": "", "category": "", "size": "quick", "train_family": "dcgan",
                    "max_images": 0, "imbalance": 1.0, "dominant": -1}}  # fmt: skip
    with caplog.at_level("WARNING"):
        run = run_config_from_dict(old)
    assert run.data.train_family == "dcgan" and not hasattr(run.data, "imbalance")
    assert not caplog.records
    old["data"]["brand_new"] = 1
    with caplog.at_level("WARNING"):
        run_config_from_dict(old)
    assert "brand_new" in caplog.text


def test_a_detector_trains_on_synthbench_v2(tmp_path):
    """data.version picks the SynthBench edition: v2's families are valid training families there (and only there),
    its sizes are checked, and the training data come from the v2 build (its train split holds the families of
    the size's train_families, as in v1)."""
    from trustvis import registry
    from trustvis.config import ConfigError, make_run_config
    from trustvis.tasks.detect import DetectData, detection_datasets

    DetectData(version="v2", size="tiny", train_family="ddpm").check()
    with pytest.raises(ConfigError, match="v2 family"):
        DetectData(version="v2", size="tiny", train_family="nope").check()
    with pytest.raises(ConfigError, match="v1 family"):
        DetectData(size="tiny", train_family="ddpm").check()
    with pytest.raises(ConfigError, match="v2 size.*tiny"):
        DetectData(version="v2", size="demo").check()
    with pytest.raises(ConfigError, match="edition"):
        DetectData(version="v9").check()
    run = make_run_config(
        "cnndet", "tiny", data={"version": "v2", "size": "tiny", "train_family": "ae_tconv"}
    )
    method = registry.get("cnndet").cls(run.model)
    method.run_config = run
    train, val = detection_datasets(run, method)
    assert train.root.parent.name == "v2-tiny" and len(train) > 0 and len(val) > 0
    assert (
        train.root.parent / "test_wild" / "inpaint" / "1_fake"
    ).is_dir()  # the v2 build, laundered split included
