"""LLMRecBench: large language models as recommenders, benchmarked beside conventional ones."""

import os

# OpenMP threads that spin while waiting make concurrent Snakemake jobs on a small machine
# 10-45x slower (measured on 2 cores); let them sleep. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
