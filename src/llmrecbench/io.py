"""Atomic writers: every output appears whole or not at all.

Each writer writes to a temporary file in the destination directory and renames it over the
destination (``os.replace`` is atomic on POSIX within one filesystem), so a killed job never
leaves a half-written file behind under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import polars as pl


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it to ``dest``, else delete it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_json(obj: Any, dest: str | Path) -> None:
    """Write ``obj`` as indented, key-sorted JSON (byte-stable for equal input), atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_text(text: str, dest: str | Path) -> None:
    """Write ``text`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_parquet(df: pl.DataFrame, dest: str | Path) -> None:
    """Write a polars frame to parquet atomically, without statistics that embed timestamps."""
    with atomic_path(dest) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=False)


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in configs and metrics
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
