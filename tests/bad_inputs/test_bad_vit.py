"""Bad-input corpus, small-data ViT methods (issue 24): every bad teacher, link source or setting ends in one
line naming the flag or folder and the problem, before any training.

DeiT without a teacher that knows the classes, a teacher folder that does not exist, a teacher run of another
method, a teacher run of another input size; AAL links from a folder that is not an aal run or from an aal run of
another shape, more links per map than there are heads, an unknown distance, a ViT as the CNN; an unknown bench condition or setting.
"""

from __future__ import annotations

import pytest
from badcli import assert_clear_error, run_cli


def _train(tmp_path, capsys, name: str, *sets: str, out: str = "run"):
    argv = ["-q", "train", name, "--preset", "tiny", "--out", str(tmp_path / out), "--set", "train.steps=2",
            "--set", "train.progress=false", *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    return run_cli(argv, capsys)


@pytest.fixture
def vit_run(tmp_path, capsys):
    assert _train(tmp_path, capsys, "vit", out="vit_run").code == 0
    return tmp_path / "vit_run"


def test_deit_without_a_class_teacher(tmp_path, capsys):
    res = _train(
        tmp_path, capsys, "deit", "model.teacher_backbone=mobilenet_v2", "model.teacher_weights=imagenet"
    )
    assert_clear_error(res, "model.teacher=/path/to/RUN", "classifier run", "model.teacher_weights=none")


def test_deit_teacher_folder_missing(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert_clear_error(_train(tmp_path, capsys, "deit", f"model.teacher={missing}"), str(missing))


def test_deit_teacher_of_another_method(tmp_path, capsys, vit_run):
    res = _train(tmp_path, capsys, "deit", f"model.teacher={vit_run}")
    assert_clear_error(res, str(vit_run), "'vit'", "classifier run")


def test_deit_teacher_of_another_input_size(tmp_path, capsys):
    assert _train(tmp_path, capsys, "classifier", "model.input_size=16", out="teacher").code == 0
    res = _train(tmp_path, capsys, "deit", f"model.teacher={tmp_path / 'teacher'}")
    assert_clear_error(res, str(tmp_path / "teacher"), "model.teacher_input_size=8", "16")


def test_aal_links_from_a_run_of_another_method(tmp_path, capsys, vit_run):
    res = _train(tmp_path, capsys, "aal", f"model.links_from={vit_run}")
    assert_clear_error(res, str(vit_run), "aal run")


def test_aal_links_from_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    res = _train(tmp_path, capsys, "aal", f"model.links_from={tmp_path / 'empty'}")
    assert_clear_error(res, str(tmp_path / "empty"), "not a finished aal run")


def test_aal_more_links_per_map_than_heads(tmp_path, capsys):
    assert _train(tmp_path, capsys, "aal", out="first").code == 0
    res = _train(tmp_path, capsys, "aal", f"model.links_from={tmp_path / 'first'}", "model.links_per=9")
    assert_clear_error(res, "links_per=9", "1..4")


@pytest.mark.parametrize(("key", "value", "needle"), [("distance", "cosine", "'l2'"), ("link_by", "row", "'head'"),
                                                      ("teacher_backbone", "vit_tiny", "resnet8")])  # fmt: skip
def test_aal_bad_choices(tmp_path, capsys, key, value, needle):
    assert_clear_error(_train(tmp_path, capsys, "aal", f"model.{key}={value}"), f"model.{key}", needle)


def test_bench_vit_unknown_condition_or_setting(tmp_path, capsys):
    base = ["-q", "bench", "vit", "--preset", "tiny", "--out", str(tmp_path / "b")]
    assert_clear_error(run_cli([*base, "--methods", "aal,deit"], capsys), "'deit'", "deit-hard")
    assert_clear_error(run_cli([*base, "--datasets", "cifar"], capsys), "'cifar'", "fmnist-1k")


def test_aal_links_from_a_run_of_another_shape(tmp_path, capsys):
    assert _train(tmp_path, capsys, "aal", "model.depth=1", out="shallow").code == 0
    res = _train(tmp_path, capsys, "aal", f"model.links_from={tmp_path / 'shallow'}")
    assert_clear_error(res, str(tmp_path / "shallow"), "(48, 2)", "(48, 4)")
