"""Residual-quantised VAE (RQ-VAE) for semantic IDs, as in TIGER and RecBench.

Inputs are first z-scored per feature with the training data's mean and standard deviation
(``standardize=True``, stored in the model): sentence embeddings are unit vectors whose per-feature
variance is ~1/d, and without this the reconstruction MSE is so small next to the quantisation loss
that the encoder collapses to a constant (every item gets the same code; seen on Beauty).

An MLP encoder maps a (standardised) item embedding ``x`` (e.g. 384-d MiniLM) to a latent ``z``
(``latent_dim``). ``levels`` codebooks of ``codebook_size`` vectors quantise it residually::

    r_0 = z;   c_l = argmin_k ||r_l - e_{l,k}||;   r_{l+1} = r_l - sg(e_{l,c_l})
    z_q = sum_l e_{l,c_l};   z_hat = z + sg(z_q - z)        (straight-through estimator)

and a mirrored MLP decoder reconstructs ``x_hat`` from ``z_hat``. The loss is::

    MSE(x_hat, x) + sum_l [ MSE(e_{l,c_l}, sg(r_l)) + beta * MSE(r_l, sg(e_{l,c_l})) ]

(codebook + commitment terms, ``beta = 0.25`` as in VQ-VAE / TIGER). Each codebook is initialised
by k-means on the residuals of the (initial) encoder's latents over the training data, level by
level. Every ``dead_code_every`` optimiser steps, codes that were not selected since the last
check are re-seeded from randomly chosen residuals of the data at that level.

Item IDs are the per-level code indices ``[N, levels]``; :func:`resolve_collisions` appends one
more level that numbers items sharing the same code tuple (TIGER), so every item's ID is unique.

Determinism: all randomness (weight init, k-means, shuffling, re-seeding) comes from ``cfg.seed``
through local generators (the global torch RNG is left untouched), and training runs on
``cfg.threads`` CPU threads (default 1, which is also the fastest for this small MLP on a shared
machine), so with the same seed, data and torch build the codes are byte-identical on CPU.

Cost: the default config (4 x 256 codes, 40 epochs, batch 256) trains on the 12,101 x 384 Beauty
MiniLM vectors in ~40 s on one loaded CPU core (collision rate ~1.7% before resolution, all
codebooks fully used).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from llmrecbench.errors import ConfigError


@dataclass
class RQVAEConfig:
    levels: int = 4
    codebook_size: int = 256
    latent_dim: int = 32
    hidden: tuple[int, ...] = (512, 256, 128)
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 0.25
    seed: int = 0
    dead_code_every: int = 200  # optimiser steps between dead-code checks; 0 disables
    kmeans_iters: int = 25
    kmeans_init_samples: int = 0  # 0: k-means on all rows, else on a seeded sample of this many
    standardize: bool = True  # z-score every input feature (training-data mean/std) before encoding
    threads: int = 1  # torch CPU threads while training/assigning (0: leave as is); fixes float order

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        for name in ("levels", "codebook_size", "latent_dim", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"rqvae.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.lr <= 0 or self.beta < 0 or self.dead_code_every < 0 or self.kmeans_iters < 0 or self.threads < 0:
            raise ConfigError("rqvae: lr must be > 0 and beta, dead_code_every, kmeans_iters, threads >= 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RQVAEConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"rqvae: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    def __init__(self, input_dim: int, cfg: RQVAEConfig):
        super().__init__()
        self.input_dim = int(input_dim)
        self.cfg = cfg
        self.encoder = _mlp([self.input_dim, *cfg.hidden, cfg.latent_dim])
        self.decoder = _mlp([cfg.latent_dim, *reversed(cfg.hidden), self.input_dim])
        self.codebooks = nn.Parameter(torch.randn(cfg.levels, cfg.codebook_size, cfg.latent_dim) * 0.01)
        # input standardisation (identity unless cfg.standardize; set from the training data)
        self.register_buffer("x_mean", torch.zeros(self.input_dim))
        self.register_buffer("x_std", torch.ones(self.input_dim))

    def set_standardization(self, x: torch.Tensor) -> None:
        if self.cfg.standardize:
            self.x_mean.copy_(x.mean(0))
            self.x_std.copy_(x.std(0).clamp(min=1e-6))

    def _std(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.x_mean) / self.x_std

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder output mapped back to the input space."""
        z_hat = self.quantize(self.encoder(self._std(x)))[0]
        return self.decoder(z_hat) * self.x_std + self.x_mean

    @staticmethod
    def _nearest(r: torch.Tensor, book: torch.Tensor) -> torch.Tensor:
        d = (r * r).sum(1, keepdim=True) - 2.0 * r @ book.T + (book * book).sum(1).unsqueeze(0)
        return d.argmin(dim=1)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Return ``(z_hat, codes [N, L], vq_loss, residuals per level)``."""
        r = z
        z_q = torch.zeros_like(z)
        codes = []
        residuals = []
        vq_loss = z.new_zeros(())
        for level in range(self.cfg.levels):
            book = self.codebooks[level]
            idx = self._nearest(r.detach(), book.detach())
            e = book[idx]
            vq_loss = vq_loss + F.mse_loss(e, r.detach()) + self.cfg.beta * F.mse_loss(r, e.detach())
            residuals.append(r.detach())
            codes.append(idx)
            z_q = z_q + e
            r = r - e.detach()
        z_hat = z + (z_q - z).detach()
        return z_hat, torch.stack(codes, 1), vq_loss, residuals

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        """Losses on raw inputs ``x``; ``recon`` is the MSE in the (standardised) model space."""
        xs = self._std(x)
        z = self.encoder(xs)
        z_hat, codes, vq_loss, residuals = self.quantize(z)
        x_hat = self.decoder(z_hat)
        recon = F.mse_loss(x_hat, xs)
        return {"loss": recon + vq_loss, "recon": recon, "vq": vq_loss, "codes": codes, "residuals": residuals}

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize(self.encoder(self._std(x)))[1]


# ---- k-means -------------------------------------------------------------------------------------
def kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator) -> torch.Tensor:
    """Seeded k-means (k-means++ init, Lloyd iterations, empty clusters re-seeded from the points
    farthest from their centroid). Returns ``[k, d]`` centroids; with ``n < k`` points the missing
    centroids are copies of points plus tiny noise."""
    n, d = x.shape
    if n == 0:
        return torch.randn(k, d, generator=gen) * 0.01
    if n <= k:
        extra = x[torch.randint(0, n, (k - n,), generator=gen)] if k > n else x[:0]
        cent = torch.cat([x, extra + 1e-4 * torch.randn(extra.shape, generator=gen)], 0)
        return cent.clone()
    # k-means++ (greedy-free, one candidate per step)
    cent = torch.empty(k, d, dtype=x.dtype)
    cent[0] = x[torch.randint(0, n, (1,), generator=gen)]
    dist = ((x - cent[0]) ** 2).sum(1)
    for j in range(1, k):
        total = dist.sum()
        if total <= 0:
            i = int(torch.randint(0, n, (1,), generator=gen))
        else:
            i = int(torch.multinomial(dist / total, 1, generator=gen))
        cent[j] = x[i]
        dist = torch.minimum(dist, ((x - cent[j]) ** 2).sum(1))
    for _ in range(iters):
        assign = RQVAE._nearest(x, cent)
        sums = torch.zeros_like(cent).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        new = sums / counts.clamp(min=1).unsqueeze(1)
        if empty.any():
            err = ((x - new[assign]) ** 2).sum(1)
            far = torch.argsort(err, descending=True, stable=True)[: int(empty.sum())]
            new[empty] = x[far]
        if torch.equal(new, cent):
            break
        cent = new
    return cent


# ---- training ------------------------------------------------------------------------------------
def _usage_stats(codes: np.ndarray, k: int) -> dict[str, list[float]]:
    util, ppl = [], []
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=k).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        util.append(float((counts > 0).sum() / k))
        ppl.append(float(math.exp(-(p * np.log(p)).sum())))
    return {"utilisation": util, "perplexity": ppl}


def codes_report(codes: np.ndarray, codebook_size: int) -> dict[str, Any]:
    """Collision and codebook-usage statistics of ``[N, L]`` codes (before collision resolution).

    * ``collision_rate``: share of items whose full code tuple is shared with another item;
    * ``max_collision_group``: size of the largest group of items sharing one tuple (1 = none);
    * ``unique_ids``: number of distinct tuples;
    * ``utilisation[l]``: used codes / ``codebook_size`` at level ``l``;
    * ``perplexity[l]``: ``exp(entropy)`` of the code distribution at level ``l``
      (1 .. ``codebook_size``; equals the number of codes when usage is uniform).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty [N, L] array, got shape {codes.shape}")
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    group = counts[inverse.reshape(-1)]
    return {
        "n_items": int(codes.shape[0]),
        "levels": int(codes.shape[1]),
        "codebook_size": int(codebook_size),
        "unique_ids": int(len(counts)),
        "collision_rate": float((group > 1).mean()),
        "n_colliding_items": int((group > 1).sum()),
        "max_collision_group": int(counts.max()),
        **_usage_stats(codes, codebook_size),
    }


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Temporarily run torch CPU ops on ``n`` threads (``0``: unchanged)."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_rqvae(vectors: np.ndarray, cfg: RQVAEConfig, progress: bool = True) -> tuple[RQVAE, dict[str, Any]]:
    """Train an RQ-VAE on ``vectors [N, d]`` (float). Returns ``(model in eval mode, report)``.

    The report holds the config, timings, per-epoch losses (``recon`` in the standardised model
    space), dead codes re-seeded, and the final full-data reconstruction MSE in the input space,
    relative reconstruction error (``||x - x_hat||^2 / ||x - mean(x)||^2``; 1.0 means no better than
    predicting the mean), quantisation loss, and :func:`codes_report` of the final codes (collision
    rate before resolution, per-level utilisation and perplexity).
    """
    x_np = np.ascontiguousarray(vectors, dtype=np.float32)
    if x_np.ndim != 2 or x_np.shape[0] < 2:
        raise ValueError(f"vectors must be [N >= 2, d], got shape {x_np.shape}")
    if not np.isfinite(x_np).all():
        raise ValueError("vectors contain NaN or inf")
    with _torch_threads(cfg.threads):
        return _train(torch.from_numpy(x_np), cfg, progress)


def _train(x: torch.Tensor, cfg: RQVAEConfig, progress: bool) -> tuple[RQVAE, dict[str, Any]]:
    t0 = time.perf_counter()
    n, d = x.shape
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = RQVAE(d, cfg)
    model.set_standardization(x)

    # k-means initialisation of every codebook on the residuals of the initial encoder
    with torch.no_grad():
        sample = x
        if cfg.kmeans_init_samples and cfg.kmeans_init_samples < n:
            sample = x[torch.randperm(n, generator=gen)[: cfg.kmeans_init_samples]]
        r = model.encoder(model._std(sample))
        for level in range(cfg.levels):
            cent = kmeans(r, cfg.codebook_size, cfg.kmeans_iters, gen)
            model.codebooks.data[level] = cent
            r = r - cent[RQVAE._nearest(r, cent)]
    t_init = time.perf_counter() - t0

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    usage = torch.zeros(cfg.levels, cfg.codebook_size, dtype=torch.long)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    history: list[dict[str, float]] = []
    reseeded = 0
    step = 0
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, desc="rq-vae", unit="epoch")
        except ImportError:  # pragma: no cover
            bar = None
    model.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, "recon": 0.0, "vq": 0.0}
        last_epoch = epoch == cfg.epochs - 1
        for b in range(steps_per_epoch):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            out = model(x[idx])
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            step += 1
            for level in range(cfg.levels):
                usage[level] += torch.bincount(out["codes"][:, level], minlength=cfg.codebook_size)
            for key in sums:
                sums[key] += float(out[key].detach()) * len(idx)
            if cfg.dead_code_every and step % cfg.dead_code_every == 0 and not last_epoch:
                reseeded += _reseed_dead_codes(model, x, usage, gen)
                usage.zero_()
        history.append({k: v / n for k, v in sums.items()})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.4g}", recon=f"{history[-1]['recon']:.3g}")
    if bar is not None:
        bar.close()
    model.eval()
    train_seconds = time.perf_counter() - t0

    with torch.no_grad():
        sq_err, vq_sum = 0.0, 0.0
        codes_list = []
        for start in range(0, n, 4096):
            xb = x[start : start + 4096]
            out = model(xb)
            vq_sum += float(out["vq"]) * len(xb)
            codes_list.append(out["codes"])
            sq_err += float(((model.reconstruct(xb) - xb) ** 2).sum())
        codes = torch.cat(codes_list).numpy().astype(np.int64)
        total_var = float(((x - x.mean(0)) ** 2).sum())
    report = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "n_items": int(n),
        "input_dim": int(d),
        "steps": step,
        "kmeans_init_seconds": round(t_init, 3),
        "train_seconds": round(train_seconds, 3),
        "torch_threads": torch.get_num_threads(),
        "dead_codes_reseeded": int(reseeded),
        "history": history,
        "reconstruction_mse": sq_err / (n * d),
        "relative_reconstruction_error": sq_err / total_var if total_var > 0 else float("nan"),
        "quantisation_loss": vq_sum / n,
        "codes": codes_report(codes, cfg.codebook_size),
    }
    return model, report


@torch.no_grad()
def _reseed_dead_codes(model: RQVAE, x: torch.Tensor, usage: torch.Tensor, gen: torch.Generator, sample: int = 4096) -> int:
    """Replace codes unused since the last check by random data residuals at their level."""
    dead = usage == 0
    if not dead.any():
        return 0
    n = x.shape[0]
    idx = torch.randperm(n, generator=gen)[: min(sample, n)]
    residuals = model.quantize(model.encoder(model._std(x[idx])))[3]
    total = 0
    for level in range(model.cfg.levels):
        which = dead[level].nonzero().flatten()
        if len(which) == 0:
            continue
        r = residuals[level]
        if len(which) <= len(r):
            pick = torch.randperm(len(r), generator=gen)[: len(which)]
        else:
            pick = torch.randint(0, len(r), (len(which),), generator=gen)
        model.codebooks.data[level, which] = r[pick]
        total += len(which)
    return total


def assign_codes(model: RQVAE, vectors: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Semantic-ID codes ``int64 [N, levels]`` of ``vectors`` under a trained model."""
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    if x.ndim != 2 or x.shape[1] != model.input_dim:
        raise ValueError(f"vectors must be [N, {model.input_dim}], got shape {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        with _torch_threads(model.cfg.threads):
            out = [model.encode_codes(x[s : s + batch_size]) for s in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros((0, model.cfg.levels), np.int64)


def resolve_collisions(codes: np.ndarray, codebook_size: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Append a level that makes every item's semantic ID unique (TIGER).

    Items sharing the same ``L``-code tuple get 0, 1, 2, ... in row order; items with a unique
    tuple get 0. Returns ``(codes [N, L + 1] int64, report)`` where the report is
    :func:`codes_report` of the input (statistics *before* resolving; ``codebook_size`` defaults
    to ``max code + 1``) plus ``extra_level_size`` (max appended value + 1, the vocabulary the extra
    level needs) and ``extra_level_fits`` (whether that is ``<= codebook_size``).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError(f"codes must be a non-empty [N, L] array, got shape {codes.shape}")
    codes = codes.astype(np.int64)
    k = int(codes.max()) + 1 if codebook_size is None else int(codebook_size)
    report = codes_report(codes, k)
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")  # groups contiguous, row order within a group
    sorted_groups = inverse[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    extra = np.empty(len(order), dtype=np.int64)
    extra[order] = np.arange(len(order)) - group_start
    out = np.concatenate([codes, extra[:, None]], axis=1)
    report["extra_level_size"] = int(extra.max()) + 1
    report["extra_level_fits"] = bool(report["extra_level_size"] <= k)
    return out, report


# ---- persistence ---------------------------------------------------------------------------------
def save_rqvae(model: RQVAE, dest: str | Path) -> None:
    """Save weights + config atomically (``torch.save``)."""
    from llmrecbench.io import atomic_path

    cfg = asdict(model.cfg)
    cfg["hidden"] = list(cfg["hidden"])
    with atomic_path(dest) as tmp:
        torch.save({"input_dim": model.input_dim, "config": cfg, "state_dict": model.state_dict()}, tmp)


def load_rqvae(path: str | Path) -> RQVAE:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = RQVAE(blob["input_dim"], RQVAEConfig(**blob["config"]))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model
