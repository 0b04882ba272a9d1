"""Embedding throughput: encode every Amazon Beauty title with the offline MiniLM encoder.

Prints wall time and items/s, the encoder's estimated FLOPs (~ 2 x parameters x tokens; given for
all parameters and for the non-embedding ones, which are the ones that do matmuls, over the real
and the padded token counts) and compares the achieved FLOP rate with a float32 matmul GFLOP/s
measured on this machine. Writes the numbers as JSON to ``--out``.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embedding_throughput.py --out results/bench/embedding_throughput.json

CPU time is shared with whatever else runs on the machine; the JSON records the load average
before and after so a slow run can be told apart from a slow encoder. On a loaded machine
``--threads 1`` can be faster than torch's default (one thread per core), because busy cores stall
the other thread at every parallel region.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from llmrecbench.config import configured_mirror
from llmrecbench.io import write_json
from llmrecbench.semantic_ids.embeddings import EMPTY_TEXT_PLACEHOLDER, encode_items, load_encoder, resolve_encoder

MIRROR = configured_mirror() / "amazon-2014-5core" / "beauty" / "item_titles.tsv"


def read_titles(path: Path) -> tuple[list[str], list[str]]:
    asins, titles = [], []
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["asin", "title"]:
            raise SystemExit(f"{path}: expected header 'asin<TAB>title', got {header!r}")
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            asin, _, title = line.partition("\t")
            asins.append(asin)
            titles.append(title)
    return asins, titles


def matmul_gflops(m: int, k: int, n: int, seconds: float = 2.0) -> float:
    a = torch.randn(m, k)
    b = torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    dt = time.perf_counter() - t0
    return 2.0 * m * k * n * reps / dt / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=Path, default=MIRROR)
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--cache-dir", type=Path, default=Path("resources/hf_cache"))
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--limit", type=int, default=0, help="encode only the first N titles (0: all)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--save-embeddings", type=Path, default=None, help="also save the vectors (.npy)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    asins, titles = read_titles(args.items)
    if args.limit:
        asins, titles = asins[: args.limit], titles[: args.limit]
    path, prov = resolve_encoder(args.model, args.cache_dir)
    load_before = os.getloadavg()

    t0 = time.perf_counter()
    model = load_encoder(path, device="cpu")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = encode_items(titles, model, batch_size=args.batch_size, show_progress=True)
    encode_s = time.perf_counter() - t0
    load_after = os.getloadavg()
    if args.save_embeddings:
        args.save_embeddings.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.save_embeddings, emb)

    # token counts, as the encoder sees them (truncated to max_seq_length, with [CLS]/[SEP])
    clean = [t if t.strip() else EMPTY_TEXT_PLACEHOLDER for t in titles]
    tok = model.tokenizer(clean, truncation=True, max_length=model.max_seq_length)
    lengths = np.array([len(ids) for ids in tok["input_ids"]])
    srt = np.sort(lengths)[::-1]  # sentence-transformers batches texts sorted by length
    padded = int(sum(srt[i : i + args.batch_size].max() * len(srt[i : i + args.batch_size]) for i in range(0, len(srt), args.batch_size)))
    n_params = sum(p.numel() for p in model.parameters())
    emb_params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    matmul_params = n_params - emb_params
    tokens = int(lengths.sum())
    flops_all = 2.0 * n_params * tokens
    flops_mm_padded = 2.0 * matmul_params * padded

    gf_square = matmul_gflops(1024, 1024, 1024)
    gf_ffn = matmul_gflops(2048, 384, 1536)  # shape of MiniLM's FFN matmul on a 2k-token batch
    achieved = flops_mm_padded / encode_s / 1e9
    result = {
        "items": len(titles),
        "empty_titles": int(sum(1 for t in titles if not t.strip())),
        "encoder": prov,
        "batch_size": args.batch_size,
        "load_seconds": round(load_s, 3),
        "encode_seconds": round(encode_s, 3),
        "items_per_second": round(len(titles) / encode_s, 1),
        "embedding_shape": list(emb.shape),
        "tokens": tokens,
        "tokens_padded": padded,
        "mean_tokens_per_item": round(float(lengths.mean()), 2),
        "params_total": int(n_params),
        "params_non_embedding": int(matmul_params),
        "flops_estimate_2_params_tokens": flops_all,
        "flops_estimate_matmul_params_padded_tokens": flops_mm_padded,
        "matmul_gflops_1024_square": round(gf_square, 2),
        "matmul_gflops_ffn_shape": round(gf_ffn, 2),
        "achieved_gflops_matmul_params": round(achieved, 2),
        "efficiency_vs_ffn_matmul": round(achieved / gf_ffn, 3),
        "lower_bound_seconds_at_ffn_matmul_rate": round(flops_mm_padded / (gf_ffn * 1e9), 2),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    write_json(result, args.out)
    print(
        f"encoded {len(titles)} items in {encode_s:.1f} s ({len(titles) / encode_s:.0f} items/s), "
        f"{tokens} tokens ({padded} padded), ~{flops_mm_padded / 1e9:.0f} GFLOP matmul work -> "
        f"{achieved:.1f} GFLOP/s vs {gf_ffn:.1f} GFLOP/s FFN-shape matmul ({gf_square:.1f} square); "
        f"load avg {load_before[0]:.1f} -> {load_after[0]:.1f}"
    )


if __name__ == "__main__":
    main()
