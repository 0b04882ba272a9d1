"""RecBole's side of ``peer_recbole.py``; runs in RecBole's own venv (numpy < 2), not the project's.

Reads a JSON job (atomic-file folder, SASRec hyper-parameters, threads, seed) from argv[1], builds
RecBole's leave-one-out split (``LS: valid_and_test``, time order, by user: with the interaction's
position as its timestamp this is the project's split), then times one training epoch
(``Trainer._train_epoch``) and one full-sort evaluation of the test users (``Trainer.evaluate``:
forward, history mask, top-k, metrics). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_seed


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    h = job["hparams"]
    t = job["train"]
    config = Config(model="SASRec", dataset=job["dataset"], config_dict={
        "data_path": job["data_path"], "checkpoint_dir": job["checkpoint_dir"],
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": h["max_len"], "hidden_size": h["hidden"], "inner_size": h["inner"],
        "n_layers": h["n_layers"], "n_heads": h["n_heads"], "hidden_dropout_prob": h["dropout"],
        "attn_dropout_prob": h["attn_dropout"], "loss_type": t["loss"].upper(), "train_neg_sample_args": None,
        "learning_rate": t["lr"], "train_batch_size": t["batch_size"], "eval_batch_size": job["eval_batch_size"],
        "epochs": 1, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "NDCG@10", "device": "cpu", "use_gpu": False,
        "show_progress": False, "seed": job["seed"], "reproducibility": True, "worker": 0,
    })
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(job["threads"])
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    data_seconds = time.perf_counter() - t0
    model = SASRec(config, train.dataset).to("cpu")
    trainer = Trainer(config, model)
    t0 = time.perf_counter()
    loss = trainer._train_epoch(train, 0, show_progress=False)
    epoch_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    test_seconds = time.perf_counter() - t0
    print(json.dumps({
        "recbole": __import__("recbole").__version__, "torch": torch.__version__, "numpy": __import__("numpy").__version__,
        "n_users": dataset.user_num - 1, "n_items": dataset.item_num - 1, "n_train_examples": len(train.dataset), "n_targets": len(train.dataset),
        "data_seconds": data_seconds, "epoch_seconds": epoch_seconds, "epoch_loss": float(loss),
        "test_seconds": test_seconds, "test": {k: float(v) for k, v in dict(result).items()},
    }))


if __name__ == "__main__":
    main()
