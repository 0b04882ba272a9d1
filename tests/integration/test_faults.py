"""Faults a user meets: a training job killed with SIGKILL resumes from its last checkpoint and
ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.dag import REPO, snakemake, snakemake_cmd

pytestmark = pytest.mark.integration

CELL = "results/beauty_slice/seqrec/sasrec/seed1"
RESUME_CONFIG = (str(REPO / "tests/integration/resume.yaml"),)


def _wait_for(pattern_dir: Path, glob: str, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(pattern_dir.glob(glob)) if pattern_dir.exists() else []
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"nothing matched {pattern_dir}/{glob} within {timeout} s")


def test_sigkill_mid_training_resumes_to_identical_result(tmp_path, mirror_dir):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    target = f"{CELL}/metrics.json"
    # prepare data first so the kill lands inside training
    snakemake(killed, "results/beauty_slice/splits/loo/train.parquet", mirror=mirror_dir)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        snakemake_cmd(killed, target, mirror=mirror_dir, configfiles=RESUME_CONFIG),
        cwd=killed,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # the first epoch's checkpoint exists: kill the whole job (snakemake and the script) at once
        _wait_for(killed / CELL / "checkpoints", "*/last.pt", timeout=300)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (killed / target).exists()
    # a killed Snakemake leaves its lock behind: the next run says so and names the remedy
    refused = snakemake(killed, target, mirror=mirror_dir, configfiles=RESUME_CONFIG, check=False)
    assert refused.returncode != 0 and "--unlock" in refused.stdout + refused.stderr
    snakemake(killed, "--unlock", mirror=mirror_dir, configfiles=RESUME_CONFIG)
    snakemake(killed, target, "--rerun-incomplete", mirror=mirror_dir, configfiles=RESUME_CONFIG)
    log = json.loads((killed / CELL / "train_log.json").read_text())
    assert log["resumed_from_epoch"] >= 1, log
    snakemake(clean, target, mirror=mirror_dir, configfiles=RESUME_CONFIG)
    assert (killed / target).read_bytes() == (clean / target).read_bytes()
    assert (killed / CELL / "topk.parquet").read_bytes() == (clean / CELL / "topk.parquet").read_bytes()
