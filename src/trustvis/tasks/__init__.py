"""Tasks: what each kind of method is for, and everything about it that is not the method itself.

base.py         the Task contract (data config, datasets, validation, after-fit, predict, eval), the table
predict.py      scoring image files for any task (batching, error rows)
train.py        one training run of any trainable task (``trustvis train``)
calibration.py  logits files and runs -> post-hoc calibrators (``trustvis calibrate``)
detect.py       generated-image detection          classify.py  classification (+ augment/adapt/calibrate)
anomaly.py      anomaly detection and localisation codec.py     neural image compression
antispoof.py    recaptured-image detection from RGB + depth pairs
reid.py         person re-identification (embeddings, retrieval metrics)
active.py       active learning: the loop of training, querying and labelling (simulated or a person)
multimodal.py   image <-> speech association (latents per modality, cross-modal generation)

A new task: one module with a :class:`~trustvis.tasks.base.Task` subclass registered by
:func:`~trustvis.tasks.base.register_task`, and one import line below.
"""

from trustvis.tasks import active, anomaly, antispoof, classify, codec, detect, multimodal, reid  # noqa: F401  (registers the built-in tasks)
from trustvis.tasks.base import (
    Prediction,
    PredictOptions,
    Task,
    TaskError,
    get_task,
    list_tasks,
    register_task,
    task_of,
)

__all__ = [
    "PredictOptions",
    "Prediction",
    "Task",
    "TaskError",
    "get_task",
    "list_tasks",
    "register_task",
    "task_of",
]
