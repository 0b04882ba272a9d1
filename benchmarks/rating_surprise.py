"""Rating prediction on P5's 8:1:1 split: our models against scikit-surprise, and the defaults table.

Data: ml-100k (RecBole atomic file) and Amazon 2018 All_Beauty 5-core from the mirror, ingested with
``ingest_canonical`` with the config's options (ml-100k 5-core; All_Beauty variant copies
dropped, no k-core), split with ``make_split(..., "ratio_8_1_1", seed=2022,
indexing="sequential_train_only")``, written as the workflow writes the split files and read
back with ``load_ratings``. Every prediction is clipped to [1, 5] before RMSE / MAE.

Modes:

* ``surprise``: on ml-100k, our ``mf`` (trained by ``llmrecbench.training.fit``, early stopping on
  valid RMSE) and ``bias`` against Surprise's ``SVD`` (biased, library defaults, ``random_state``
  = seed) and ``BaselineOnly`` (ALS defaults), all on the same training ratings. Surprise runs in
  its own virtual environment, ``.bench-venvs/surprise`` under the repository (created on first
  use); if scikit-surprise cannot be installed the script says so in one line and exits 2.
* ``models``: ``global_mean``, ``bias``, ``mf`` and ``mlp`` with the proposed defaults (``DEFAULTS``)
  on both datasets: valid / test RMSE and MAE, best epoch, seconds.
* ``all`` (default): both.

    .venv/bin/python benchmarks/rating_surprise.py --out results/bench/rating_surprise.json
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from pathlib import Path

import numpy as np
import torch

from llmrecbench.config import configured_mirror
from llmrecbench.errors import ConfigError
from llmrecbench.data.pipeline import ingest_canonical, make_split
from llmrecbench.data.ratings import RatingData, load_ratings
from llmrecbench.io import write_json, write_parquet
from llmrecbench.metrics import clip_ratings, rating_metrics
from llmrecbench.models.rating import RatingModel  # noqa: F401  (registers the rating models)
from llmrecbench.models.registry import create_model
from llmrecbench.monitor import Monitor
from llmrecbench.training import TrainConfig, fit

REPO = Path(__file__).resolve().parents[1]
SURPRISE_VENV = REPO / ".bench-venvs" / "surprise"
SURPRISE_REQUIREMENT = "scikit-surprise==1.1.5"

# dataset -> (format, {role: path relative to the mirror}, ingest options); as in config.yaml
DATASETS: dict[str, tuple[str, dict[str, str], dict]] = {
    "ml-100k": ("recbole_atomic", {"inter": "movielens-100k/ml-100k.inter"}, {"k_core": 5, "drop_variant_copies": False}),
    "all_beauty": (
        "amazon_reviews_json",
        {"reviews": "amazon-2018-5core/All_Beauty_5.json.gz"},
        {"k_core": 1, "drop_variant_copies": True},
    ),
}
SPLIT_SEED = 2022

# The defaults proposed for config.yaml: model hyper-parameters and training settings.
TRAIN = {"loss": "mse", "lr": 0.002, "batch_size": 256, "max_epochs": 100, "patience": 10, "weight_decay": 0.0}
DEFAULTS: dict[str, dict] = {
    "global_mean": {"hparams": {}, "train": {}},
    "bias": {"hparams": {"reg_user": 15.0, "reg_item": 10.0, "n_iter": 10}, "train": {}},
    "mf": {"hparams": {"dim": 64, "init_std": 0.05, "reg": 0.1}, "train": TRAIN},
    "mlp": {"hparams": {"dim": 32, "hidden": [64, 32], "dropout": 0.2, "init_std": 0.1, "reg": 0.05}, "train": TRAIN},
}


def default_mirror() -> Path:
    """The ``mirror:`` key of the project's config.yaml, relative to the repository root."""
    try:
        return configured_mirror()
    except ConfigError as exc:
        raise SystemExit(f"{exc}: pass --mirror") from None


def split_dataset(name: str, mirror: Path, workdir: Path) -> dict[str, RatingData]:
    """Ingest -> k-core -> 8:1:1 split -> parquet files -> load_ratings, as the workflow does."""
    fmt, files, options = DATASETS[name]
    ds, _ = ingest_canonical(fmt, {role: mirror / rel for role, rel in files.items()}, subsample_users=None, seed=SPLIT_SEED, **options)
    split = make_split(ds.interactions, "ratio_8_1_1", seed=SPLIT_SEED, indexing="sequential_train_only")
    n_users, n_items = ds.users.height, ds.items.height
    out = {}
    for part in ("train", "valid", "test"):
        path = workdir / name / f"{part}.parquet"
        write_parquet(getattr(split, part), path)
        out[part] = load_ratings(path, n_users, n_items)
    return out


def clipped_metrics(model, data: RatingData) -> dict[str, float]:
    pred = clip_ratings(model.predict(data.users, data.items).numpy())
    return rating_metrics(pred, data.ratings)


def run_model(name: str, data: dict[str, RatingData], seed: int, threads: int, workdir: Path) -> dict:
    spec = DEFAULTS[name]
    train, valid, test = data["train"], data["valid"], data["test"]
    model = create_model(name, train.n_users, train.n_items, seed=seed, **spec["hparams"])
    cfg = TrainConfig(**{**TRAIN, **spec["train"]}, seed=seed, num_threads=threads)
    t0 = time.perf_counter()
    log = fit(
        model, train, cfg, workdir / "ckpt" / f"{name}-{seed}-{train.n}",
        validate=lambda m: clipped_metrics(m, valid), monitor=Monitor("RMSE", "min"), progress=False,
    )
    seconds = time.perf_counter() - t0
    return {
        "valid": clipped_metrics(model, valid),
        "test": clipped_metrics(model, test),
        "best_epoch": log["best_epoch"],
        "epochs_run": len(log["epochs"]),
        "seconds": round(seconds, 2),
        "hparams": model.hparams,
        "train": {**TRAIN, **spec["train"]} if model.trainable else None,
    }


# --- Surprise, in its own virtual environment ------------------------------------------

SURPRISE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from surprise import SVD, BaselineOnly, Dataset, Reader, accuracy
    d = np.load(sys.argv[1])
    seed = int(sys.argv[2])
    lines = "\\n".join(f"{u}\\t{i}\\t{r}" for u, i, r in zip(d["train_u"], d["train_i"], d["train_r"]))
    with open(sys.argv[3], "w") as fh:
        fh.write(lines + "\\n")
    reader = Reader(line_format="user item rating", sep="\\t", rating_scale=(1, 5))
    trainset = Dataset.load_from_file(sys.argv[3], reader=reader).build_full_trainset()
    testset = [(str(u), str(i), float(r)) for u, i, r in zip(d["test_u"], d["test_i"], d["test_r"])]
    out = {}
    for name, algo in (("SVD", SVD(random_state=seed)), ("BaselineOnly", BaselineOnly(verbose=False))):
        t0 = time.perf_counter()
        algo.fit(trainset)
        pred = algo.test(testset)  # Surprise clips to the rating scale by default
        est = np.array([p.est for p in pred])
        true = np.array([p.r_ui for p in pred])
        out[name] = {"RMSE": float(np.sqrt(np.mean((est - true) ** 2))), "MAE": float(np.mean(np.abs(est - true))),
                     "seconds": round(time.perf_counter() - t0, 2),
                     "impossible": int(sum(p.details.get("was_impossible", False) for p in pred))}
    import surprise
    out["version"] = surprise.__version__
    print(json.dumps(out))
    """
)


def surprise_python() -> Path:
    """Python of the Surprise venv, created (and scikit-surprise installed) on first use."""
    py = SURPRISE_VENV / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import surprise"], check=False, capture_output=True).returncode == 0:
        return py
    SURPRISE_VENV.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(SURPRISE_VENV)
    res = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--only-binary=:all:", SURPRISE_REQUIREMENT, "numpy"],
        check=False, capture_output=True, text=True,
    )
    if res.returncode != 0:
        res = subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", SURPRISE_REQUIREMENT, "numpy"], check=False, capture_output=True, text=True
        )
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["pip failed"])[-1]
        print(f"scikit-surprise cannot be installed here ({last}); no Surprise comparison", file=sys.stderr)
        raise SystemExit(2)
    return py


def run_surprise(data: dict[str, RatingData], seed: int, workdir: Path) -> dict:
    py = surprise_python()
    arrays = workdir / "surprise_input.npz"
    tr, te = data["train"], data["test"]
    np.savez(arrays, train_u=tr.users, train_i=tr.items, train_r=tr.ratings, test_u=te.users, test_i=te.items, test_r=te.ratings)
    res = subprocess.run(
        [str(py), "-c", SURPRISE_SCRIPT, str(arrays), str(seed), str(workdir / "surprise_train.tsv")], check=False, capture_output=True, text=True
    )
    if res.returncode != 0:
        raise SystemExit(f"Surprise run failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", type=Path, default=None, help="mirror directory (default: config.yaml's mirror:, relative to the repo)")
    ap.add_argument("--mode", choices=("surprise", "models", "all"), default="all")
    ap.add_argument("--seed", type=int, default=0, help="seed of model initialisation, shuffling and Surprise's SVD")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    mirror = (args.mirror or default_mirror()).resolve()
    results: dict = {"mirror": str(mirror), "split": {"kind": "ratio_8_1_1", "seed": SPLIT_SEED, "k_core": K_CORE}, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="rating-bench-") as tmp:
        work = Path(tmp)
        names = ["ml-100k"] if args.mode == "surprise" else list(DATASETS)
        data = {name: split_dataset(name, mirror, work) for name in names}
        for name, d in data.items():
            print(f"{name}: {d['train'].n_users} users, {d['train'].n_items} items, "
                  f"train/valid/test {d['train'].n}/{d['valid'].n}/{d['test'].n}, train mean {d['train'].global_mean():.4f}")
            results.setdefault("datasets", {})[name] = {p: d[p].n for p in ("train", "valid", "test")}

        if args.mode in ("models", "all"):
            table = results.setdefault("models", {})
            print(f"\n{'dataset':<11} {'model':<12} {'valid RMSE':>10} {'valid MAE':>9} {'test RMSE':>9} {'test MAE':>8} {'best ep':>7} {'s':>6}")
            for name, d in data.items():
                for model in DEFAULTS:
                    r = run_model(model, d, args.seed, args.threads, work)
                    table.setdefault(name, {})[model] = r
                    print(f"{name:<11} {model:<12} {r['valid']['RMSE']:>10.4f} {r['valid']['MAE']:>9.4f} {r['test']['RMSE']:>9.4f} "
                          f"{r['test']['MAE']:>8.4f} {r['best_epoch'] or '-'!s:>7} {r['seconds']:>6.1f}")

        if args.mode in ("surprise", "all"):
            d = data["ml-100k"]
            ours = {m: results.get("models", {}).get("ml-100k", {}).get(m) or run_model(m, d, args.seed, args.threads, work) for m in ("mf", "bias")}
            sp = run_surprise(d, args.seed, work)
            results["surprise"] = {"ours": ours, "surprise": sp}
            print(f"\nml-100k test (clipped to [1, 5]), scikit-surprise {sp['version']}:")
            for label, m in (("ours mf", ours["mf"]["test"]), ("Surprise SVD", sp["SVD"]),
                             ("ours bias", ours["bias"]["test"]), ("Surprise BaselineOnly", sp["BaselineOnly"])):
                print(f"  {label:<22} RMSE {m['RMSE']:.4f}  MAE {m['MAE']:.4f}")
            ratio = {k: ours["mf"]["test"][k] / sp["SVD"][k] for k in ("RMSE", "MAE")}
            results["surprise"]["ratio_mf_over_svd"] = ratio
            print(f"  ratio ours mf / Surprise SVD: RMSE {ratio['RMSE']:.4f}  MAE {ratio['MAE']:.4f}")
    if args.out:
        write_json(results, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
