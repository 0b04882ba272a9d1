"""Raw files: copied from a mirror or downloaded, and always checked before they are used.

A file is first written to a temporary name beside its destination, checked (non-empty, sha256
when one is expected) and only then renamed into place, so a failed or mismatched fetch never
leaves a file under the final name.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

from llmrecbench.errors import ChecksumError, InputError
from llmrecbench.io import atomic_path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_file(dest: Path, *, url: str | None, sha256: str | None, mirror_file: Path | None, timeout: float = 60.0) -> dict:
    """Copy ``mirror_file`` (when it exists) or download ``url`` to ``dest``, verified.

    The mirror wins when ``mirror_file`` exists; otherwise ``url`` is streamed with urllib
    (``timeout`` seconds per blocking operation; ``file://`` works too). Returns provenance:
    ``{"source": "mirror"|"url", "origin", "sha256" (actual), "bytes"}``. Raises InputError
    (nothing to fetch, copy/download failure, empty file) or ChecksumError (digest differs
    from ``sha256``, compared case-insensitively); on any error ``dest`` is not created or
    replaced and the temporary file is removed.
    """
    dest = Path(dest)
    if mirror_file is not None and Path(mirror_file).is_file():
        source, origin = "mirror", str(mirror_file)
    elif url:
        source, origin = "url", url
    else:
        where = f"mirror file {mirror_file} is missing and " if mirror_file is not None else ""
        raise InputError(dest, f"{where}no upstream URL is configured for it")
    with atomic_path(dest) as tmp:
        if source == "mirror":
            try:
                shutil.copyfile(origin, tmp)
            except OSError as exc:
                raise InputError(dest, f"copy of mirror file {origin} failed: {exc}") from exc
        else:
            try:
                with urllib.request.urlopen(origin, timeout=timeout) as resp, open(tmp, "wb") as out:
                    shutil.copyfileobj(resp, out, length=1 << 20)
            except OSError as exc:  # URLError, HTTPError and socket errors are OSErrors
                raise InputError(dest, f"download of {origin} failed: {exc}") from exc
        size = tmp.stat().st_size
        if size == 0:
            raise InputError(dest, f"empty file from {origin}")
        actual = sha256_file(tmp)
        if sha256 and actual != sha256.lower():
            raise ChecksumError(dest, f"sha256 mismatch for {origin}: expected {sha256}, got {actual}; file removed")
    return {"source": source, "origin": origin, "sha256": actual, "bytes": size}
