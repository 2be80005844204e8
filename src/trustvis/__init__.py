"""trustvis: trustworthy visual recognition.

Detect generated, recaptured and anomalous images; train, adapt, calibrate and compress the models
and images involved. See README.md and ``trustvis --help``.

The everyday entry points (:mod:`trustvis.api`)::

    trustvis.load(run_dir)                     a trained run as a Predictor: .predict(image or list of images)
    trustvis.build(name, preset=..., **kw)     a new method from its registry name, with config overrides
    trustvis.list_methods(task=None)           the registered methods' names

They are imported on first use (PEP 562), so ``import trustvis`` stays light: no torch until a run is
loaded or a method built.
"""

__version__ = "0.1.0"

#: lazily imported names -> the module that defines them
_LAZY = {
    "Predictor": "trustvis.api",
    "build": "trustvis.api",
    "list_methods": "trustvis.api",
    "load": "trustvis.api",
}

__all__ = ["Predictor", "__version__", "build", "list_methods", "load"]


def __getattr__(name: str) -> object:
    import importlib

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trustvis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
