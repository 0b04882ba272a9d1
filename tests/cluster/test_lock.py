"""Two Snakemake runs in one directory: the second is refused with Snakemake's lock message while
the first runs, and the first finishes with valid outputs (no SLURM needed).

The first run is frozen (SIGSTOP to its process group) once it holds its lock and has started a
job, so that it is certainly still running while the second run starts (a Snakemake start-up
takes seconds, the slice's first jobs not much longer); it is resumed (SIGCONT) afterwards and
must finish as if nothing had happened."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.integration.dag import REPO, snakemake, snakemake_cmd

pytestmark = pytest.mark.integration

SPLIT = "results/beauty_slice/splits/loo"
TARGET = f"{SPLIT}/train.parquet"
LOCK_MESSAGE = "Directory cannot be locked"


@pytest.fixture
def mirror(request) -> Path:
    """The shared mirror: the ``mirror_dir`` fixture where conftest provides it."""
    try:
        path = Path(request.getfixturevalue("mirror_dir"))
    except pytest.FixtureLookupError:
        path = Path(os.environ.get("LLMRECBENCH_MIRROR") or REPO.parent / "shared" / "mirror")
    if not (path / "amazon-2014-5core/beauty/user_sequence.txt").exists():
        pytest.skip(f"mirror with Amazon 2014 Beauty not found at {path}")
    if importlib.util.find_spec("llmrecbench.data.download") is None:
        pytest.skip("data layer (llmrecbench.data.download) not present yet")
    return path


def _wait_for_lock(work: Path, first: subprocess.Popen, timeout: float) -> None:
    """Until the first run holds its lock and has started a job."""
    locks = work / ".snakemake/locks"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if first.poll() is not None:
            raise AssertionError(f"first run ended (rc {first.returncode}) before it was seen locked")
        if locks.is_dir() and any(locks.iterdir()) and (work / "results/logs").exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"first run did not lock {work} within {timeout} s")


def test_second_run_in_same_directory_is_refused(tmp_path, mirror):
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    first_log = tmp_path / "first.log"
    with open(first_log, "w") as log:
        first = subprocess.Popen(
            snakemake_cmd(work, TARGET, mirror=mirror), cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    frozen = False
    try:
        _wait_for_lock(work, first, timeout=120)
        os.killpg(first.pid, signal.SIGSTOP)  # Snakemake and the job it runs
        frozen = True
        first_still_running = first.poll() is None
        second = snakemake(work, TARGET, mirror=mirror, check=False)
        os.killpg(first.pid, signal.SIGCONT)
        frozen = False
        first_rc = first.wait(timeout=600)
    finally:
        if first.poll() is None:
            if frozen:
                os.killpg(first.pid, signal.SIGCONT)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    out = second.stdout + second.stderr
    assert second.returncode != 0 and LOCK_MESSAGE in out, out[-3000:]
    assert "--unlock" in out  # Snakemake tells the user how to clear a stale lock
    assert first_still_running, "the first run finished before the second was refused: the check proves nothing"

    # the first run was not disturbed: it succeeded, released its lock, and its outputs are valid
    assert first_rc == 0, first_log.read_text()[-4000:]
    locks = work / ".snakemake/locks"
    assert not (locks.exists() and any(locks.iterdir())), list(locks.iterdir())
    frames = {name: pl.read_parquet(work / SPLIT / f"{name}.parquet") for name in ("train", "valid", "test", "item_index")}
    assert all(frame.height > 0 for frame in frames.values())
    assert frames["valid"].height == frames["test"].height == 1500
    rerun = snakemake(work, TARGET, "-n", mirror=mirror)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
