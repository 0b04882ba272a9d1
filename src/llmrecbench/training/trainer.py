"""One training loop for every trainable recommender (sequential, rating and direct families):
shuffled mini-batches, Adam, early stopping on a validation metric the caller names, and a
checkpoint after every epoch from which a killed run resumes to exactly the same result.

The loop knows no task: the caller passes ``validate(model) -> {metric: value}`` (the task's own
evaluator on the validation split) and a :class:`Monitor` naming the metric that early stopping
follows and its direction (NDCG@10 up for ranking tasks, RMSE down for rating prediction). A
model provides ``training_examples(train)`` (a dict of tensors sharing their first dimension),
``training_loss(batch, loss, generator)`` and the ``losses`` it accepts; a model with
``trainable = False`` is fitted by ``fit_closed_form(train)`` and validated once.

Reproducibility: every epoch ``e`` starts by seeding the global torch RNG (dropout) and a
dedicated ``torch.Generator`` (shuffling, negative sampling, cloze masking) from ``(seed, e)``.
The randomness of an epoch therefore depends only on the seed and the epoch number, never on
what ran before in the process, so resuming after epoch ``e`` replays epochs ``e+1..`` exactly.
The checkpoint (``checkpoint_dir/last.pt``, written atomically) holds the model and optimizer
state, the best weights so far, the patience counter, the log and the RNG states.

Defaults of :class:`TrainConfig` are read from the ``train:`` block of
``schemas/config.schema.yaml``, the one place they are written.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from llmrecbench.config import schema_defaults
from llmrecbench.errors import ConfigError
from llmrecbench.io import atomic_path
from llmrecbench.monitor import Monitor

log = logging.getLogger("llmrecbench")

CHECKPOINT_NAME = "last.pt"
# Fields that do not change the result; a checkpoint written under other values still resumes.
_NON_RESULT_FIELDS = ("max_epochs", "num_threads", "curve_every_steps")  # change no weights
_DEFAULTS = schema_defaults("train")


@dataclass
class TrainConfig:
    loss: str = _DEFAULTS["loss"]  # one of the model's ``losses`` (ce, bce, mse, bpr, ccl)
    lr: float = _DEFAULTS["lr"]
    batch_size: int = _DEFAULTS["batch_size"]
    max_epochs: int = _DEFAULTS["max_epochs"]
    patience: int = _DEFAULTS["patience"]  # epochs without a better monitored metric before stopping
    weight_decay: float = _DEFAULTS["weight_decay"]
    seed: int = 0
    num_threads: int | None = None
    bucket_by_length: bool = True  # batches of similar length (less padding), in random order
    curve_every_steps: int = _DEFAULTS["curve_every_steps"]  # also validate every N steps (learning curve); 0: off

    def __post_init__(self) -> None:
        for name in ("lr", "batch_size", "max_epochs"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.patience < 1:
            raise ConfigError(f"TrainConfig.patience must be >= 1, got {self.patience!r}")
        if self.curve_every_steps < 0:
            raise ConfigError(f"TrainConfig.curve_every_steps must be >= 0, got {self.curve_every_steps!r}")


Validate = Callable[[torch.nn.Module], dict]


def check_loss(model: torch.nn.Module, loss: str) -> None:
    known = tuple(getattr(model, "losses", ()))
    if loss not in known:
        raise ConfigError(f"model {getattr(model, 'name', type(model).__name__)!r}: unknown loss {loss!r}; known: {', '.join(known)}")


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _batches(examples: dict[str, torch.Tensor], cfg: TrainConfig, gen: torch.Generator) -> list[torch.Tensor]:
    n = next(iter(examples.values())).shape[0]
    order = torch.randperm(n, generator=gen)
    if cfg.bucket_by_length and "length" in examples:
        # sort by length inside chunks of 50 batches, then shuffle the batches
        chunk = cfg.batch_size * 50
        lengths = examples["length"][order]
        parts = []
        for s in range(0, n, chunk):
            sub = torch.sort(lengths[s : s + chunk], stable=True).indices
            parts.append(order[s : s + chunk][sub])
        order = torch.cat(parts)
        batches = list(order.split(cfg.batch_size))
        perm = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[i] for i in perm]
    return list(order.split(cfg.batch_size))


def _fingerprint(model: torch.nn.Module, cfg: TrainConfig, monitor: Monitor, n_examples: int) -> dict[str, Any]:
    c = {k: v for k, v in asdict(cfg).items() if k not in _NON_RESULT_FIELDS}
    return {
        "model": model.name, "n_items": model.n_items, "n_users": getattr(model, "n_users", None),
        "hparams": model.hparams, "cfg": c, "monitor": [monitor.name, monitor.mode], "n_examples": n_examples,
    }


def fit(
    model: torch.nn.Module,
    train: Any,
    cfg: TrainConfig,
    checkpoint_dir: str | Path,
    *,
    validate: Validate,
    monitor: Monitor,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``model`` on ``train`` with early stopping on ``monitor`` of ``validate(model)``.

    ``train`` is what the model's family trains on (training sequences, rating triples, ...),
    handed unchanged to ``model.training_examples`` or ``model.fit_closed_form``. On return the
    model holds the weights of the best epoch. With ``cfg.curve_every_steps`` = N > 0 the model
    is also validated after every N-th optimiser step and at each epoch's end, into the log's
    ``curve`` (step, epoch, cumulative seconds, valid metrics); validation draws no training
    randomness, so the weights are those of a run without it, and early stopping stays per epoch.
    ``on_epoch_end(epoch, entry)`` is called after each epoch's checkpoint is written (tests raise
    from it to simulate a kill).
    """
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        if not model.trainable:
            return _fit_closed_form(model, train, validate, monitor)
        check_loss(model, cfg.loss)
        return _fit_sgd(model, train, cfg, Path(checkpoint_dir), validate, monitor, progress, on_epoch_end)
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def _check_valid(valid: dict, monitor: Monitor) -> float:
    if monitor.name not in valid:
        raise ConfigError(f"monitor {monitor.name!r} is not among the validation metrics {sorted(valid)}")
    return float(valid[monitor.name])


def _metrics_text(valid: dict) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in valid.items())


def _fit_closed_form(model: torch.nn.Module, train: Any, validate: Validate, monitor: Monitor) -> dict:
    t0 = time.perf_counter()
    model.fit_closed_form(train)  # type: ignore[attr-defined]
    valid = validate(model)
    _check_valid(valid, monitor)
    seconds = time.perf_counter() - t0
    log.info("%s fitted in closed form: valid %s (%.1f s)", model.name, _metrics_text(valid), seconds)
    return {
        "model": model.name,
        "epochs": [],
        "best_epoch": None,
        "best_valid": valid,
        "monitor": {"name": monitor.name, "mode": monitor.mode},
        "stopped_early": False,
        "resumed_from_epoch": None,
        "seconds": seconds,
    }


def _fit_sgd(
    model: torch.nn.Module,
    train: Any,
    cfg: TrainConfig,
    checkpoint_dir: Path,
    validate: Validate,
    monitor: Monitor,
    progress: bool,
    on_epoch_end: Callable[[int, dict], None] | None,
) -> dict:
    t_start = time.perf_counter()
    ckpt_path = checkpoint_dir / CHECKPOINT_NAME
    examples = model.training_examples(train)
    n_examples = next(iter(examples.values())).shape[0]
    fingerprint = _fingerprint(model, cfg, monitor, int(n_examples))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epochs: list[dict] = []
    best_metric, best_epoch, best_state, best_valid = monitor.worst, None, None, None
    bad_epochs, start_epoch, stopped, resumed_from = 0, 0, False, None
    curve: list[dict] = []

    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            epochs = state["epochs"]
            best_metric, best_epoch = state["best_metric"], state["best_epoch"]
            best_state, best_valid = state["best_state"], state["best_valid"]
            bad_epochs, stopped = state["bad_epochs"], state["stopped"]
            curve = state.get("curve", [])
            start_epoch = resumed_from = state["epoch"] + 1
            torch.set_rng_state(state["torch_rng"])
            np.random.set_state(state["numpy_rng"])
            log.info("%s: resuming from %s after epoch %d", model.name, ckpt_path, state["epoch"] + 1)
        else:
            log.warning("%s: checkpoint %s was written for another configuration; starting afresh", model.name, ckpt_path)

    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.max_epochs):
        if stopped:
            break
        t0 = time.perf_counter()
        seed = _epoch_seed(cfg.seed, epoch)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed ^ 0x5DEECE66D)
        batches = _batches(examples, cfg, gen)
        model.train()
        total, count = 0.0, 0
        seconds_before = sum(float(e["seconds"]) for e in epochs)  # the curve's clock, across resumes
        bar = tqdm(batches, desc=f"{model.name} epoch {epoch + 1}/{cfg.max_epochs}", file=sys.stderr, disable=not progress, leave=False, mininterval=1.0)
        for i, idx in enumerate(bar):
            batch = {k: v[idx] for k, v in examples.items()}
            loss = model.training_loss(batch, cfg.loss, gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            if progress:
                bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
            step = epoch * len(batches) + i + 1
            if cfg.curve_every_steps and step % cfg.curve_every_steps == 0 and i + 1 < len(batches):
                point = validate(model)
                model.train()
                curve.append(_curve_point(step, epoch + (i + 1) / len(batches), seconds_before + time.perf_counter() - t0,
                                          total / count, point))
                log.info("%s step %d: valid %s", model.name, step, _metrics_text(point))
        bar.close()
        train_seconds = time.perf_counter() - t0
        valid = validate(model)
        if cfg.curve_every_steps:
            curve.append(_curve_point((epoch + 1) * len(batches), epoch + 1, seconds_before + time.perf_counter() - t0,
                                      total / max(count, 1), valid))
        value = _check_valid(valid, monitor)
        improved = monitor.improved(value, best_metric)
        if improved:
            best_metric, best_epoch, best_valid = value, epoch + 1, valid
            best_state = copy.deepcopy(model.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        stopped = bad_epochs >= cfg.patience
        entry = {
            "epoch": epoch + 1,
            "loss": total / max(count, 1),
            **{f"valid_{k}": v for k, v in valid.items()},
            "seconds": time.perf_counter() - t0,
            "train_seconds": train_seconds,
        }
        epochs.append(entry)
        log.info(
            "%s epoch %d/%d: loss %.4f valid %s%s (%.1f s, %d examples)",
            model.name, epoch + 1, cfg.max_epochs, entry["loss"], _metrics_text(valid),
            " *" if improved else "", entry["seconds"], n_examples,
        )
        _save_checkpoint(ckpt_path, {
            "fingerprint": fingerprint,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epochs": epochs,
            "best_metric": best_metric,
            "best_epoch": best_epoch,
            "best_state": best_state,
            "best_valid": best_valid,
            "bad_epochs": bad_epochs,
            "stopped": stopped,
            "curve": curve,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "generator_state": gen.get_state(),
        })
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, entry)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {
        "model": model.name,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "best_valid": best_valid,
        "monitor": {"name": monitor.name, "mode": monitor.mode},
        "stopped_early": bool(stopped),
        "resumed_from_epoch": resumed_from,
        "n_examples": int(n_examples),
        "seconds": time.perf_counter() - t_start,
        "config": asdict(cfg),
        **({"curve": curve} if cfg.curve_every_steps else {}),
    }


def _curve_point(step: int, epoch: float, seconds: float, loss: float, valid: dict) -> dict:
    """One learning-curve entry: optimiser steps, epochs (fractional), cumulative seconds (training
    and validation), the running mean training loss of the epoch so far, the valid metrics."""
    return {"step": int(step), "epoch": float(epoch), "seconds": float(seconds), "loss": float(loss),
            **{f"valid_{k}": float(v) for k, v in valid.items()}}


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
