"""Train and test every conventional sequential recommender on full Amazon Beauty (2014, 5-core).

Protocol: leave-one-out per user (last item test, second-to-last valid, the rest train), full
ranking over all items, items in the user's input history masked. Items are numbered by first
appearance in ``user_sequence.txt``. Prints test HR@10 / NDCG@10 and wall time per model and
writes them as JSON to ``--out``.

    .venv/bin/python benchmarks/seqrec_beauty.py --out results/bench/seqrec_beauty.json
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.evaluation import evaluate_full_ranking
from llmrecbench.config import configured_mirror
from llmrecbench.io import write_json
from llmrecbench.pipelines.seqrec import validation
from llmrecbench.tasks.seqrec import SeqRec
from llmrecbench.models import create_model
from llmrecbench.training import TrainConfig, fit

MIRROR = configured_mirror() / "amazon-2014-5core" / "beauty" / "user_sequence.txt"

# The defaults proposed for config.yaml: model hyper-parameters and training settings.
DEFAULTS: dict[str, dict] = {
    "pop": {"hparams": {}, "train": {}},
    "sasrec": {
        "hparams": {"max_len": 50, "hidden": 64, "n_layers": 2, "n_heads": 2, "inner": 256, "dropout": 0.5, "attn_dropout": 0.5},
        "train": {"loss": "ce", "lr": 2e-3, "batch_size": 256, "max_epochs": 12, "patience": 2},
    },
    "gru4rec": {
        "hparams": {"max_len": 50, "embedding": 64, "hidden": 128, "n_layers": 1, "dropout": 0.3},
        "train": {"loss": "ce", "lr": 2e-3, "batch_size": 256, "max_epochs": 10, "patience": 2},
    },
    "bert4rec": {
        "hparams": {"max_len": 50, "hidden": 64, "n_layers": 2, "n_heads": 2, "inner": 256, "dropout": 0.2, "attn_dropout": 0.2, "mask_prob": 0.2},
        "train": {"loss": "ce", "lr": 2e-3, "batch_size": 256, "max_epochs": 20, "patience": 3},
    },
    "caser": {
        "hparams": {"L": 5, "hidden": 64, "n_v": 4, "n_h": 16, "dropout": 0.5},
        "train": {"loss": "ce", "lr": 2e-3, "batch_size": 512, "max_epochs": 10, "patience": 2},
    },
}


def load_user_sequence(path: Path, max_users: int | None = None) -> LeaveOneOutSequences:
    item_index: dict[str, int] = {}
    users, seqs = [], []
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 4:  # need >= 3 items: train, valid, test
                continue
            users.append(len(users))
            seqs.append(np.array([item_index.setdefault(a, len(item_index)) for a in parts[1:]], dtype=np.int64))
            if max_users and len(users) >= max_users:
                break
    return LeaveOneOutSequences(
        user_ids=np.array(users, dtype=np.int64),
        train=[s[:-2] for s in seqs],
        valid_target=np.array([s[-2] for s in seqs], dtype=np.int64),
        test_target=np.array([s[-1] for s in seqs], dtype=np.int64),
        n_items=len(item_index),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--models", nargs="+", default=list(DEFAULTS))
    ap.add_argument("--data", type=Path, default=MIRROR)
    ap.add_argument("--max-users", type=int, default=None)
    ap.add_argument("--max-epochs", type=int, default=None, help="override every model's max_epochs")
    ap.add_argument("--loss", default=None, help="override every model's loss")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    t0 = time.perf_counter()
    data = load_user_sequence(args.data, args.max_users)
    n_inter = sum(len(s) + 2 for s in data.train)
    print(f"data: {data.n_users} users, {data.n_items} items, {n_inter} interactions ({time.perf_counter() - t0:.1f} s)")
    results: dict = {"dataset": str(args.data), "n_users": data.n_users, "n_items": data.n_items, "models": {}}
    for name in args.models:
        spec = DEFAULTS[name]
        train = dict(spec["train"], seed=args.seed, num_threads=args.threads)
        if args.max_epochs is not None and name != "pop":
            train["max_epochs"] = args.max_epochs
        if args.loss is not None and name != "pop":
            train["loss"] = args.loss
        cfg = TrainConfig(**train)
        t_model = time.perf_counter()
        model = create_model(name, data.n_items, seed=args.seed, **spec["hparams"])
        with tempfile.TemporaryDirectory() as ckpt:
            train_log = fit(
                model, data.train, cfg, Path(ckpt), validate=validation(data, {"mask_history": True, "batch_size": 1024}, cfg.seed),
                monitor=SeqRec.monitor, progress=not args.no_progress,
            )
        res = evaluate_full_ranking(model.score, data.histories("test"), data.targets("test"), data.n_items, ks=(5, 10, 20))
        wall = time.perf_counter() - t_model
        m = res.metrics
        print(f"{name:9s} test HR@10 {m['HR@10']:.4f} NDCG@10 {m['NDCG@10']:.4f} | best epoch {train_log['best_epoch']} "
              f"of {len(train_log['epochs'])} | {wall:.0f} s", flush=True)
        results["models"][name] = {
            "test": m,
            "best_valid": train_log["best_valid"],
            "best_epoch": train_log["best_epoch"],
            "epochs_run": len(train_log["epochs"]),
            "wall_seconds": wall,
            "hparams": spec["hparams"],
            "train": {k: v for k, v in vars(cfg).items()},
            "epochs": train_log["epochs"],
        }
        write_json(results, args.out)
    results["total_seconds"] = time.perf_counter() - t0
    write_json(results, args.out)
    print(f"total {results['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
