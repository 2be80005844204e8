"""Method registry: one explicit, duplicate-safe table of every method trustvis implements.

A method registers itself with :func:`register` (a class decorator) in its own module; the modules are
imported by :mod:`trustvis.methods`. Nothing is discovered implicitly.

    >>> from trustvis import registry
    >>> sorted(spec.name for spec in registry.list_methods("detect"))   # doctest: +SKIP
    ['bihpf', 'cnndet']
    >>> method = registry.build("bihpf", preset="tiny", num_workers=0)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Every task a method can belong to, with the keys its ``predict`` returns (see DESIGN.md).
TASKS: dict[str, tuple[str, ...]] = {
    "detect": ("score", "logits"),
    "antispoof": ("score", "logits"),
    "anomaly": ("score", "anomaly_map"),
    "classify": ("logits", "probs"),
    "adapt": ("logits", "probs"),
    "augment": ("logits", "probs"),
    "calibrate": ("logits", "probs"),
    "active": ("logits", "probs"),
    "reid": ("embedding",),
    "codec": ("x_hat", "bpp"),
    "multimodal": ("z",),
}


@dataclass(frozen=True)
class Paper:
    """Bibliographic pointer for a method."""

    title: str
    venue: str
    url: str

    def __str__(self) -> str:
        return f"{self.title} ({self.venue}) {self.url}"


@dataclass(frozen=True)
class Preset:
    """One named preset of a method: its model config values and the run settings that go with them.

    ``model`` holds fields of the method's config dataclass; ``train`` fields of
    :class:`~trustvis.config.TrainConfig`; ``data`` fields of the method task's data config (e.g.
    ``{"name": "sklearn-digits"}``). A value not given keeps the dataclass default.
    """

    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def run_values(self) -> dict[str, dict[str, Any]]:
        """``{"train": {...}, "data": {...}}`` without empty sections (merged into a run config)."""
        return {k: dict(v) for k, v in (("train", self.train), ("data", self.data)) if v}


@dataclass(frozen=True)
class MethodSpec:
    """What the registry knows about one method."""

    name: str
    task: str
    cls: type
    config: type
    presets: Mapping[str, Preset]
    paper: Paper
    summary: str = ""
    seed_method: bool = True  # False for baselines (cnndet, npr, padim, ...)

    def make_config(self, preset: str = "default", **overrides: Any) -> Any:
        """The method's config dataclass for ``preset`` with ``overrides`` applied on top."""
        from trustvis.config import from_dict

        if preset not in self.presets:
            raise KeyError(
                f"Unknown preset {preset!r} for method {self.name!r}; choose from {sorted(self.presets)}"
            )
        values = dict(self.presets[preset].model)
        values.update(overrides)
        return from_dict(self.config, values)


METHODS: dict[str, MethodSpec] = {}
#: method task -> the dataclass of ``run.data`` for its runs (filled by ``trustvis.tasks.register_task``)
DATA_CONFIGS: dict[str, type] = {}


def register(
    name: str,
    *,
    task: str,
    config: type,
    presets: Mapping[str, Preset | Mapping[str, Any]],
    paper: Paper,
    summary: str = "",
    seed_method: bool = True,
) -> Callable[[type], type]:
    """Class decorator that adds a method to :data:`METHODS`.

    ``presets`` maps names to :class:`Preset` objects; a plain mapping is a preset of model values only.

    Raises:
        ValueError: the name is taken, the task is unknown, the config is not a dataclass, or the
            ``default``/``tiny`` presets are missing.
    """
    presets = {k: v if isinstance(v, Preset) else Preset(model=dict(v)) for k, v in presets.items()}
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r} for method {name!r}; choose from {sorted(TASKS)}")
    if not dataclasses.is_dataclass(config):
        raise ValueError(f"Config of method {name!r} must be a dataclass, got {config!r}")
    missing = {"default", "tiny"} - set(presets)
    if missing:
        raise ValueError(
            f"Method {name!r} must define presets 'default' and 'tiny'; missing {sorted(missing)}"
        )

    def decorator(cls: type) -> type:
        if name in METHODS:
            raise ValueError(f"A method is already registered under the name {name!r} ({METHODS[name].cls})")
        METHODS[name] = MethodSpec(name, task, cls, config, dict(presets), paper, summary, seed_method)
        cls.method_name = name
        cls.task = task
        return cls

    return decorator


def _ensure_loaded() -> None:
    import trustvis.methods  # noqa: F401  (registers every built-in method)
    import trustvis.tasks  # noqa: F401  (registers every task and its data config)


def data_config(task: str) -> type:
    """The dataclass of ``run.data`` for methods of ``task`` (e.g. detect -> DetectData)."""
    _ensure_loaded()
    if task not in DATA_CONFIGS:
        raise KeyError(
            f"no task object serves {task!r} methods yet (tasks with data: {sorted(DATA_CONFIGS)})"
        )
    return DATA_CONFIGS[task]


def get(name: str) -> MethodSpec:
    """The spec of method ``name``; the error lists the valid names."""
    _ensure_loaded()
    if name not in METHODS:
        raise KeyError(f"Unknown method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name]


def list_methods(task: str | None = None) -> list[MethodSpec]:
    """All registered methods, optionally only those of one task, sorted by name."""
    _ensure_loaded()
    if task is not None and task not in TASKS:
        raise KeyError(f"Unknown task {task!r}; choose from {sorted(TASKS)}")
    return [s for _, s in sorted(METHODS.items()) if task is None or s.task == task]


def build(name: str, preset: str = "default", **overrides: Any) -> Any:
    """Build method ``name`` from one of its presets, with config ``overrides`` on top."""
    spec = get(name)
    return spec.cls(spec.make_config(preset, **overrides))


# ----------------------------------------------------------------------------------------------------
# catalog: the registry's metadata as JSON, read by `trustvis list`, `info` and `--help` without importing
# torch or any method module. `python -m trustvis.registry` rewrites it; tests/test_registry_catalog.py
# fails when it is out of date.

CATALOG_FILE = "catalog.json"


def _jsonable(v: Any) -> Any:
    from trustvis.config import to_dict

    v = to_dict(v)
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, float) and v != v:
        return None
    return v


def describe(spec: MethodSpec) -> dict[str, Any]:
    """Everything ``list`` and ``info`` show about one method, as JSON-able values."""
    import inspect
    import sys
    from pathlib import Path

    from trustvis.config import to_dict

    default = to_dict(spec.make_config("default"))
    module = sys.modules[spec.cls.__module__]
    root = Path(__file__).resolve().parent
    return {
        "name": spec.name,
        "task": spec.task,
        "seed_method": spec.seed_method,
        "paper": {"title": spec.paper.title, "venue": spec.paper.venue, "url": spec.paper.url},
        "summary": spec.summary,
        "file": Path(inspect.getsourcefile(spec.cls)).resolve().relative_to(root).as_posix(),
        "doc": (module.__doc__ or "").strip(),
        "config": {f.name: _jsonable(default[f.name]) for f in dataclasses.fields(spec.config)},
        "presets": {
            name: {
                "model": _jsonable(dict(p.model)),
                "train": _jsonable(dict(p.train)),
                "data": _jsonable(dict(p.data)),
            }
            for name, p in spec.presets.items()
        },
    }


def build_catalog() -> dict[str, Any]:
    """The catalog of every registered method (imports them all)."""
    return {"methods": [describe(s) for s in list_methods()], "tasks": sorted(TASKS)}


def catalog() -> dict[str, Any]:
    """The stored catalog (no torch import); built live if the file is missing (a source checkout)."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent / CATALOG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return build_catalog()


def write_catalog() -> str:
    """Rewrite ``catalog.json`` from the live registry; returns its path."""
    import json
    from pathlib import Path

    from trustvis.atomic import atomic_write_text

    path = Path(__file__).resolve().parent / CATALOG_FILE
    atomic_write_text(path, json.dumps(build_catalog(), indent=1, ensure_ascii=False) + "\n")
    return str(path)


if __name__ == "__main__":  # run as a script, this file is not the trustvis.registry module the methods fill
    from trustvis import registry as _registry

    print(f"wrote {_registry.write_catalog()}")
