"""Task ``reid``: person re-identification — an embedding per image, ranked by cosine similarity (``rollback``,
``finetune``, ``fixbase``).

data       photoreid (real photos as identities, seen through synthetic cameras; built on first use), vtest
           (pedestrian tracks from OpenCV's vtest.avi; built on first use) or a folder: Market-1501
           (bounding_box_train/, bounding_box_test/, query/) or the plain ROOT/{train,query,gallery}/<pid>/<cam>_*.jpg
train      identity classification over the training identities (labels 0..C-1; ``model.num_classes`` is set
           from the data); no validation split: the test identities are for the final evaluation only
predict    the L2-normalised embedding of each image, and its most similar other input
eval       CMC rank-1/5/10 and mAP with the Market-1501 rules on a folder's query / gallery
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustvis.config import ConfigError
from trustvis.tasks.base import Prediction, PredictOptions, Task, register_task

DATA_NAMES = ("photoreid", "vtest", "folder")


@dataclass
class ReidData:
    """Where a re-identification run's images come from."""

    name: str = "photoreid"  # photoreid | vtest | folder (Market-1501 or the plain layout under root)
    root: str = ""  # the folder when name == folder
    size: str = "quick"  # photoreid size: tiny (seconds) | quick | full

    def check(self) -> None:
        if self.name not in DATA_NAMES:
            raise ConfigError(
                f"data.name={self.name!r} is invalid for re-identification; choose from {list(DATA_NAMES)}"
            )
        if self.name == "folder" and not self.root:
            raise ConfigError("data.name=folder needs data.root (or pass --data ROOT)")


def load_reid_splits(data: ReidData) -> Any:
    """The :class:`~trustvis.data.reid.base.ReidSplits` of a data config (built sets are built on first use)."""
    if data.name == "photoreid":
        from trustvis.data.reid.photoreid import load_photo_reid

        return load_photo_reid(data.size)
    if data.name == "vtest":
        from trustvis.data.reid.vtest import load_vtest_reid

        return load_vtest_reid()
    from trustvis.data.reid.market import read_reid

    return read_reid(Path(data.root).expanduser())


class ReidDataset:
    """A ReidSet through a transform: ``{"image", "label", "pid", "camid", "index"}``; ``label`` is the identity's
    index in ``classes`` (training) or the pid itself (query / gallery)."""

    def __init__(self, items: Any, transform: Any, classes: list[int] | None = None) -> None:
        import numpy as np

        self.items, self.transform = items, transform
        self.lookup = {p: i for i, p in enumerate(classes)} if classes is not None else None
        self.labels = (np.array([self.lookup[int(p)] for p in items.pids], dtype=np.int64)
                       if self.lookup is not None else items.pids)  # fmt: skip

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.transform(self.items.image(i)), "label": int(self.labels[i]),
                "pid": int(self.items.pids[i]), "camid": int(self.items.camids[i]), "index": int(i)}  # fmt: skip


def train_set(items: Any, transform: Any) -> ReidDataset:
    """The training identities (junk and distractors left out), labelled 0..C-1 in pid order."""
    keep = [i for i, p in enumerate(items.pids) if p > 0]
    items = items.subset(keep)
    return ReidDataset(items, transform, classes=items.identities)


def embeddings(method: Any, items: Any, batch_size: int = 64, progress: bool = False) -> dict[str, Any]:
    """``{"embedding" (N,D), "pid", "camid", "images_per_second"}`` of ``method`` on a ReidSet."""
    from trustvis.engine import predict_dataset

    return predict_dataset(method, ReidDataset(items, method.make_transform(False)), batch_size=batch_size,
                           keys=("embedding",), progress=progress)  # fmt: skip


def retrieval_metrics(
    method: Any, splits: Any, batch_size: int = 64, progress: bool = False
) -> dict[str, Any]:
    """Rank-1/5/10 and mAP of ``method`` on ``splits.query`` against ``splits.gallery`` (Market-1501 rules)."""
    from trustvis.metrics.retrieval import cosine_distance, evaluate_retrieval

    q = embeddings(method, splits.query, batch_size, progress)
    g = embeddings(method, splits.gallery, batch_size, progress)
    dist = cosine_distance(q["embedding"], g["embedding"])
    res = evaluate_retrieval(dist, q["pid"], g["pid"], q["camid"], g["camid"])
    res["images_per_second"] = float(q["images_per_second"])
    return res


class ReidTask(Task):
    """Person re-identification (embeddings ranked by cosine similarity)."""

    name = "reid"
    method_tasks = ("reid",)
    data_config = ReidData
    predict_fit = "resize"
    eval_layout = ("Market-1501 ROOT/{bounding_box_train,bounding_box_test,query}/PPPP_cCsS_FFFFFF_NN.jpg or "
                   "ROOT/{train,query,gallery}/<pid>/<cam>_*.jpg")  # fmt: skip

    def prepare(self, run: Any, explicit: set[str]) -> None:
        if "model.num_classes" not in explicit:
            run.model.num_classes = len(load_reid_splits(run.data).train.identities)

    def datasets(self, run: Any, method: Any) -> tuple[Any, Any | None]:
        splits = load_reid_splits(run.data)
        splits.check_disjoint()
        return train_set(splits.train, method.make_transform(True)), None

    def predict_records(self, method: Any, out: dict[str, Any], items: list[tuple[int, Path, Any]],
                        opts: PredictOptions) -> list[dict[str, Any] | str]:  # fmt: skip
        import numpy as np

        emb = out["embedding"].float().cpu().numpy()
        recs: list[dict[str, Any] | str] = []
        for (_, path, _), e in zip(items, emb):
            recs.append({"path": str(path), "embedding": [float(v) for v in e]} if np.isfinite(e).all()
                        else "model output is not finite; the run's weights may be broken")  # fmt: skip
        return recs

    def predict_table(self, pred: Prediction, opts: PredictOptions, run_dir: Path) -> None:
        pred.columns, pred.header = (
            ["path", "dim", "closest", "similarity"],
            ["path", "dim", "most similar input", "cosine"],
        )
        if not pred.records:
            return
        import numpy as np

        e = np.array([r["embedding"] for r in pred.records], dtype=np.float32)
        sim = e @ e.T
        np.fill_diagonal(sim, -np.inf)
        for i, r in enumerate(pred.records):
            r["dim"] = len(r["embedding"])
            if len(pred.records) > 1:
                j = int(np.argmax(sim[i]))
                r["closest"], r["similarity"] = pred.records[j]["path"], round(float(sim[i, j]), 4)
        pred.summary.append("--json gives each image's embedding (L2-normalised; cosine = dot product)")

    def evaluate(self, method: Any, root: Path, run_dir: Path, *, batch_size: int = 64, progress: bool = True,
                 **_: Any) -> dict[str, Any]:  # fmt: skip
        from trustvis.data.reid.market import read_reid

        splits = read_reid(root)
        res = retrieval_metrics(method, splits, batch_size, progress)
        res.update(data=str(root), n_query=len(splits.query), n_gallery=len(splits.gallery))
        res["skipped"] = [f"{p}: {r}" for p, r in [*splits.query.skipped, *splits.gallery.skipped]]
        return res

    def eval_table(self, res: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        keys = ("rank1", "rank5", "rank10", "map", "n_query", "n_valid_query", "n_gallery")
        return ["metric", "value"], [[k, res[k]] for k in keys if k in res]

    def instead(self, command: str) -> str:
        return "`trustvis bench reid` measures the methods on the built-in retrieval sets"

    def tiny_folder(self, root: Path) -> Path:
        from trustvis.data.reid.market import tiny_market

        return Path(tiny_market(root))

    def tiny_overrides(self, folder: Path) -> list[str]:
        return ["data.name=folder", f"data.root={folder}"]


register_task(ReidTask())
