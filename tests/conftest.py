"""Shared fixtures: where the offline mirror of real data lives, and GPU skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _mirror() -> Path:
    env = os.environ.get("LLMRECBENCH_MIRROR")
    return Path(env).resolve() if env else (REPO.parent / "shared" / "mirror").resolve()


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The mirror of real public data (``../shared/mirror``; LLMRECBENCH_MIRROR overrides)."""
    path = _mirror()
    if not (path / "amazon-2014-5core").is_dir():
        pytest.skip(f"no data mirror at {path} (set LLMRECBENCH_MIRROR)")
    return path


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
