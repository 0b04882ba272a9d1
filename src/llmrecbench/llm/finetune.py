"""Parameter-efficient fine-tuning of a causal LM on recommendation prompts (LLMRec settings).

Two methods, separate table settings:

* ``lora``   – LoRA (peft ``LoraConfig``; LLMRec: r 8, alpha 16, lr 3e-4, batch 8, 10 epochs);
* ``prefix`` – P-tuning v2 = deep prefix tuning (peft ``PrefixTuningConfig`` without the
  reparametrisation MLP; LLMRec: prefix length 128, lr 2e-2).

Item-ID and semantic-ID representations add new tokens. Their embedding rows are initialised
deterministically (mean of the existing rows plus seeded Gaussian noise at 1/10 of their
per-dimension std) and trained through peft's ``trainable_token_indices``, so an adapter holds
only the LoRA matrices and the new rows; the embedding matrix is tied to the LM head in
SmolLM2, so the new rows are also the new output classes.

Three objectives (``FinetuneConfig.objective``): ``lm``, token cross-entropy over the target
(item text / tokens + EOS) only; ``yes_no_bce``, BCE of P(YES) (:func:`yes_no_loss`); and
``blank_infilling``, RecSysLLM's entity-aware blank infilling (:mod:`llmrecbench.llm.recsysllm`),
whose intra-position table is trained beside the adapter and saved in its folder. Each epoch ends
with a checkpoint (adapter weights, optimizer, scheduler, step) so a killed job resumes at the
next epoch; the data order of epoch ``e`` depends only on ``seed`` and ``e``, so a resumed run
equals an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from llmrecbench.errors import ConfigError, InputError
from llmrecbench.llm.generate import CausalLM
from llmrecbench.llm.loading import load_model, model_record, read_manifest
from llmrecbench.provenance import config_hash

log = logging.getLogger("llmrecbench")

ADAPTER_META = "llm_adapter.json"
OBJECTIVES = ("lm", "yes_no_bce", "blank_infilling")


@dataclass
class FinetuneConfig:
    method: str = "lora"  # lora | prefix
    epochs: int = 10
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    max_length: int = 384  # prompt + target tokens; the prompt is cut from the left beyond it
    max_train_examples: int | None = None  # seeded subsample of the training prompts (small runs)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    prefix_length: int = 128
    objective: str = "lm"  # lm | yes_no_bce (see yes_no_loss) | blank_infilling (llm.recsysllm)
    # blank_infilling only (RecSysLLM): blank levels, share of prompt tokens blanked, whole
    # entities as units, 2-D positions + intra embedding, the largest intra-position id
    blank_levels: list[str] = field(default_factory=lambda: ["entity", "sentence", "document"])
    blank_ratio: float = 0.15
    entity_mask: bool = True
    two_d_positions: bool = True
    max_intra_position: int = 64
    seed: int = 42

    @classmethod
    def from_spec(cls, spec: dict, seed: int) -> "FinetuneConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(spec) - known - {"seed"})
        if unknown:
            raise ConfigError(f"llm finetune settings: unknown keys {unknown}; known: {sorted(known)}")
        cfg = cls(**{k: v for k, v in spec.items() if k in known and k != "seed"}, seed=seed)
        if cfg.method not in ("lora", "prefix"):
            raise ConfigError(f"llm finetune method {cfg.method!r} is not lora or prefix")
        if cfg.objective not in OBJECTIVES:
            raise ConfigError(f"llm finetune objective {cfg.objective!r} is not one of {OBJECTIVES}")
        if cfg.objective == "blank_infilling":
            from llmrecbench.llm.recsysllm.blanks import LEVELS

            if cfg.method != "lora":
                raise ConfigError("llm finetune objective blank_infilling trains a LoRA adapter: use method lora")
            bad = [lv for lv in cfg.blank_levels if lv not in LEVELS]
            if bad or not cfg.blank_levels:
                raise ConfigError(f"llm finetune blank_levels {cfg.blank_levels!r}: each must be one of {LEVELS}")
        return cfg


# --------------------------------------------------------------------------- model assembly


def init_item_rows(model, ids: Sequence[int], n_rows: int, seed: int) -> None:
    """Grow the embedding matrix to ``n_rows`` if needed and set rows ``ids`` deterministically."""
    emb = model.get_input_embeddings().weight
    if emb.shape[0] < n_rows:
        model.resize_token_embeddings(n_rows, mean_resizing=False)
        emb = model.get_input_embeddings().weight
    idx = torch.as_tensor(list(ids), dtype=torch.long)
    with torch.no_grad():
        base = emb[: int(idx.min())].float()
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn((len(idx), emb.shape[1]), generator=gen)
        emb[idx.to(emb.device)] = (base.mean(0) + 0.1 * base.std(0) * noise).to(emb.dtype).to(emb.device)
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != emb.data_ptr():
            out.weight[idx.to(emb.device)] = emb[idx.to(emb.device)]


def add_item_tokens(model, tok, new_tokens: Sequence[str], seed: int) -> list[int]:
    """Add ``new_tokens`` to the tokenizer and initialise their rows deterministically; return their ids."""
    if not new_tokens:
        return []
    vocab = tok.get_vocab()
    missing = [t for t in new_tokens if t not in vocab]
    if missing:
        tok.add_tokens(list(missing))
    ids = [int(i) for i in tok.convert_tokens_to_ids(list(new_tokens))]
    init_item_rows(model, ids, max(len(tok), max(ids) + 1), seed)
    return ids


def wrap_peft(model, cfg: FinetuneConfig, new_token_ids: Sequence[int]):
    from peft import LoraConfig, PrefixTuningConfig, get_peft_model

    if cfg.method == "lora":
        pc = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.lora_target_modules),
            task_type="CAUSAL_LM",
            trainable_token_indices={"embed_tokens": list(new_token_ids)} if new_token_ids else None,
        )
    else:
        if new_token_ids:
            raise ConfigError("prefix tuning trains no embeddings: use it with item_repr text only")
        pc = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=cfg.prefix_length, prefix_projection=False)
    return get_peft_model(model, pc)


def build_trainable(model_dir: str | Path, new_tokens: Sequence[str], cfg: FinetuneConfig, device: str = "cpu"):
    torch.manual_seed(cfg.seed)
    model, tok, manifest = load_model(model_dir, device=device)
    ids = add_item_tokens(model, tok, new_tokens, cfg.seed)
    peft_model = wrap_peft(model, cfg, ids)
    return peft_model, tok, manifest, ids


def load_adapter(model_dir: str | Path, adapter_dir: str | Path, device: str = "cpu"):
    """(CausalLM in eval mode, adapter metadata) from a base model folder and a saved adapter."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    meta_path = adapter_dir / ADAPTER_META
    if not meta_path.exists():
        raise InputError(meta_path, "not an adapter written by llmrecbench.llm.finetune")
    meta = json.loads(meta_path.read_text())
    model, tok, _ = load_model(model_dir, device=device, tokenizer_dir=adapter_dir)
    if meta["new_token_ids"]:
        # rows identical to training (same seed); the adapter then overrides the trained ones
        ids = meta["new_token_ids"]
        init_item_rows(model, ids, max(len(tok), max(ids) + 1), int(meta["init_seed"]))
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    peft_model.to(device).eval()
    if meta["config"].get("objective") == "blank_infilling":
        from llmrecbench.llm.recsysllm.model import load_blank_lm

        return load_blank_lm(peft_model, tok, meta, adapter_dir, device), meta
    return CausalLM(peft_model, tok, chat=meta.get("chat", True), device=device), meta


# --------------------------------------------------------------------------- training


def encode_examples(lm: CausalLM, records: Sequence[dict], max_length: int) -> list[tuple[list[int], list[int]]]:
    out = []
    for rec in records:
        p, t = lm.prompt_ids(rec["prompt"]), lm.target_ids(rec["target"])
        keep = max(1, max_length - len(t))
        out.append((p[-keep:], t))
    return out


def batch_tensors(lm: CausalLM, batch: Sequence[tuple[list[int], list[int]]]):
    seqs = [p + t for p, t in batch]
    ids, mask = lm.left_pad(seqs)
    labels = torch.full_like(ids, -100)
    width = ids.shape[1]
    for r, (p, t) in enumerate(batch):
        labels[r, width - len(t) :] = torch.as_tensor(t, dtype=torch.long)
    return ids, mask, labels


def sequence_loss(lm: CausalLM, ids, mask, labels) -> torch.Tensor:
    """Mean token cross-entropy over the targets (left padding puts them at the end)."""
    keep = int((labels != -100).sum(dim=1).max()) + 1
    logits, _, _ = lm.forward(ids, mask, logits_to_keep=keep)
    logits = logits[:, :-1, :].float()
    tgt = labels[:, -keep + 1 :]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)


def encode_labelled(lm: CausalLM, records: Sequence[dict], max_length: int) -> list[tuple[list[int], int]]:
    """(prompt ids cut from the left to ``max_length``, 0/1 label) of yes/no-labelled records."""
    out = []
    for rec in records:
        if rec.get("label") not in (0, 1):
            raise InputError("training prompts", f"objective yes_no_bce needs a 0/1 `label` in every record, got {rec.get('label')!r}")
        out.append((lm.prompt_ids(rec["prompt"])[-max_length:], int(rec["label"])))
    return out


def yes_no_loss(lm: CausalLM, batch: Sequence[tuple[list[int], int]], device, yes_no: tuple[list[int], list[int]] | None = None) -> torch.Tensor:
    """L = -(1/B) * sum_k y_k log p_k + (1 - y_k) log(1 - p_k), p_k = P(YES) = sigmoid(log P(yes) -
    log P(no)) at the answer position (the last prompt token; RecBench's CTR fine-tuning).
    ``yes_no``: the tokenizer's yes / no first-token ids (looked up here when not given)."""
    from llmrecbench.llm.readers import yes_logit_margin, yes_no_token_ids

    yes_ids, no_ids = yes_no or yes_no_token_ids(lm.tok)
    ids, mask = lm.left_pad([p for p, _ in batch])
    logits, _, _ = lm.forward(ids.to(device), mask.to(device), logits_to_keep=1)
    margin = yes_logit_margin(logits[:, -1, :], yes_ids, no_ids)
    labels = torch.tensor([y for _, y in batch], dtype=margin.dtype, device=margin.device)
    return torch.nn.functional.binary_cross_entropy_with_logits(margin, labels)


def _trainable_state(model) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fingerprint(cfg: FinetuneConfig, manifest: dict, records: Sequence[dict], new_tokens: Sequence[str],
                entity_strings: Sequence[str] = ()) -> str:
    """Hash of everything that shapes training: a changed config or data never resumes stale state."""
    return config_hash(
        {
            "cfg": asdict(cfg),
            "model": model_record(manifest),
            "n_records": len(records),
            "data": config_hash([(r["prompt"], r["target"]) for r in records]),
            "new_tokens": config_hash(list(new_tokens)),
            **({"entities": config_hash(list(entity_strings))} if entity_strings else {}),
        }
    )[:16]


def subsample(records: list[dict], n: int | None, seed: int) -> list[dict]:
    if not n or n >= len(records):
        return records
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(records), generator=gen)[:n].sort().values.tolist()
    return [records[i] for i in idx]


def finetune(
    model_dir: str | Path,
    records: list[dict],
    new_tokens: Sequence[str],
    cfg: FinetuneConfig,
    adapter_dir: str | Path,
    checkpoint_root: str | Path,
    device: str = "cpu",
    extra_meta: dict | None = None,
    entity_strings: Sequence[str] = (),
) -> dict:
    """Train an adapter on prompt records; write it to ``adapter_dir``; return the training log.

    ``entity_strings``: the catalog's item renderings (blank infilling's entities, with user ids)."""
    if not records:
        raise InputError("training prompts", "no training records")
    records = subsample(records, cfg.max_train_examples, cfg.seed)
    manifest = read_manifest(model_dir)
    blank = cfg.objective == "blank_infilling"
    if blank:
        from llmrecbench.llm.recsysllm import training as blank_training
        from llmrecbench.llm.recsysllm.layout import SPECIAL_TOKENS
        from llmrecbench.llm.recsysllm.model import blank_lm

        new_tokens = list(new_tokens) + list(SPECIAL_TOKENS)
    ckpt_dir = Path(checkpoint_root) / fingerprint(cfg, manifest, records, new_tokens, entity_strings if blank else ())
    model, tok, manifest, new_ids = build_trainable(model_dir, new_tokens, cfg, device)
    chat = manifest.get("chat_template", True)
    bce = cfg.objective == "yes_no_bce"
    if blank:
        pool = blank_training.build_pool(tok, records, entity_strings)
        lm = blank_lm(model, tok, pool, cfg, chat=chat, device=device)
        examples = blank_training.encode_sources(lm, records, cfg.max_length)
    else:
        lm = CausalLM(model, tok, chat=chat, device=device)
        examples = encode_labelled(lm, records, cfg.max_length) if bce else encode_examples(lm, records, cfg.max_length)
    yes_no = None
    if bce:
        from llmrecbench.llm.readers import yes_no_token_ids

        yes_no = yes_no_token_ids(tok)
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    extra = lm.intra if blank and lm.intra is not None else None  # trained beside the adapter
    params = [p for p in model.parameters() if p.requires_grad] + (list(extra.parameters()) if extra is not None else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * max(0.0, (total_steps - s) / max(1, total_steps - warmup))
    )
    history: list[dict] = []
    start_epoch = 0
    latest = ckpt_dir / "latest.pt"
    if latest.exists():
        from peft import set_peft_model_state_dict

        state = torch.load(latest, map_location="cpu", weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        if extra is not None:
            extra.load_state_dict(state["extra"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = state["history"]
        start_epoch = state["epoch"] + 1
        log.info("resuming from %s after epoch %d", latest, state["epoch"])
    n_trainable = sum(p.numel() for p in params)
    log.info(
        "%s: %d examples, %d steps/epoch, %d epochs, %d trainable parameters",
        cfg.method, len(examples), steps_per_epoch, cfg.epochs, n_trainable,
    )
    t_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        if extra is not None:
            extra.train()
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout stream of this epoch
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        t0, total, n_tok = time.perf_counter(), 0.0, 0
        for s in range(steps_per_epoch):
            batch = [examples[i] for i in order[s * cfg.batch_size : (s + 1) * cfg.batch_size].tolist()]
            if bce:
                loss, k = yes_no_loss(lm, batch, device, yes_no), len(batch)
            elif blank:
                idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size].tolist()
                seqs = [
                    blank_training.make_example(examples[i], i, epoch, lm, seed=cfg.seed, levels=cfg.blank_levels,
                                                ratio=cfg.blank_ratio, entity_mask=cfg.entity_mask)
                    for i in idx
                ]
                loss, k = blank_training.blank_loss(lm, seqs, device)
            else:
                ids, mask, labels = batch_tensors(lm, batch)
                ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
                loss = sequence_loss(lm, ids, mask, labels)
                k = int((labels[:, 1:] != -100).sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            total += loss.item() * k
            n_tok += k
        entry = {"epoch": epoch, "loss": total / max(1, n_tok), "seconds": time.perf_counter() - t0, "lr": sched.get_last_lr()[0]}
        history.append(entry)
        log.info("epoch %d: loss %.4f (%.1f s)", epoch, entry["loss"], entry["seconds"])
        _save_checkpoint(
            latest,
            {
                "epoch": epoch,
                "adapter": _trainable_state(model),
                "extra": None if extra is None else {k: v.detach().cpu().clone() for k, v in extra.state_dict().items()},
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "history": history,
            },
        )
    model.eval()
    if extra is not None:
        extra.eval()
    meta = {
        "method": cfg.method,
        "config": asdict(cfg),
        "new_tokens": len(new_tokens),
        "new_token_ids": list(new_ids),
        "init_seed": cfg.seed,
        "chat": lm.chat,
        "base_model": model_record(manifest),
        "n_train_examples": len(examples),
        # after the seeded subsample: how many training prompts each template contributed
        "train_examples_per_template": dict(Counter(r.get("template", "?") for r in records)),
        "n_trainable_parameters": n_trainable,
        "train_fingerprint": ckpt_dir.name,
        **(extra_meta or {}),
    }
    if blank:
        from llmrecbench.llm.recsysllm.model import blank_files

        meta["entity_pool_size"] = len(lm.pool)
        save_adapter(model, tok, meta, adapter_dir, blank_files(lm))
    else:
        save_adapter(model, tok, meta, adapter_dir)
    return {
        "history": history,
        "total_seconds": sum(h["seconds"] for h in history),
        "wall_seconds_this_run": time.perf_counter() - t_start,
        "resumed_from_epoch": start_epoch - 1 if start_epoch else None,
        **meta,
    }


def save_adapter(model, tok, meta: dict, adapter_dir: str | Path, extra_files=None) -> None:
    """Write the adapter folder under a temporary name and rename it into place.
    ``extra_files``: ``{name: write(path)}`` of further files that belong to the adapter."""
    adapter_dir = Path(adapter_dir)
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{adapter_dir.name}.", dir=adapter_dir.parent))
    try:
        model.save_pretrained(str(tmp), save_embedding_layers=False)
        tok.save_pretrained(str(tmp))
        (tmp / ADAPTER_META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
        for name, write in (extra_files or {}).items():
            write(tmp / name)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's model card template embeds nothing we need
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        os.replace(tmp, adapter_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
