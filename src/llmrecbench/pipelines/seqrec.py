"""Train and evaluate one cell of the sequential-recommendation task (declared in ``llmrecbench.tasks.seqrec``).

Sequential recommendation (P5 / LLMRec Table 4): next item after the user's history.

Leave-one-out split, full ranking over all items with the input history masked; HR@k, NDCG@k
(k = 1, 5, 10, 20) and MRR; early stopping on valid NDCG@10. Models of the ``sequential``
family; LLM settings through ``llmrecbench.llm`` (prompt builder and answer reader).

A cell is one (dataset, model, seed). Its JSON carries its own identity (so the table never
parses paths), the protocol that produced it, the metrics, and a pointer to its provenance
manifest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from llmrecbench.errors import ConfigError, InputError
from llmrecbench.data.attributes import title_word_attributes
from llmrecbench.data.indexing import ItemNumbering
from llmrecbench.data.sequences import LeaveOneOutSequences, load_split_files
from llmrecbench.evaluation import evaluate_full_ranking, evaluate_generated_lists
from llmrecbench.models import create_model, get_model_class
from llmrecbench.models.base import SequentialRecommender
from llmrecbench.pipelines.common import count_rows, train_config
from llmrecbench.provenance import config_hash
from llmrecbench.tables.cells import make_cell
from llmrecbench.tasks.seqrec import SeqRec
from llmrecbench.training import fit


def load_sequences(inputs: dict[str, str]) -> LeaveOneOutSequences:
    """Leave-one-out sequences from a job's declared ``train``/``valid``/``test``/``item_table`` files."""
    return load_split_files(inputs["train"], inputs["valid"], inputs["test"], count_rows(inputs["item_table"]))


def row_numbering(spec: dict, inputs: dict[str, str], n_items: int) -> ItemNumbering:
    """The numbering a row's model sees: its block's ``indexing:``, else the split's configured
    default (``splits.indexing``, recorded in the split's ``stats.json``), read from the declared
    ``item_index.parquet``."""
    scheme = spec.get("indexing") or json.loads(Path(inputs["split_stats"]).read_text())["indexing"]
    return ItemNumbering.read(inputs["item_index"], scheme, n_items)


def leakage_probe_of(inputs: dict[str, str], scheme: str) -> float | None:
    """The split's leakage probe (share of test items numbered max(history) + 1) under ``scheme``."""
    probe = json.loads(Path(inputs["split_stats"]).read_text()).get("leakage_probe", {}).get(scheme)
    return None if probe is None else float(probe["share_next_index"])


def validation(data: LeaveOneOutSequences, evaluation: dict, seed: int):
    """The task's evaluator on the validation targets, as the trainer's ``validate`` callable:
    full ranking (ranks only, no top-k sort) for scoring models, constrained top-10 lists on a
    seeded sample of ``model.valid_users`` users (0: all) for generative ones."""
    histories, targets = data.histories("valid"), np.asarray(data.targets("valid"), dtype=np.int64)

    def validate(model: SequentialRecommender) -> dict[str, float]:
        if model.generative:
            hist, tgt = histories, targets
            sample = int(getattr(model, "valid_users", 0) or 0)
            who = np.asarray(data.user_ids)
            if 0 < sample < len(hist):
                rows = np.sort(np.random.default_rng(seed).choice(len(hist), sample, replace=False))
                hist, tgt, who = [hist[i] for i in rows], tgt[rows], who[rows]
            result = evaluate_generated_lists(
                model.recommend, hist, tgt, model.n_items, ks=(10,), mask_history=evaluation["mask_history"],
                batch_size=evaluation["batch_size"], topk=10, users=who,
            )
        else:
            result = evaluate_full_ranking(
                model.score, histories, targets, model.n_items, ks=(10,), mask_history=evaluation["mask_history"],
                batch_size=evaluation["batch_size"], topk=0, warmup=False,
                users=data.user_ids,
            )
        return {"NDCG@10": result.metrics["NDCG@10"], "HR@10": result.metrics["HR@10"]}

    return validate


def train_sequential(
    spec: dict,
    data: LeaveOneOutSequences,
    evaluation: dict,
    seed: int,
    checkpoint_root: str | Path,
    threads: int | None = None,
    semantic_codes: str | Path | None = None,
    item_embeddings: str | Path | None = None,
    numbering: ItemNumbering | None = None,
    item_table: str | Path | None = None,
) -> tuple[SequentialRecommender, dict]:
    """Build the model named by ``spec['class']`` and fit it with early stopping.

    Models that declare ``requires`` (``"semantic_codes"``, ``"item_embeddings"``,
    ``"item_attributes"``) get those arrays, one row per item id, as constructor arguments;
    user-aware ones (HGN) get ``n_users`` and train on ``data`` itself (user ids + sequences).
    Models that pre-train (S3-Rec) run that stage first through the same trainer, checkpointed
    in ``pretrain/`` beside the fine-tuning checkpoint. With ``numbering`` the model is trained
    in its ids (data and per-item arrays renumbered) and keeps it, so evaluation maps back.

    Checkpoints go to ``checkpoint_root/<hash of everything that shapes training>/`` so a
    re-run after a kill resumes, while a changed config or data never resumes a stale state.
    """
    cfg = train_config(spec, seed, threads)
    inputs = _semantic_arrays(spec, data.n_items, semantic_codes, item_embeddings, item_table)
    if numbering is not None:
        data = numbering.sequences(data)
        inputs = {k: numbering.rows(v) for k, v in inputs.items()}
    identity = {
        "class": spec["class"],
        "hparams": spec.get("hparams", {}),
        "train": {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name != "num_threads"},
        "evaluation": {"mask_history": bool(evaluation["mask_history"])},
        "n_items": data.n_items,
        "n_users": data.n_users,
        "data": [int(x) for x in (data.valid_target.sum(), data.test_target.sum(), sum(len(t) for t in data.train))],
    }
    if numbering is not None:
        identity["indexing"] = numbering.scheme
    if inputs:  # new semantic IDs / embeddings never resume a checkpoint trained on the old ones
        identity["inputs"] = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in sorted(inputs.items())}
    fingerprint = config_hash(identity)[:16]
    model_cls = get_model_class(spec["class"])
    if model_cls.user_aware:  # a user embedding over the split's user ids
        inputs["n_users"] = int(data.user_ids.max()) + 1 if data.n_users else 0
    try:
        model = create_model(spec["class"], data.n_items, seed=seed, **spec.get("hparams", {}), **inputs)
    except TypeError as exc:  # an hparam the class does not take
        raise ConfigError(f"seqrec model class {spec['class']!r}: bad hparams ({exc})") from exc
    if data.n_items != model.n_items:
        raise ConfigError(f"model has {model.n_items} items but the data has {data.n_items}")
    model.item_numbering = numbering
    checkpoint_dir = Path(checkpoint_root) / fingerprint
    pretraining = None
    if model.pretrains:  # self-supervised stage first, its own checkpoint, then fine-tuning
        pre_cfg = replace(cfg, lr=model.pretrain_lr, max_epochs=model.pretrain_epochs, patience=model.pretrain_epochs)
        with model.pretraining():
            pretraining = fit(
                model, data.train, pre_cfg, checkpoint_dir / "pretrain",
                validate=model.pretrain_validation(data.histories("test"), seed), monitor=model.pretrain_monitor,
            )
    log = fit(
        model, data if model.user_aware else data.train, cfg, checkpoint_dir,
        validate=validation(data, evaluation, seed), monitor=SeqRec.monitor,
    )
    if pretraining is not None:
        log["pretraining"] = pretraining
        log["seconds"] += pretraining["seconds"]
    log["train_fingerprint"] = fingerprint
    return model, log


def _semantic_arrays(spec: dict, n_items: int, codes_path, embeddings_path, item_table=None) -> dict[str, np.ndarray]:
    """Arrays a model class asks for via ``requires``, aligned so that row i = item id i."""
    required = tuple(getattr(get_model_class(spec["class"]), "requires", ()))
    out: dict[str, np.ndarray] = {}
    for name in required:
        if name == "item_attributes":  # from the item table's titles (llmrecbench.data.attributes)
            if item_table is None:
                raise ConfigError(f"model class {spec['class']!r} needs the item table for its attributes")
            out[name] = title_word_attributes(pl.read_parquet(item_table), n_items, spec.get("attributes"), str(item_table)).ids
            continue
        path = {"semantic_codes": codes_path, "item_embeddings": embeddings_path}.get(name)
        if path is None:
            raise ConfigError(f"model class {spec['class']!r} needs {name}; give its config block a `semantic:` key")
        frame = pl.read_parquet(path).sort("item_id")
        if frame.height != n_items or frame["item_id"].to_list() != list(range(n_items)):
            raise InputError(path, f"expected one row per item id 0..{n_items - 1}, got {frame.height} rows")
        if name == "item_embeddings":
            out[name] = np.stack(frame["vector"].to_numpy()).astype(np.float32)
        else:
            out[name] = frame.drop("item_id").to_numpy().astype(np.int64)
    return out


def evaluate_cell(
    model: SequentialRecommender,
    data: LeaveOneOutSequences,
    *,
    dataset: str,
    model_name: str,
    spec: dict,
    seed: int,
    evaluation: dict,
    leakage_probe: float | None = None,
) -> tuple[dict, pl.DataFrame, dict]:
    """Test-set full ranking of one trained model -> (cell JSON, top-k frame, timing).

    The model is evaluated in the item numbering it was trained in (``model.item_numbering``;
    ties break by its lower id) and its top-k lists are mapped back to canonical ids. The cell
    records that numbering and, when given, the split's leakage probe under it.
    The cell JSON is deterministic for a fixed seed (byte-identical on re-runs); wall-clock
    measurements vary from run to run and so go to the separate timing record.
    """
    canonical = data
    numbering = model.item_numbering
    if numbering is not None:
        data = numbering.sequences(data)
    decoding = dict(spec.get("decoding", {}))
    evaluate = evaluate_full_ranking
    score_fn = model.score
    batch_size = int(evaluation["batch_size"])
    if model.generative:  # a ranked list per user (semantic-ID decoding), same metric functions
        evaluate = evaluate_generated_lists
        score_fn = partial(model.recommend, **decoding)
        # time at the batch the decoder really runs (it decodes in chunks)
        batch_size = min(batch_size, int(decoding.get("chunk_users") or getattr(model, "decode_chunk", batch_size)))
    device = str(next(iter(model.parameters()), torch.empty(0)).device)
    result = evaluate(
        score_fn,
        data.histories("test"),
        data.targets("test"),
        data.n_items,
        ks=evaluation["ks"],
        mask_history=evaluation["mask_history"],
        batch_size=batch_size,
        topk=evaluation["topk"],
        warmup=True,
        batch1_users=int(evaluation["latency_users"]),
        device=device,
        users=data.user_ids,  # per history; user-aware models read them, the others ignore them
    )
    protocol = {
        "split": "loo",
        "ranking": "full",
        "mask_history": bool(evaluation["mask_history"]),
        "indexing": numbering.scheme if numbering is not None else "canonical",
        "loss": spec.get("train", {}).get("loss", "ce"),
        **result.latency.protocol(),
    }
    if leakage_probe is not None:
        protocol["leakage_probe"] = round(float(leakage_probe), 6)
    protocol.update(model.protocol())
    extra: dict[str, Any] = {}
    if model.generative:
        beam = int(decoding.get("beam_width", 20))
        constrained = bool(decoding.get("constrained", True))
        protocol.update(ranking="generated_list", beam_width=beam, constrained=constrained)
        extra = {
            # share of generated list entries that are no item (0 by construction under CBS)
            "invalid_rate": result.n_invalid / max(1, result.n_generated),
            # share of users without a single item in their list (the LLM cells' N/A rate)
            "na_rate": result.n_users_without_item / max(1, data.n_users),
        }
    cell = make_cell(
        dataset=dataset,
        task=SeqRec.name,
        model=model_name,
        model_class=spec["class"],
        item_repr=spec.get("item_repr", "unique_id"),
        setting=spec.get("setting", "default"),
        seed=seed,
        protocol=protocol,
        metrics=result.metrics,
        n_users=int(data.n_users),
        n_items=int(data.n_items),
        n_target_in_history=int(result.n_target_in_history),
    )
    if model.generative:
        cell.update(n_invalid=int(result.n_invalid), n_generated=int(result.n_generated), extra_columns=extra)
    ranks = result.ranks
    rank_column = pl.Series("rank", np.where(np.isfinite(ranks), ranks, 0).astype(np.int32), dtype=pl.Int32)
    rank_column = rank_column.scatter(np.flatnonzero(~np.isfinite(ranks)), None)  # not in the list: null
    topk_lists = numbering.canonical(result.topk) if numbering is not None else result.topk
    topk = pl.DataFrame(
        {
            "user_id": canonical.user_ids.astype(np.int32),
            "target_item_id": canonical.test_target.astype(np.int32),
            "rank": rank_column,
            "topk_item_ids": topk_lists.astype(np.int32),
        },
        schema_overrides={"topk_item_ids": pl.Array(pl.Int32, result.topk.shape[1])},
    )
    what = "model.recommend (beam search)" if model.generative else "model.score"
    timing = result.latency.record(f"{what}, history masking, ranks and top-k lists per batch (llmrecbench.evaluation.Latency)")
    timing["n_users"] = int(data.n_users)
    return cell, topk, timing

