"""The one cell writer: every table cell of every task is built and written here, with one schema.

A cell is a small JSON that carries its identity as fields (the wildcards that made it:
dataset, task, model, setting, seed, plus item_repr and model_class), the ``protocol`` that
produced it, its ``metrics`` (the task's metric columns) and ``status`` (``ok`` or ``n/a`` with
a ``note`` saying why). Beside it lies the task's per-row file (``Task.rows_file``: top-k lists or
predictions) from which anyone can recompute the metrics; ``timing`` and ``provenance`` point to
the wall-clock record and the manifest. ``schemas/cell.schema.yaml`` is the same schema in
JSON-Schema form (the tests validate real cells against it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmrecbench.errors import BenchError
from llmrecbench.io import write_json

REQUIRED = ("dataset", "task", "model", "model_class", "item_repr", "setting", "seed", "protocol", "metrics", "status")
STATUSES = ("ok", "n/a")


class CellError(BenchError):
    """A cell lacks a field of the schema or has a wrong value."""


def make_cell(
    *,
    dataset: str,
    task: str,
    model: str,
    model_class: str,
    item_repr: str,
    setting: str,
    seed: int,
    protocol: dict,
    metrics: dict,
    status: str = "ok",
    **extra: Any,
) -> dict:
    """A cell dict with the schema's fields; ``extra`` holds task- or family-specific fields
    (n_users, n_items, counters, extra_columns, note, ...). ``status`` ``n/a`` needs a ``note``."""
    if status not in STATUSES:
        raise CellError(f"cell status {status!r} is not one of {STATUSES}")
    if status == "n/a" and not extra.get("note"):
        raise CellError("an N/A cell needs a note saying why")
    cell = {
        "dataset": dataset,
        "task": task,
        "model": model,
        "model_class": model_class,
        "item_repr": item_repr,
        "setting": setting,
        "seed": int(seed),
        "protocol": protocol,
        "metrics": metrics,
        "status": status,
        **extra,
    }
    check_cell(cell)
    return cell


def check_cell(cell: dict, where: str = "cell") -> None:
    missing = [f for f in REQUIRED if f not in cell]
    if missing:
        raise CellError(f"{where}: lacks fields {missing}")
    if not isinstance(cell["protocol"], dict) or not isinstance(cell["metrics"], dict):
        raise CellError(f"{where}: protocol and metrics must be objects")


def write_cell(cell: dict, dest: str | Path, *, timing: str | None = None, provenance: str | None = None) -> None:
    """Validate and write a cell atomically, with its pointers to timing and provenance."""
    if timing is not None:
        cell["timing"] = str(timing)
    if provenance is not None:
        cell["provenance"] = str(provenance)
    check_cell(cell, str(dest))
    write_json(cell, dest)


def na_cell(*, dataset: str, task: str, model: str, model_class: str, item_repr: str, setting: str, seed: int,
            protocol: dict, reason: str, **extra: Any) -> dict:
    """A cell that states why it has no metrics (status ``n/a``)."""
    return make_cell(
        dataset=dataset, task=task, model=model, model_class=model_class, item_repr=item_repr, setting=setting,
        seed=seed, protocol=protocol, metrics={}, status="n/a", note=reason, extra_columns={}, **extra,
    )
