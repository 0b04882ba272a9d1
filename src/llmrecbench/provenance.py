"""What every result records about how it was made: code, packages, machine, config, inputs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

PACKAGES = (
    "llmrecbench", "torch", "numpy", "polars", "pyarrow", "snakemake",
    "transformers", "peft", "sentence-transformers", "faiss-cpu", "gguf",
)


def config_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (sorted keys): equal configs, equal hashes."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def code_revision(repo: str | Path | None = None) -> dict[str, Any]:
    """Git commit of the project and whether it had uncommitted changes (None outside git).

    ``repo`` defaults to the checkout this library is installed from (editable install), so the
    revision is right even when Snakemake runs with ``-d`` in a directory outside the clone.
    """
    repo = repo if repo is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return {"commit": rev, "dirty": bool(dirty)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "device": "cpu",
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["device"] = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    return info


def file_digests(paths: Iterable[str | Path]) -> dict[str, str]:
    """sha256 of each file (streamed), keyed by path as given."""
    out = {}
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[str(p)] = h.hexdigest()
    return out


def record(config_subset: dict[str, Any], inputs: Iterable[str | Path] = (), **extra: Any) -> dict[str, Any]:
    """One provenance record: config subset (+ hash), input digests, code, packages, machine."""
    return {
        "config": config_subset,
        "config_sha256": config_hash(config_subset),
        "inputs": file_digests(inputs),
        "code": code_revision(),
        "packages": package_versions(),
        "machine": machine(),
        **extra,
    }


def snakemake_metadata(workdir: str | Path, path: str) -> dict | None:
    """Snakemake's own record of the job that made ``path`` (``.snakemake/metadata/``), or None."""
    key = base64.urlsafe_b64encode(str(path).encode()).decode()
    rec = Path(workdir) / ".snakemake" / "metadata" / key
    if not rec.exists():
        return None
    return json.loads(rec.read_text())


def rule_chain(inputs: Iterable[str | Path], rule: str, workdir: str | Path = ".") -> list[str]:
    """The rules that made a job's inputs, upstream first, then ``rule`` itself: read from
    Snakemake's metadata of every input and, recursively, of their inputs (what really ran, as
    ``llmrecbench provenance`` prints it), each rule named once."""
    order: list[str] = []
    seen: set[str] = set()

    def walk(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        meta = snakemake_metadata(workdir, path)
        if meta is None:
            return
        for inp in meta.get("input", []):
            walk(inp)
        if meta["rule"] not in order:
            order.append(meta["rule"])

    for p in inputs:
        walk(str(p))
    return [r for r in order if r != rule] + [rule]
