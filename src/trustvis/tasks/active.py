"""Task ``active``: active learning — rounds of training a classifier, asking which images to label, labelling.

data     fashion-mnist | opencv-digits | sklearn-digits | tuxpaint-stamps | folder (as the classify task). The
         *pool* is the train split (``data.max_per_class`` caps it per class first), balanced, dominant-k
         (``data.pool=dominant``: class ``data.dominant`` whole, the others at 10 %, VaB-AL's protocol) or
         long-tailed (``data.pool=longtail``, max/min ratio ``data.imbalance``); the test split stays balanced.
loop     ``data.initial`` random labels (seeded by ``train.seed``: the same for every strategy), then per
         round: train the classifier ``train.steps`` steps (from scratch, or from the previous round with
         ``data.warm_start``) ──► test metrics ──► features of pool and labelled images ──► the strategy's
         fit_query, select ``data.budget`` ──► the oracle labels them.  ``data.rounds`` query rounds, so
         ``rounds + 1`` trainings and ``initial + rounds x budget`` labels at the end.
oracle   ``simulated``: the pool's own labels. ``user``: round 0 trains on the data set's train split and the
         loop waits for a person: ``trustvis active query RUN --pool DIR --k 50`` writes a CSV of the images
         to label, ``trustvis active label RUN labels.csv`` adds them and trains the next round.
state    ``RUN/active.json`` after every round (labelled pool indices, each round's queries and their scores, test
         metrics, the class histogram of the queries, the strategy's fitted terms; every unlabelled image's score
         in ``RUN/rounds/rNN/scores.npz``); an interrupted loop continues with
         ``--resume`` from the last finished round (a round's own training resumes from its checkpoints).
output   ``RUN/rounds/rNN/`` one classifier run per round; ``RUN/model.*`` the last round's classifier (so
         ``trustvis predict`` / ``eval`` work on RUN as on a classifier run), ``RUN/curves.png``.

::

    run.data ──► pool ImageSet, test ImageSet ──► initial labels
    for r in 0..rounds: fit_run(labelled subset) ──► method ──► class_metrics(test)
                        ──► Query(pool features, labelled features) ──► method.select(k) ──► oracle
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvis.config import ConfigError
from trustvis.tasks.base import TaskError, register_task
from trustvis.tasks.classify import CLASSES_FILE, LT_SEED, ClassifyTask, cap_per_class

log = logging.getLogger(__name__)

STATE_FILE = "active.json"
SCORES_FILE = "scores.npz"  # per round: every unlabelled image's score
STATE_FORMAT = 1
POOLS = ("balanced", "dominant", "longtail")
ORACLES = ("simulated", "user")


@dataclass
class ActiveData:
    """The pool, the test set and the loop's budget (``run.data`` of an active-learning run)."""

    name: str = "fashion-mnist"  # fashion-mnist | opencv-digits | sklearn-digits | tuxpaint-stamps | folder
    root: str = ""  # folder root when name == folder (or an IDX folder / digits.png for the named sets)
    pool: str = "balanced"  # balanced | dominant | longtail
    dominant: int = 0  # pool=dominant: the class kept whole (the others at 10 %)
    imbalance: float = 10.0  # pool=longtail: max/min class ratio
    max_per_class: int = 0  # cap per class of the train split before the pool is made; 0 = all
    test_max_per_class: int = 0  # cap per class of the test split; 0 = all
    initial: int = 100  # random labels before the first query
    budget: int = 100  # labels queried per round
    rounds: int = 5  # query rounds (simulated oracle)
    warm_start: bool = False  # each round starts from the previous round's weights (else from scratch)
    oracle: str = "simulated"  # simulated (the pool's labels) | user (trustvis active query / label)

    def check(self) -> None:
        from trustvis.data.classification import DATASETS

        def bad(key: str, valid: str) -> ConfigError:
            return ConfigError(f"data.{key}={getattr(self, key)!r} is invalid; it must be {valid}")

        if self.name not in DATASETS:
            raise ConfigError(
                f"data.name={self.name!r} is invalid for active learning; choose from {list(DATASETS)}"
            )
        if self.pool not in POOLS:
            raise bad("pool", f"one of {list(POOLS)}")
        if self.oracle not in ORACLES:
            raise bad("oracle", f"one of {list(ORACLES)}")
        if self.dominant < 0:
            raise bad("dominant", "a class index >= 0")
        if not (math.isfinite(self.imbalance) and self.imbalance >= 1):
            raise bad("imbalance", "a number >= 1")
        for key in ("max_per_class", "test_max_per_class", "rounds"):
            if getattr(self, key) < 0:
                raise bad(key, "an integer >= 0")
        for key in ("initial", "budget"):
            if getattr(self, key) < 1:
                raise bad(key, "an integer >= 1")


# ----------------------------------------------------------------------------------------------------
# data


def load_pool(data: ActiveData) -> Any:
    """The unlabelled pool (an ImageSet with its true labels, read only by the simulated oracle)."""
    from trustvis.data.classification import dominant_indices, long_tailed_indices

    images = train_split(data)
    if data.pool == "dominant":
        if data.dominant >= images.num_classes:
            raise ConfigError(
                f"data.dominant={data.dominant} but {data.name} has classes 0..{images.num_classes - 1}"
            )
        images = images.subset(dominant_indices(images.labels, data.dominant, seed=LT_SEED))
    elif data.pool == "longtail":
        images = images.subset(long_tailed_indices(images.labels, data.imbalance, seed=LT_SEED))
    images.name = f"{data.name}/pool-{data.pool}"
    return images


def train_split(data: ActiveData) -> Any:
    """The train split of the data set, capped per class: the pool before its variant, or a user loop's start."""
    from trustvis.data.classification import load_split

    return cap_per_class(load_split(data.name, "train", root=data.root), data.max_per_class)


def load_test(data: ActiveData) -> Any:
    """The balanced test split (capped per class by ``data.test_max_per_class``)."""
    from trustvis.data.classification import load_split

    return cap_per_class(load_split(data.name, "test", root=data.root), data.test_max_per_class)


def initial_indices(n: int, k: int, seed: int) -> list[int]:
    """``k`` distinct pool positions drawn at random with ``seed`` (sorted)."""
    import numpy as np

    if k > n:
        raise ConfigError(f"data.initial={k} but the pool holds {n} images; lower data.initial")
    return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=k, replace=False))


def round_seed(seed: int, r: int) -> int:
    """The seed of round ``r`` (training, random choices, the strategy's fit)."""
    return int(seed) * 1000 + int(r)


# ----------------------------------------------------------------------------------------------------
# state


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """``RUN/active.json`` or None; a clear error when it is not a loop state."""
    from trustvis.engine.checkpoint import read_json

    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    state = read_json(path, "active-learning state")
    if (
        not isinstance(state, dict)
        or state.get("format") != STATE_FORMAT
        or not isinstance(state.get("rounds"), list)
    ):
        raise TaskError(f"{path}: not an active-learning state of this trustvis (format {STATE_FORMAT})")
    return state


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    from trustvis.atomic import atomic_write_json

    atomic_write_json(Path(run_dir) / STATE_FILE, state)


def labelled_indices(state: dict[str, Any]) -> list[int]:
    """The pool positions labelled so far: the initial ones, then every round's queries in order."""
    out = list(state["initial"])
    for rec in state["rounds"]:
        out += rec.get("queried", [])
    return out


# ----------------------------------------------------------------------------------------------------
# one round


def _train_round(run: Any, out: Path, r: int, train_set: Any, progress_desc: str) -> Any:
    """Train (or reload, or resume) the classifier of round ``r`` in ``out/rounds/rNN``; returns the method."""
    from trustvis.engine.checkpoint import latest_checkpoint, load_method
    from trustvis.tasks.train import fit_run

    rdir = round_dir(out, r)
    if (rdir / "model.json").is_file():
        from trustvis.engine.distributed import resolve_device

        return load_method(rdir, device=str(resolve_device(run.train.device)))
    rr = copy.deepcopy(run)
    rr.train.seed = round_seed(run.train.seed, r)
    if run.data.warm_start and r > 0:
        rr.train.init_from = str(round_dir(out, r - 1))
    resume = latest_checkpoint(rdir) is not None
    log.info("%s: round %d, %d labels", progress_desc, r, len(train_set))
    res, _ = fit_run(rr, rdir, lambda _run, m: (_dataset(train_set, m, True), None), None, resume=resume)
    return res.method


def round_dir(out: Path, r: int) -> Path:
    return Path(out) / "rounds" / f"r{r:02d}"


def _dataset(images: Any, method: Any, train: bool) -> Any:
    from trustvis.data.classification import ClassificationDataset

    return ClassificationDataset(images, method.make_transform(train))


def evaluate_round(method: Any, test: Any, seed: int = 0) -> dict[str, Any]:
    """Test metrics of a round's classifier: acc, balanced_acc, macro_f1, recall per class."""
    from trustvis.metrics.active import class_metrics

    feats = method.features(_dataset(test, method, False), seed=seed)
    return class_metrics(test.labels, feats.logits.argmax(1), test.num_classes)


def query(method: Any, pool: Any, unlabelled: list[int], labelled: Any, k: int, seed: int,
          progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Ask ``method`` for ``k`` of the ``unlabelled`` positions of ``pool`` knowing the ``labelled`` ImageSet;
    returns ``{"queried": pool positions, "predicted": their classes, "scores": theirs, "pool_scores": every
    unlabelled image's, "fit": scalars of fit_query, "terms": the strategy's fitted terms}``."""
    from trustvis.methods.active.base import Query

    t0 = time.perf_counter()
    sub = pool.subset(unlabelled)
    pf = method.features(_dataset(sub, method, False), seed=seed, progress=progress, desc="score pool")
    lf = method.features(_dataset(labelled, method, False), seed=seed + 1)
    q = Query(pf, lf, labelled.labels, labelled.num_classes, seed)
    fit = method.fit_query(q)
    picks = method.select(q, k)
    if len(set(picks.tolist())) != len(picks) or len(picks) != k:
        raise RuntimeError(f"{method.method_name} selected {len(picks)} positions ({len(set(picks.tolist()))} "
                           f"distinct) instead of {k}")  # fmt: skip
    scores = getattr(method, "last_scores", None)
    return {
        "queried": [int(unlabelled[i]) for i in picks],
        "predicted": [int(pf.logits[i].argmax()) for i in picks],  # the classifier's class of each query
        "scores": [] if scores is None else [float(scores[i]) for i in picks],
        "pool_scores": scores,
        "fit": fit,
        "terms": dict(getattr(method, "last_terms", {}) or {}),
        "query_seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------------------------------
# the simulated loop


def run_loop(run: Any, out: Path, resume: bool = False) -> Any:
    """Run (or continue) the active-learning loop of ``run`` in ``out``; returns a TrainResult."""
    import os

    from trustvis.atomic import atomic_write_text
    from trustvis.config import dump_yaml, to_dict
    from trustvis.engine.checkpoint import save_final
    from trustvis.metrics.active import class_counts
    from trustvis.tasks.train import TrainResult

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TaskError(
            "an active-learning loop runs in one process (its rounds are small); start it without torchrun"
        )
    out = Path(out)
    data: ActiveData = run.data
    state = read_state(out)
    if state is not None and not resume:
        raise TaskError(f"{out} holds an unfinished active-learning loop ({len(state['rounds'])} round(s) done); "
                        "pass --resume to continue it, or choose another --out")  # fmt: skip
    t_start = time.perf_counter()
    if data.oracle == "user":  # one round per call: round 0 on the train split, then one per labelled CSV
        pool, test, base = None, _user_test(data), train_split(data)
        n_rounds = len(state["rounds"]) if state is not None else 0
    else:
        pool, test = load_pool(data), load_test(data)
        n_rounds = data.rounds
    if state is None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", dump_yaml(run))
        state = {
            "format": STATE_FORMAT,
            "method": run.method,
            "oracle": data.oracle,
            "classes": list((pool or base).classes),
            "image_size": list((pool or base).images.shape[1:]),
            "pool_size": len(pool) if pool is not None else 0,
            "pool_per_class": class_counts(pool.labels, pool.num_classes) if pool is not None else [],
            "test_size": len(test) if test is not None else 0,
            "initial": initial_indices(len(pool), data.initial, run.train.seed) if pool is not None else [],
            "user_labels": [],
            "rounds": [],
        }
        write_state(out, state)
    lines: list[str] = []
    method = None
    r = len(state["rounds"])
    while r <= n_rounds:
        t0 = time.perf_counter()
        labelled_idx = labelled_indices(state)
        labelled = pool.subset(labelled_idx) if pool is not None else user_train_set(base, state)
        method = _train_round(run, out, r, labelled, run.method)
        t_train = time.perf_counter() - t0
        rec: dict[str, Any] = {"round": r, "labels": len(labelled), "train_seconds": t_train}
        rec["labelled_per_class"] = class_counts(labelled.labels, labelled.num_classes)
        if pool is None and r > 0:
            rec["added"] = len(labelled) - state["rounds"][-1]["labels"]
        if test is not None and len(test):
            rec["test"] = evaluate_round(method, test)
        if pool is not None and r < n_rounds:
            taken = set(labelled_idx)
            unlabelled = [i for i in range(len(pool)) if i not in taken]
            k = min(data.budget, len(unlabelled))
            if k > 0:
                q = query(
                    method, pool, unlabelled, labelled, k, round_seed(run.train.seed, r), run.train.progress
                )
                pool_scores = q.pop("pool_scores")
                if pool_scores is not None:  # every unlabelled image's score, beside the round's classifier
                    save_scores(round_dir(out, r) / SCORES_FILE, unlabelled, pool_scores)
                rec.update(q)
                rec["queried_per_class"] = class_counts(pool.labels[q["queried"]], pool.num_classes)
            else:
                n_rounds = r  # the pool is used up
        state["rounds"].append(rec)
        write_state(out, state)
        lines.append(round_line(rec))
        log.info(lines[-1])
        r += 1
    if method is None:  # every round was done already (a resumed, finished loop)
        from trustvis.engine.checkpoint import load_method

        method = load_method(round_dir(out, len(state["rounds"]) - 1))
    last = state["rounds"][-1]
    finish_run(method, run, out, state)
    save_final(method, out, to_dict(run), int(run.train.steps))
    if data.oracle == "user" and len(state["rounds"]) == 1:
        lines.append(
            f"round 0 trained on {last['labels']} labels; next: trustvis active query {out} --pool DIR --k 50"
        )
    summary = {
        "steps": int(run.train.steps) * len(state["rounds"]),
        "train_seconds": time.perf_counter() - t_start,
        "eval": {k: v for k, v in last.get("test", {}).items() if isinstance(v, float)},
    }
    return TrainResult(method, summary, True, lines)


def save_scores(path: Path, positions: list[int], scores: Any) -> None:
    """``positions`` (pool indices) and their ``scores`` as an ``.npz`` (no pickle)."""
    import io

    import numpy as np

    from trustvis.atomic import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, positions=np.asarray(positions, np.int64), scores=np.asarray(scores, np.float64))
    atomic_write_bytes(path, buf.getvalue())


def round_line(rec: dict[str, Any]) -> str:
    """One line per round: labels, test metrics and what was queried."""
    s = f"round {rec['round']}: {rec['labels']} labels"
    t = rec.get("test")
    if t:
        s += f", test acc {t['acc']:.3f} balanced {t['balanced_acc']:.3f} macro-F1 {t['macro_f1']:.3f}"
    if rec.get("queried_per_class"):
        s += "; queried per class " + " ".join(str(c) for c in rec["queried_per_class"])
    return s


def finish_run(method: Any, run: Any, out: Path, state: dict[str, Any]) -> None:
    """``classes.json`` (as a classifier run, for predict/eval) and the learning-curve figure of ``out``."""
    from trustvis.atomic import atomic_write_json
    from trustvis.report.plots.active import loop_figure

    info = {"classes": state["classes"], "data": run.data.name}
    size = state.get("image_size")
    if size:
        info.update({"image_size": size[:2], "gray": len(size) == 2})
    atomic_write_json(out / CLASSES_FILE, info)
    loop_figure(state, out / "curves.png", title=f"{run.method} on {run.data.name} ({run.data.pool} pool)")


# ----------------------------------------------------------------------------------------------------
# the user oracle


def _user_test(data: ActiveData) -> Any | None:
    try:
        return load_test(data)
    except (FileNotFoundError, ValueError) as e:
        log.warning("no test split for %s (%s): rounds are not scored", data.root or data.name, e)
        return None


def user_train_set(base: Any, state: dict[str, Any]) -> Any:
    """``base`` plus every image a person labelled (resized, and made gray, like ``base``'s images)."""
    import numpy as np

    from trustvis.data.classification import ImageSet

    if not state["user_labels"]:
        return base
    shape = base.images.shape[1:]
    imgs = [shape_like(Path(e["path"]), shape) for e in state["user_labels"]]
    labels = [base.classes.index(e["label"]) for e in state["user_labels"]]
    return ImageSet(np.concatenate([base.images, np.stack(imgs)]), np.concatenate([base.labels, labels]),
                    list(base.classes), base.name)  # fmt: skip


def shape_like(path: Path, shape: tuple[int, ...]) -> Any:
    """The image at ``path`` as a uint8 array of ``shape`` ((H,W) gray or (H,W,3) RGB), Lanczos-resized."""
    import numpy as np
    from PIL import Image

    from trustvis.data.io import load_image

    img = Image.fromarray(load_image(path))
    if len(shape) == 2:
        img = img.convert("L")
    return np.asarray(img.resize((shape[1], shape[0]), Image.LANCZOS))


def _user_run(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from trustvis.engine.checkpoint import load_method

    state = read_state(run_dir)
    if state is None:
        raise TaskError(f"{run_dir} is not an active-learning run (no {STATE_FILE}); start one with "
                        "`trustvis train STRATEGY --set data.oracle=user --data ROOT --out RUN`")  # fmt: skip
    if state.get("oracle") != "user":
        raise TaskError(f"{run_dir} is a simulated loop (data.oracle=simulated): its queries and labels are in "
                        f"{run_dir / STATE_FILE}; start a loop with --set data.oracle=user to label images yourself")  # fmt: skip
    return load_method(run_dir), state


def user_query(run_dir: Path, pool_dir: Path, k: int, csv_path: Path | None = None) -> dict[str, Any]:
    """Score the images under ``pool_dir`` not labelled yet and write the ``k`` to label as a CSV
    (``path,rank,score,predicted,label`` with ``label`` empty); returns ``{"csv", "queried", "skipped"}``."""
    import numpy as np

    from trustvis.atomic import atomic_write_text
    from trustvis.data.classification import ImageSet
    from trustvis.data.io import ImageReadError, iter_image_files
    from trustvis.records import records_csv

    run_dir = Path(run_dir)
    method, state = _user_run(run_dir)
    run = method.run_config
    base = train_split(run.data)
    done = {str(Path(e["path"]).resolve()) for e in state["user_labels"]}
    files = [f for f in iter_image_files(pool_dir) if str(f.resolve()) not in done]
    imgs, paths, skipped = [], [], []
    shape = base.images.shape[1:]
    for f in files:
        try:
            imgs.append(shape_like(f, shape))
            paths.append(f)
        except (ImageReadError, OSError, ValueError) as e:
            skipped.append(f"{f}: {e}")
    if not paths:
        raise TaskError(f"{pool_dir}: no unlabelled image to query (found {len(files)} new file(s), "
                        f"{len(skipped)} unreadable)")  # fmt: skip
    k = min(int(k), len(paths))
    pool = ImageSet(np.stack(imgs), np.zeros(len(imgs), np.int64), list(base.classes), str(pool_dir))
    labelled = user_train_set(base, state)
    q = query(
        method, pool, list(range(len(pool))), labelled, k, round_seed(run.train.seed, len(state["rounds"]))
    )
    scores = q["scores"] or [float("nan")] * len(q["queried"])
    rows = [{"path": str(paths[i]), "rank": n + 1, "score": round(s, 6), "predicted": base.classes[p], "label": ""}
            for n, (i, p, s) in enumerate(zip(q["queried"], q["predicted"], scores))]  # fmt: skip
    csv_path = Path(csv_path) if csv_path else run_dir / "queries" / f"round-{len(state['rounds']):02d}.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(csv_path, records_csv(rows)[0])
    state["pending"] = {"csv": str(csv_path), "files": [r["path"] for r in rows]}
    write_state(run_dir, state)
    return {"csv": csv_path, "queried": rows, "skipped": skipped}


def read_labels(csv_path: Path, classes: list[str]) -> tuple[list[dict[str, str]], int]:
    """The labelled rows of a query CSV (``path`` and ``label`` columns; a class name or index per row; rows with
    an empty label are left for later): ``([{"path", "label"}], rows left empty)``. Every problem names the row."""
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise TaskError(f"{csv_path}: cannot read the labels ({e})") from None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
        raise TaskError(f"{csv_path}: expected a CSV with 'path' and 'label' columns (as `trustvis active query` "
                        f"writes), found columns {reader.fieldnames}")  # fmt: skip
    out, empty = [], 0
    for n, row in enumerate(reader, start=2):
        path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not label:
            empty += 1
            continue
        if not path:
            raise TaskError(f"{csv_path} line {n}: label {label!r} without a path")
        if label not in classes:
            if label.isdigit() and int(label) < len(classes):
                label = classes[int(label)]
            else:
                raise TaskError(
                    f"{csv_path} line {n}: {label!r} is not a class of this run; choose from {classes}"
                )
        p = Path(path)
        if not p.is_file():
            raise TaskError(f"{csv_path} line {n}: image {path} not found")
        out.append({"path": str(p.resolve()), "label": label})
    return out, empty


def user_label(run_dir: Path, csv_path: Path) -> Any:
    """Add the labels of ``csv_path`` to the loop in ``run_dir`` and train its next round; returns a TrainResult."""
    run_dir = Path(run_dir)
    method, state = _user_run(run_dir)
    run = method.run_config
    rows, empty = read_labels(csv_path, state["classes"])
    if not rows:
        raise TaskError(f"{csv_path}: no row has a label yet ({empty} empty); fill the 'label' column first")
    known = {e["path"]: e for e in state["user_labels"]}
    for row in rows:  # a relabelled image keeps its latest label
        known[row["path"]] = row
    state["user_labels"] = list(known.values())
    state.pop("pending", None)
    write_state(run_dir, state)
    res = run_loop(run, run_dir, resume=True)  # trains exactly the next round
    res.lines.insert(
        0, f"added {len(rows)} label(s)" + (f" ({empty} row(s) still without a label)" if empty else "")
    )
    return res


# ----------------------------------------------------------------------------------------------------
# the task object


class ActiveTask(ClassifyTask):
    """Active learning: the loop trains a classifier, so predict and eval are the classifier's."""

    name = "active"
    method_tasks = ("active",)
    data_config = ActiveData
    eval_layout = ClassifyTask.eval_layout

    def prepare(self, run: Any, explicit: set[str]) -> None:
        if "model.num_classes" not in explicit:
            data = run.data
            images = train_split(data) if data.oracle == "user" else load_pool(data)
            run.model.num_classes = images.num_classes

    def check_method(self, spec: Any, command: str) -> None:
        """Every active learner trains, predicts and evaluates."""

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any]:
        """Round 0's data: the initial labels and the test split (the loop itself is :meth:`train`)."""
        pool, test = load_pool(run.data), load_test(run.data)
        labelled = pool.subset(initial_indices(len(pool), run.data.initial, run.train.seed))
        return _dataset(labelled, method, True), _dataset(test, method, False)

    def train(self, run: Any, out: Path, resume: bool = False) -> Any:
        return run_loop(run, out, resume)

    def after_fit(self, method: Any, run: Any, val_set: Any | None, out: Path, steps: int) -> list[str]:
        return []

    def instead(self, command: str) -> str:
        return f"`trustvis {command}` does not support it for active-learning runs"

    def tiny_overrides(self, folder: Path) -> list[str]:
        """The tiny folder's train split holds about 10 images: 6 initial labels, one round of 2."""
        return [*super().tiny_overrides(folder), "data.initial=6", "data.budget=2", "data.rounds=1"]


register_task(ActiveTask())
