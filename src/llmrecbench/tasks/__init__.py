"""Task registry: one module per task, each a :class:`~llmrecbench.tasks.base.Task` subclass.

Adding a task is one module here (registered below) plus one block under ``tasks:`` in the config
and its schema. The registry imports no task module until a task is asked for, so the Snakefile
reads declarations without importing torch.
"""

from __future__ import annotations

import importlib

from llmrecbench.errors import ConfigError
from llmrecbench.tasks.base import FAMILY_HOME, Metric, Task

# task name -> "module:class" (imported on first use)
_TASKS = {
    "seqrec": "llmrecbench.tasks.seqrec:SeqRec",
    "rating": "llmrecbench.tasks.rating:RatingPrediction",
    "direct": "llmrecbench.tasks.direct:DirectRecommendation",
    "explanation": "llmrecbench.tasks.explanation:ExplanationGeneration",
    "review": "llmrecbench.tasks.review:ReviewSummarization",
    "ctr": "llmrecbench.tasks.ctr:CTRPrediction",
}


def known_task_names() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str, options: dict | None = None) -> Task:
    """The task ``name`` with its evaluation ``options`` (the config's ``tasks.<name>.evaluation``)."""
    if name not in _TASKS:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(known_task_names())}")
    module, _, cls = _TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(options=dict(options or {}))


__all__ = ["FAMILY_HOME", "Metric", "Task", "get_task", "known_task_names"]
