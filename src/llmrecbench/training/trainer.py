"""One training loop for every sequential recommender: shuffled mini-batches, Adam, early stopping
on validation NDCG@10 (full ranking), and a checkpoint after every epoch from which a killed run
resumes to exactly the same result.

Reproducibility: every epoch ``e`` starts by seeding the global torch RNG (dropout) and a
dedicated ``torch.Generator`` (shuffling, negative sampling, cloze masking) from ``(seed, e)``.
The randomness of an epoch therefore depends only on the seed and the epoch number, never on
what ran before in the process, so resuming after epoch ``e`` replays epochs ``e+1..`` exactly.
The checkpoint (``checkpoint_dir/last.pt``, written atomically) holds the model and optimizer
state, the best weights so far, the patience counter, the log and the RNG states.
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

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError
from llmrecbench.evaluation import evaluate_generated_lists, history_mask_index
from llmrecbench.metrics import ranking_metrics, ranks_from_scores
from llmrecbench.io import atomic_path
from llmrecbench.models.base import SequentialRecommender, check_loss

log = logging.getLogger("llmrecbench")

CHECKPOINT_NAME = "last.pt"
# Fields that do not change the result; a checkpoint written under other values still resumes.
_NON_RESULT_FIELDS = ("max_epochs", "num_threads", "eval_batch_size")


@dataclass
class TrainConfig:
    loss: str = "ce"  # "ce": full softmax; "bce": one sampled negative per positive
    lr: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 30
    patience: int = 5  # epochs without a better valid NDCG@10 before stopping
    weight_decay: float = 0.0
    seed: int = 0
    eval_batch_size: int = 1024
    mask_history: bool = True
    num_threads: int | None = None
    bucket_by_length: bool = True  # batches of similar length (less padding), in random order

    def __post_init__(self) -> None:
        check_loss(self.loss)
        for name in ("lr", "batch_size", "max_epochs", "eval_batch_size"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.patience < 1:
            raise ConfigError(f"TrainConfig.patience must be >= 1, got {self.patience!r}")


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


@torch.no_grad()
def _evaluate(model: SequentialRecommender, data: LeaveOneOutSequences, cfg: TrainConfig) -> dict[str, float]:
    """Valid HR@10 / NDCG@10 under full ranking, as :func:`evaluate_full_ranking` computes them.

    Same scores, history mask and tie rule (:func:`ranks_from_scores`), but without the full
    sort that ``evaluate_full_ranking`` does to store top-k lists (about 0.4 s per 1,024 users
    on Beauty), which early stopping does not need.
    """
    if model.generative:
        return _evaluate_generated(model, data, cfg)
    histories, targets = data.histories("valid"), np.asarray(data.targets("valid"), dtype=np.int64)
    ranks = np.empty(targets.shape[0], dtype=np.int64)
    for start in range(0, targets.shape[0], cfg.eval_batch_size):
        hist = histories[start : start + cfg.eval_batch_size]
        tgt = torch.from_numpy(targets[start : start + cfg.eval_batch_size])
        scores = model.score(hist).detach().float()
        if cfg.mask_history:
            rows, cols = history_mask_index(hist)
            scores[rows, cols] = float("-inf")
        ranks[start : start + len(hist)] = ranks_from_scores(scores, tgt).numpy()
    m = ranking_metrics(ranks, (10,))
    return {"NDCG@10": m["NDCG@10"], "HR@10": m["HR@10"]}


@torch.no_grad()
def _evaluate_generated(model: SequentialRecommender, data: LeaveOneOutSequences, cfg: TrainConfig) -> dict[str, float]:
    """Valid HR@10 / NDCG@10 of a generative model's constrained top-10 lists
    (:func:`evaluate_generated_lists`), on a seeded sample of ``model.valid_users`` users (0: all)."""
    histories, targets = data.histories("valid"), np.asarray(data.targets("valid"), dtype=np.int64)
    sample = int(getattr(model, "valid_users", 0) or 0)
    if 0 < sample < len(histories):
        rows = np.sort(np.random.default_rng(cfg.seed).choice(len(histories), sample, replace=False))
        histories, targets = [histories[i] for i in rows], targets[rows]
    result = evaluate_generated_lists(
        model.recommend, histories, targets, model.n_items, ks=(10,), mask_history=cfg.mask_history,
        batch_size=cfg.eval_batch_size, topk=10,
    )
    return {"NDCG@10": result.metrics["NDCG@10"], "HR@10": result.metrics["HR@10"]}


def _fingerprint(model: SequentialRecommender, data: LeaveOneOutSequences, cfg: TrainConfig) -> dict[str, Any]:
    c = {k: v for k, v in asdict(cfg).items() if k not in _NON_RESULT_FIELDS}
    return {"model": model.name, "n_items": model.n_items, "hparams": model.hparams, "n_users": data.n_users, "cfg": c}


def fit(
    model: SequentialRecommender,
    data: LeaveOneOutSequences,
    cfg: TrainConfig,
    checkpoint_dir: str | Path,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``model`` on ``data.train`` with early stopping on valid NDCG@10; return the log.

    On return the model holds the weights of the best epoch. ``on_epoch_end(epoch, entry)`` is
    called after each epoch's checkpoint is written (tests raise from it to simulate a kill).
    """
    check_loss(cfg.loss)
    if data.n_items != model.n_items:
        raise ConfigError(f"model has {model.n_items} items but the data has {data.n_items}")
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        if not model.trainable:
            return _fit_closed_form(model, data, cfg)
        return _fit_sgd(model, data, cfg, Path(checkpoint_dir), progress, on_epoch_end)
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def _fit_closed_form(model: SequentialRecommender, data: LeaveOneOutSequences, cfg: TrainConfig) -> dict:
    t0 = time.perf_counter()
    model.fit_closed_form(data.train)  # type: ignore[attr-defined]
    valid = _evaluate(model, data, cfg)
    seconds = time.perf_counter() - t0
    log.info("%s fitted in closed form: valid NDCG@10 %.4f HR@10 %.4f (%.1f s)", model.name, valid["NDCG@10"], valid["HR@10"], seconds)
    return {
        "model": model.name,
        "epochs": [],
        "best_epoch": None,
        "best_valid": valid,
        "stopped_early": False,
        "resumed_from_epoch": None,
        "seconds": seconds,
    }


def _fit_sgd(
    model: SequentialRecommender,
    data: LeaveOneOutSequences,
    cfg: TrainConfig,
    checkpoint_dir: Path,
    progress: bool,
    on_epoch_end: Callable[[int, dict], None] | None,
) -> dict:
    t_start = time.perf_counter()
    ckpt_path = checkpoint_dir / CHECKPOINT_NAME
    fingerprint = _fingerprint(model, data, cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epochs: list[dict] = []
    best_metric, best_epoch, best_state, best_valid = -1.0, None, None, None
    bad_epochs, start_epoch, stopped, resumed_from = 0, 0, False, None

    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            epochs = state["epochs"]
            best_metric, best_epoch = state["best_metric"], state["best_epoch"]
            best_state, best_valid = state["best_state"], state["best_valid"]
            bad_epochs, stopped = state["bad_epochs"], state["stopped"]
            start_epoch = resumed_from = state["epoch"] + 1
            torch.set_rng_state(state["torch_rng"])
            np.random.set_state(state["numpy_rng"])
            log.info("%s: resuming from %s after epoch %d", model.name, ckpt_path, state["epoch"] + 1)
        else:
            log.warning("%s: checkpoint %s was written for another configuration; starting afresh", model.name, ckpt_path)

    examples = model.training_examples(data.train)
    n_examples = next(iter(examples.values())).shape[0]
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
        bar = tqdm(batches, desc=f"{model.name} epoch {epoch + 1}/{cfg.max_epochs}", file=sys.stderr, disable=not progress, leave=False, mininterval=1.0)
        for idx in bar:
            batch = {k: v[idx] for k, v in examples.items()}
            loss = model.training_loss(batch, cfg.loss, gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            if progress:
                bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        bar.close()
        train_seconds = time.perf_counter() - t0
        valid = _evaluate(model, data, cfg)
        improved = valid["NDCG@10"] > best_metric
        if improved:
            best_metric, best_epoch, best_valid = valid["NDCG@10"], epoch + 1, valid
            best_state = copy.deepcopy(model.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        stopped = bad_epochs >= cfg.patience
        entry = {
            "epoch": epoch + 1,
            "loss": total / max(count, 1),
            "valid_NDCG@10": valid["NDCG@10"],
            "valid_HR@10": valid["HR@10"],
            "seconds": time.perf_counter() - t0,
            "train_seconds": train_seconds,
        }
        epochs.append(entry)
        log.info(
            "%s epoch %d/%d: loss %.4f valid NDCG@10 %.4f HR@10 %.4f%s (%.1f s, %d examples)",
            model.name, epoch + 1, cfg.max_epochs, entry["loss"], valid["NDCG@10"], valid["HR@10"],
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
        "stopped_early": bool(stopped),
        "resumed_from_epoch": resumed_from,
        "n_examples": int(n_examples),
        "seconds": time.perf_counter() - t_start,
        "config": asdict(cfg),
    }


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
