"""Pieces every task's pipeline shares: model construction from a config block, the checkpoint
fingerprint, the trainer config, timing records and the per-row frames' id columns."""

from __future__ import annotations

import hashlib
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import torch

from llmrecbench.errors import ConfigError, InputError
from llmrecbench.provenance import config_hash
from llmrecbench.training import TrainConfig


def count_rows(path: str | Path) -> int:
    """Rows of a parquet file (items.parquet / users.parquet: the number of ids)."""
    try:
        return int(pl.scan_parquet(path).select(pl.len()).collect().item())
    except Exception as exc:  # polars raises several exception types for a bad file
        raise InputError(path, f"cannot read parquet ({type(exc).__name__}: {exc})") from exc


def train_config(spec: dict, seed: int, threads: int | None) -> TrainConfig:
    """TrainConfig from a model block's ``train:`` section (schema defaults already filled in)."""
    known = {f.name for f in fields(TrainConfig)}
    values: dict[str, Any] = {k: v for k, v in spec.get("train", {}).items() if k in known}
    values.update(seed=seed, num_threads=threads)
    return TrainConfig(**values)


def build_model(spec: dict, *args: Any, seed: int, **inputs: Any):
    """The registered class of a ``models:`` block, with its family's positional arguments; a
    class whose family differs from the block's is refused in one line."""
    from llmrecbench.models import create_model, get_model_class

    cls = get_model_class(spec["class"])
    family = getattr(cls, "family", "sequential")
    if spec.get("family", family) != family:
        raise ConfigError(f"model class {spec['class']!r} is a {family} model, but its block says family {spec['family']!r}")
    try:
        return create_model(spec["class"], *args, seed=seed, **spec.get("hparams", {}), **inputs)
    except TypeError as exc:  # an hparam the class does not take
        raise ConfigError(f"model class {spec['class']!r}: bad hparams ({exc})") from exc


def checkpoint_fingerprint(spec: dict, cfg: TrainConfig, data_summary: Any, arrays: dict[str, np.ndarray] | None = None) -> str:
    """Hash of everything that shapes training (class, hparams, trainer settings, data), so a changed
    config or dataset never resumes a stale checkpoint."""
    identity = {
        "class": spec["class"],
        "hparams": spec.get("hparams", {}),
        "train": {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "num_threads"},
        "data": data_summary,
    }
    if arrays:
        identity["inputs"] = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in sorted(arrays.items())}
    return config_hash(identity)[:16]


def timed_batches(fn: Callable[[slice], torch.Tensor], n: int, batch_size: int) -> tuple[np.ndarray, float]:
    """Run ``fn`` on every batch slice of ``range(n)`` after a one-batch warm-up; return the
    concatenated outputs and the wall seconds of the timed pass (CUDA synchronised)."""
    if n == 0:
        return np.empty((0,)), 0.0
    fn(slice(0, min(batch_size, n)))  # warm-up: allocator, kernels, lazy buffers
    outs = []
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        out = fn(slice(start, start + batch_size))
        if out.is_cuda:
            torch.cuda.synchronize()
        outs.append(out.detach().float().cpu().numpy())
    return np.concatenate(outs), time.perf_counter() - t0


def timing_record(seconds: float, n: int, batch_size: int, unit: str, method: str) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {
        "latency_ms_per_user": 1000.0 * seconds / max(1, n),
        "score_seconds": seconds,
        "batch_size": int(batch_size),
        "n_users": int(n),
        "unit": unit,
        "device": device,
        "method": method,
    }
