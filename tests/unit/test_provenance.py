"""Provenance records: stable config hashes, code revision independent of the working dir."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from llmrecbench.provenance import code_revision, config_hash, record

REPO = Path(__file__).resolve().parents[2]


def test_config_hash_ignores_key_order_and_sees_values():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_code_revision_is_the_checkout_even_from_another_directory(tmp_path):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    old = os.getcwd()
    os.chdir(tmp_path)  # e.g. snakemake -d /elsewhere
    try:
        assert code_revision()["commit"] == head
    finally:
        os.chdir(old)
    assert code_revision(tmp_path) == {"commit": None, "dirty": None}


def test_record_hashes_inputs(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"abc")
    rec = record({"k": 1}, [f], seed=3)
    assert rec["inputs"][str(f)] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert rec["seed"] == 3 and rec["config_sha256"] == config_hash({"k": 1})
    assert rec["packages"]["torch"] is not None
