"""Direct recommendation on full Amazon Beauty (2014, 5-core): BPR-MF, BPR-MLP, SimpleX and popularity.

Protocol (P5 / LLMRec Table 5): leave-one-out per user; each user's test item is ranked among
100 candidates, itself plus 99 items drawn uniformly (seeded) from those the user never
interacted with (:mod:`llmrecbench.data.candidates`); validation likewise with the second-to-last
item and independent negatives. Ties are broken by a seeded shuffle
(:mod:`llmrecbench.metrics.candidates`). Models train on the training items only, with early
stopping on valid NDCG@10 over the valid candidates (:func:`llmrecbench.training.fit`). Prints
test HR@1/5/10 and NDCG@5/10 per model and, with ``--out``, writes them with the per-epoch log
as JSON.

    .venv/bin/python benchmarks/direct_beauty.py --out results/bench/direct_beauty.json
    .venv/bin/python benchmarks/direct_beauty.py --models simplex --set simplex.margin=0.8 --set simplex.lr=0.002

The mirror directory defaults to the ``mirror:`` key of the project's config.yaml, resolved
against the repository root (``--mirror`` overrides).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from llmrecbench.config import configured_mirror
from llmrecbench.errors import ConfigError
from llmrecbench.data.candidates import sample_candidates
from llmrecbench.data.pipeline import ingest_canonical, make_split
from llmrecbench.data.sequences import LeaveOneOutSequences, load_leave_one_out
from llmrecbench.io import write_json, write_parquet
from llmrecbench.metrics import candidate_metrics
from llmrecbench.models.direct import CandidateRanker
from llmrecbench.models.registry import create_model
from llmrecbench.training import Monitor, TrainConfig, fit

REPO = Path(__file__).resolve().parents[1]
BEAUTY = Path("amazon-2014-5core") / "beauty"
KS = (1, 5, 10)
REPORTED = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")

# The defaults proposed for config.yaml: model hyper-parameters and training settings.
DEFAULTS: dict[str, dict] = {
    "bpr_mf": {
        "hparams": {"dim": 64, "reg": 1e-4, "item_bias": True, "init_std": 0.1},
        "train": {"loss": "bpr", "lr": 1e-3, "batch_size": 1024, "max_epochs": 60, "patience": 5},
    },
    "bpr_mlp": {
        "hparams": {"dim": 64, "hidden": [128, 64], "dropout": 0.1, "reg": 0.0, "init_std": 0.1},
        "train": {"loss": "bpr", "lr": 1e-3, "batch_size": 1024, "max_epochs": 60, "patience": 5},
    },
    "simplex": {
        "hparams": {
            "dim": 64, "gamma": 0.5, "max_history": 50, "margin": 0.9, "neg_weight": 150.0, "n_negatives": 100,
            "dropout": 0.1, "reg": 0.0, "exclude_positive": True, "init_std": 0.1,
        },
        "train": {"loss": "ccl", "lr": 1e-3, "batch_size": 512, "max_epochs": 60, "patience": 5},
    },
}
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def default_mirror() -> Path:
    """The ``mirror:`` of config.yaml, relative paths taken from the repository root."""
    try:
        return configured_mirror()
    except ConfigError as exc:
        raise SystemExit(f"{exc}: pass --mirror") from None


def load_beauty(mirror: Path, tmp: Path) -> LeaveOneOutSequences:
    """Ingest (5-core, compact ids) -> leave-one-out split -> per-user sequences."""
    files = {"user_sequence": mirror / BEAUTY / "user_sequence.txt", "item_titles": mirror / BEAUTY / "item_titles.tsv"}
    ds, _ = ingest_canonical("user_sequence", files, k_core=5, subsample_users=None, seed=2022)
    split = make_split(ds.interactions, "loo", seed=2022, indexing="sequential_train_only")
    for name, frame in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        write_parquet(frame, tmp / f"{name}.parquet")
    return load_leave_one_out(tmp, int(ds.items["item_id"].max()) + 1)


def as_arrays(df) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users = df["user_id"].to_numpy().astype(np.int64)
    cands = np.asarray(df["candidates"].to_list(), dtype=np.int64)
    return users, cands, df["target_item_id"].to_numpy().astype(np.int64)


def evaluate(model: CandidateRanker, arrays, seed: int, batch: int = 4096) -> dict[str, float]:
    users, cands, targets = arrays
    scores = np.concatenate([model.score_candidates(users[s : s + batch], cands[s : s + batch]).numpy() for s in range(0, users.size, batch)])
    return candidate_metrics(scores, cands, targets, seed, KS)


def popularity(data: LeaveOneOutSequences, arrays, seed: int) -> dict[str, float]:
    """score(u, i) = number of training interactions of item i."""
    counts = np.bincount(np.concatenate(data.train), minlength=data.n_items).astype(np.float64)
    _, cands, targets = arrays
    return candidate_metrics(counts[cands], cands, targets, seed, KS)


def parse_overrides(items: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for item in items:
        key, _, value = item.partition("=")
        model, _, field = key.partition(".")
        if not field or model not in DEFAULTS:
            raise SystemExit(f"--set expects MODEL.KEY=VALUE with MODEL in {', '.join(DEFAULTS)}, got {item!r}")
        out.setdefault(model, {})[field] = yaml.safe_load(value)
    return out


def fmt(m: dict[str, float]) -> str:
    return " ".join(f"{k} {m[k]:.4f}" for k in REPORTED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=None, help="mirror directory (default: config.yaml's mirror)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--models", nargs="+", default=list(DEFAULTS), choices=list(DEFAULTS))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="MODEL.KEY=VALUE",
                    help="override a hyper-parameter or TrainConfig field, e.g. bpr_mf.dim=128 (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (weights, shuffling, negatives)")
    ap.add_argument("--candidate-seed", type=int, default=2022, help="seed of the candidate lists and the tie-break")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    mirror = (args.mirror or default_mirror()).resolve()
    overrides = parse_overrides(args.overrides)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = load_beauty(mirror, Path(tmp))
    t_data = time.perf_counter() - t0
    t1 = time.perf_counter()
    valid = as_arrays(sample_candidates(data, "valid", 99, args.candidate_seed))
    test = as_arrays(sample_candidates(data, "test", 99, args.candidate_seed))
    t_cands = time.perf_counter() - t1
    print(f"data: {data.n_users} users, {data.n_items} items ({t_data:.1f} s); candidates valid+test {t_cands:.1f} s", flush=True)
    results: dict = {"mirror": str(mirror), "n_users": data.n_users, "n_items": data.n_items, "candidate_seed": args.candidate_seed,
                     "seed": args.seed, "n_candidates": int(test[1].shape[1]), "models": {}}

    pop = popularity(data, test, args.candidate_seed)
    print(f"{'pop':8s} test {fmt(pop)}", flush=True)
    results["models"]["pop"] = {"test": pop, "valid": popularity(data, valid, args.candidate_seed)}

    for name in args.models:
        hparams, train = dict(DEFAULTS[name]["hparams"]), dict(DEFAULTS[name]["train"])
        for key, value in overrides.get(name, {}).items():
            (train if key in TRAIN_FIELDS else hparams)[key] = value
        cfg = TrainConfig(**train, seed=args.seed, num_threads=args.threads)
        t_model = time.perf_counter()
        model = create_model(name, int(data.user_ids.max()) + 1, data.n_items, seed=args.seed, **hparams)
        with tempfile.TemporaryDirectory() as ckpt:
            log = fit(model, data, cfg, Path(ckpt), validate=lambda m: evaluate(m, valid, args.candidate_seed),
                      monitor=Monitor("NDCG@10", "max"), progress=args.progress)
        m = evaluate(model, test, args.candidate_seed)
        wall = time.perf_counter() - t_model
        epoch_s = [e["train_seconds"] for e in log["epochs"]]
        print(f"{name:8s} test {fmt(m)} | valid NDCG@10 {log['best_valid']['NDCG@10']:.4f} | best epoch {log['best_epoch']} of "
              f"{len(log['epochs'])} | {np.mean(epoch_s):.1f} s/epoch train | {wall:.0f} s", flush=True)
        results["models"][name] = {
            "test": m, "best_valid": log["best_valid"], "best_epoch": log["best_epoch"], "epochs_run": len(log["epochs"]),
            "seconds_per_epoch": float(np.mean(epoch_s)), "wall_seconds": wall, "hparams": hparams,
            "train": dataclasses.asdict(cfg), "epochs": log["epochs"],
        }
        if args.out:
            write_json(results, args.out)
    results["total_seconds"] = time.perf_counter() - t0
    if args.out:
        write_json(results, args.out)
    print(f"total {results['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
