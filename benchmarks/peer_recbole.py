"""Side-by-side peer benchmark: RecBole 1.2.1's SASRec against ours, one epoch each, same split.

Data: Amazon 2014 Beauty 5-core (``user_sequence.txt`` in the mirror), leave-one-out per user (last
item test, second-to-last valid, the rest train). RecBole gets the same sequences as an atomic
``.inter`` file whose timestamp is the item's position, and its ``LS: valid_and_test`` split in
time order then is the same split. Both run SASRec with config.yaml's ``models.sasrec`` settings
(2 layers, 2 heads, hidden 64, inner 256, dropout 0.5, max length 50, full-softmax CE, Adam lr
0.002, batch 256), on the CPU with ``--threads`` threads, one after the other in this one run.

Printed, each as RecBole / ours:
- one training epoch (seconds and epochs/s). RecBole trains on every prefix of each training
  sequence as its own example (one target each); ours trains each sequence once, with a target at
  every position of its last ``max_len`` items (as SASRec's authors' code does), so a sequence
  longer than ``max_len`` + 1 gives ours fewer targets. Both counts are printed. Ours also trains a
  second epoch, printed as its steady state (the first includes the allocator's warm-up).
- one full-sort evaluation of all test users (forward, history mask, ranks / top-k, metrics;
  ours also stores the top-20 lists).

and where our epoch's time goes against the GEMM bound: the output layer's logits (every
training target against all items) are 6·T·d·N FLOPs per epoch forward + backward (T targets, d
hidden, N items), timed at this machine's float32 matmul rate for that shape, as
``benchmarks/embedding_throughput.py`` measures it.

RecBole needs numpy < 2, so it lives in its own venv (``.venv-recbole``, made on first use from
``PINS``; torch is the same CPU build as the project's).

    .venv/bin/python benchmarks/peer_recbole.py [--threads 2] [--max-users N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from embedding_throughput import matmul_gflops
from seqrec_beauty import MIRROR, load_user_sequence

from llmrecbench.evaluation import evaluate_full_ranking
from llmrecbench.models import create_model
from llmrecbench.pipelines.seqrec import validation
from llmrecbench.tasks.seqrec import SeqRec
from llmrecbench.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-recbole"
PINS = ("torch==2.13.0", "numpy==1.26.4", "pandas==2.2.3", "recbole==1.2.1")
CHILD = Path(__file__).with_name("peer_recbole_child.py")


def recbole_python(venv: Path) -> Path:
    """The venv's python, after creating the venv and installing ``PINS`` if it lacks them."""
    python, stamp = venv / "bin" / "python", venv / ".pins"
    if not (python.exists() and stamp.exists() and stamp.read_text() == "\n".join(PINS)):
        print(f"making {venv} ({', '.join(PINS)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True)
        stamp.write_text("\n".join(PINS))
    return python


def write_atomic_inter(path: Path, data) -> None:
    """One row per interaction: user, item, position in the user's sequence as the timestamp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, train, v, t in zip(data.user_ids, data.train, data.valid_target, data.test_target):
            for pos, item in enumerate([*train.tolist(), int(v), int(t)]):
                fh.write(f"{u}\t{item}\t{pos}\n")


def run_recbole(python: Path, data, spec: dict, threads: int, seed: int, work: Path) -> dict:
    write_atomic_inter(work / "beauty" / "beauty.inter", data)
    job = {
        "dataset": "beauty", "data_path": str(work), "checkpoint_dir": str(work / "saved"),
        "hparams": spec["hparams"], "train": spec["train"], "eval_batch_size": 1024, "threads": threads, "seed": seed,
    }
    (work / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    out = subprocess.run([str(python), str(CHILD), str(work / "job.json")], check=True, capture_output=True, text=True, env=env,
                         cwd=work)  # RecBole writes log/ and log_tensorboard/ into its working directory
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ours(data, spec: dict, threads: int, seed: int, work: Path) -> dict:
    torch.set_num_threads(threads)
    # two epochs: the first (timed against RecBole's one) includes the allocator's warm-up, the second is steady state
    cfg = TrainConfig(**{**spec["train"], "max_epochs": 2, "patience": 2, "seed": seed, "num_threads": threads})
    model = create_model("sasrec", data.n_items, seed=seed, **spec["hparams"])
    examples = model.training_examples(data.train)
    log = fit(model, data.train, cfg, work / "ours", validate=validation(data, {"mask_history": True, "batch_size": 1024}, seed),
              monitor=SeqRec.monitor, progress=False)
    t0 = time.perf_counter()
    res = evaluate_full_ranking(model.score, data.histories("test"), data.targets("test"), data.n_items, ks=(10,),
                                batch_size=1024, topk=20, warmup=False)
    test_seconds = time.perf_counter() - t0
    return {
        "n_train_examples": int(examples["target"].shape[0]), "n_targets": int((examples["target"] != 0).sum()),
        "epoch_seconds": log["epochs"][0]["train_seconds"], "epoch2_seconds": log["epochs"][1]["train_seconds"],
        "test_seconds": test_seconds,
        "test": {"hit@10": res.metrics["HR@10"], "ndcg@10": res.metrics["NDCG@10"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-users", type=int, default=None, help="first N users only (a quick check, not the benchmark)")
    ap.add_argument("--venv", type=Path, default=VENV)
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = ap.parse_args()
    spec = yaml.safe_load((ROOT / "config.yaml").read_text())["models"]["sasrec"]
    python = recbole_python(args.venv)
    data = load_user_sequence(MIRROR, args.max_users)
    print(f"Beauty: {data.n_users} users, {data.n_items} items; SASRec {spec['hparams']} {spec['train']}; "
          f"{args.threads} threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        recbole = run_recbole(python, data, spec, args.threads, args.seed, Path(tmp))
        ours = run_ours(data, spec, args.threads, args.seed, Path(tmp))
    d, n = spec["hparams"]["hidden"], data.n_items
    gemm_rate = matmul_gflops(spec["train"]["batch_size"] * 8, d, n) * 1e9  # a batch's targets x d x all items
    gemm_seconds = 6.0 * ours["n_targets"] * d * n / gemm_rate
    encoder_share = recbole["n_train_examples"] / ours["n_train_examples"]  # sequences through the encoder per epoch
    for name, r in (("RecBole " + recbole["recbole"], recbole), ("ours", ours)):
        print(f"  {name:13s} epoch {r['epoch_seconds']:8.1f} s ({1 / r['epoch_seconds']:.4f} epochs/s, "
              f"{r['n_train_examples']} examples, {r['n_targets']} targets) | full-sort test {r['test_seconds']:6.2f} s | "
              f"test HR@10 {r['test']['hit@10']:.4f} NDCG@10 {r['test']['ndcg@10']:.4f}")
    print(f"  ours, second epoch (steady state): {ours['epoch2_seconds']:.1f} s; after 2 epochs test HR@10 "
          f"{ours['test']['hit@10']:.4f} NDCG@10 {ours['test']['ndcg@10']:.4f}")
    print(f"  ratio RecBole / ours: training epoch {recbole['epoch_seconds'] / ours['epoch_seconds']:.1f}x "
          f"(first epochs; {recbole['epoch_seconds'] / ours['epoch2_seconds']:.1f}x against our second), "
          f"full-sort test {recbole['test_seconds'] / ours['test_seconds']:.2f}x")
    print(f"  our epoch against the GEMM bound: output-layer logits 6*T*d*N = {6.0 * ours['n_targets'] * d * n / 1e12:.2f} "
          f"TFLOP (T = {ours['n_targets']} targets), {gemm_rate / 1e9:.1f} GFLOP/s at that shape -> {gemm_seconds:.1f} s, "
          f"{gemm_seconds / ours['epoch2_seconds']:.0%} of our steady-state epoch; the rest is the encoder, softmax, Adam and "
          f"batching. RecBole does the same output-layer work but runs the encoder over {encoder_share:.1f}x as many "
          f"sequences (one per prefix)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"recbole": recbole, "ours": ours, "gemm_seconds": gemm_seconds,
                                        "gemm_gflops": gemm_rate / 1e9, "threads": args.threads, "seed": args.seed}, indent=2))


if __name__ == "__main__":
    main()
