"""Glue between Snakemake ``script:`` rules and the library.

Every script under ``scripts/`` runs its one library call inside :func:`rule_context`, which
sends logging, warnings and progress bars to the rule's ``log:`` file, sets the thread count
from the rule's ``threads:``, and turns a :class:`~llmrecbench.errors.BenchError` into one
clear line on the terminal (the traceback stays in the log) and a non-zero exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

from llmrecbench.errors import BenchError

LOGGER_NAME = "llmrecbench"


def limit_threads(threads: int) -> None:
    """Hold torch to the rule's ``threads`` without importing it: a rule that never needs torch
    (split, prompts, tables) must not pay its ~1.5 s import. If torch is loaded, set it now; if not,
    the OpenMP/MKL variables are read when it is (the same intra-op thread count either way)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    # deterministic cuBLAS on GPU (read when cuBLAS starts; no effect on CPU)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def keep_freed_memory() -> bool:
    """glibc: serve large allocations from the heap and keep freed memory for reuse
    (``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD, 2 GiB)``). A full-softmax batch of
    SASRec allocates and frees about 1 GiB of logits and gradients; by default each block is a
    fresh mmap, page-faulted and zeroed by the kernel, which is where the rules' system time went
    (30 SASRec batches on Beauty: 8.9 s -> 2.2 s of system time, 21.0 s -> 18.9 s wall). The
    process's peak memory is unchanged; it is just not handed back between batches. Returns
    whether the allocator took the settings (False off glibc)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_max = -1, -4
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def rule_context(smk: Any) -> Iterator[logging.Logger]:
    """Run a rule's body with logging to ``smk.log[0]`` and one-line errors."""
    log_path = Path(smk.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "w", buffering=1)
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [handler]
    real_stderr = sys.stderr
    sys.stderr = log_file  # tqdm/rich progress and library warnings land in the log
    threads = int(getattr(smk, "threads", 1) or 1)
    limit_threads(threads)
    keep_freed_memory()
    rule = getattr(smk, "rule", "?")
    logger.info("rule %s: threads=%d wildcards=%s", rule, threads, dict(smk.wildcards.items()))
    start = time.perf_counter()
    try:
        yield logger
    except BenchError as exc:
        logger.error("%s\n%s", exc, traceback.format_exc())
        sys.stderr = real_stderr
        print(f"Error in rule {rule}: {exc}", file=real_stderr)
        log_file.close()
        sys.exit(1)
    except BaseException:
        logger.error("unexpected failure\n%s", traceback.format_exc())
        sys.stderr = real_stderr
        log_file.close()
        raise
    else:
        logger.info("rule %s done in %.1f s", rule, time.perf_counter() - start)
        sys.stderr = real_stderr
        log_file.close()
