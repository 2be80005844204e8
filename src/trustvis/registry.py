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
class MethodSpec:
    """What the registry knows about one method."""

    name: str
    task: str
    cls: type
    config: type
    presets: Mapping[str, Mapping[str, Any]]
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
        values = dict(self.presets[preset])
        values.update(overrides)
        return from_dict(self.config, values)


METHODS: dict[str, MethodSpec] = {}


def register(
    name: str,
    *,
    task: str,
    config: type,
    presets: Mapping[str, Mapping[str, Any]],
    paper: Paper,
    summary: str = "",
    seed_method: bool = True,
) -> Callable[[type], type]:
    """Class decorator that adds a method to :data:`METHODS`.

    Raises:
        ValueError: the name is taken, the task is unknown, the config is not a dataclass, or the
            ``default``/``tiny`` presets are missing.
    """
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
