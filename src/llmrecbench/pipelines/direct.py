"""Sample candidates, train and evaluate one cell of the direct-recommendation task (declared in
``llmrecbench.tasks.direct``).

A ``direct``-family model scores (user, candidate) pairs; a ``sequential``-family model (trained
for seqrec on the same leave-one-out split) scores all items after the user's history, of which
the candidates' scores are read. Either way the ranks come from the same function
(:func:`llmrecbench.metrics.candidates.candidate_ranks`, seeded tie shuffle), in validation and
in test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from llmrecbench.data.candidates import read_candidates, sample_candidates
from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.metrics import ranking_metrics
from llmrecbench.metrics.candidates import candidate_order, candidate_ranks
from llmrecbench.pipelines.common import build_model, checkpoint_fingerprint, count_rows, timed_batches, timing_record, train_config
from llmrecbench.pipelines.seqrec import load_sequences
from llmrecbench.provenance import file_digests
from llmrecbench.tables.cells import make_cell
from llmrecbench.tasks.direct import DirectRecommendation
from llmrecbench.training import fit


def sample_stage_candidates(inputs: dict[str, str], stage: str, options: dict) -> pl.DataFrame:
    return sample_candidates(load_sequences(inputs), stage, n_negatives=options["n_negatives"], seed=options["candidate_seed"])


def candidate_scorer(model, data: LeaveOneOutSequences, stage: str, rows: np.ndarray, cands: np.ndarray):
    """``fn(slice) -> [B, C]`` scores of the candidates of users ``rows[slice]``."""
    if getattr(model, "family", "sequential") == "direct":
        users = np.asarray(data.user_ids)[rows]
        return lambda s: model.score_candidates(users[s], cands[s])
    numbering = getattr(model, "item_numbering", None)  # a seqrec model sees its own item ids
    if numbering is not None:
        data, cands = numbering.sequences(data), numbering.items(cands)
    histories = data.histories(stage)

    def score(s: slice) -> torch.Tensor:
        full = model.score([histories[i] for i in rows[s]], users=data.user_ids[rows[s]])
        return full.gather(1, torch.from_numpy(cands[s]).to(full.device))

    return score


def validation(data: LeaveOneOutSequences, valid_candidates: str, options: dict):
    rows, cands, targets = read_candidates(valid_candidates, data, stage="valid")
    bs = int(options["batch_size"])

    def validate(model) -> dict[str, float]:
        fn = candidate_scorer(model, data, "valid", rows, cands)
        scores = np.concatenate([fn(slice(s, s + bs)).detach().float().cpu().numpy() for s in range(0, len(rows), bs)])
        m = ranking_metrics(candidate_ranks(scores, cands, targets, options["tie_seed"]), (10,))
        return {"NDCG@10": m["NDCG@10"], "HR@10": m["HR@10"]}

    return validate


def train_direct_model(spec: dict, inputs: dict[str, str], options: dict, *, seed: int, checkpoint_root: str, threads: int | None):
    data = load_sequences(inputs)
    n_users = count_rows(inputs["user_table"])
    cfg = train_config(spec, seed, threads)
    model = build_model(spec, n_users, data.n_items, seed=seed)
    summary = [n_users, data.n_items, int(sum(len(t) for t in data.train)), file_digests([inputs["valid_candidates"]])[inputs["valid_candidates"]]]
    fingerprint = checkpoint_fingerprint(spec, cfg, summary)
    log = fit(
        model, data, cfg, Path(checkpoint_root) / fingerprint,
        validate=validation(data, inputs["valid_candidates"], options), monitor=DirectRecommendation.monitor,
    )
    log["train_fingerprint"] = fingerprint
    return model, log


def load_any(model_path: str):
    """A trained model of either family the task takes, from its ``model.pt``."""
    payload = torch.load(model_path, map_location="cpu", weights_only=True)
    if payload.get("family") == "direct":
        from llmrecbench.models.direct.base import CandidateRanker

        return CandidateRanker.load(model_path)
    from llmrecbench.models.base import SequentialRecommender

    return SequentialRecommender.load(model_path)


def evaluate_direct_cell(model_path: str, spec: dict, inputs: dict[str, str], options: dict, *, identity: dict):
    data = load_sequences(inputs)
    path = inputs["test_candidates"]
    rows, cands, targets = read_candidates(path, data, stage="test")
    model = load_any(model_path)
    bs = int(options["batch_size"])
    scores, seconds = timed_batches(candidate_scorer(model, data, "test", rows, cands), len(rows), bs)
    seed = int(options["tie_seed"])
    ranks = candidate_ranks(scores, cands, targets, seed)
    metrics = ranking_metrics(ranks, options["ks"])
    ranked = np.take_along_axis(cands, candidate_order(scores, seed), axis=1)
    protocol = {
        "split": DirectRecommendation.split,
        "ranking": "sampled_candidates",
        "n_candidates": int(cands.shape[1]),
        "negatives": "uniform over items the user never interacted with (whole sequence)",
        "candidate_seed": int(options["candidate_seed"]),
        "tie_break": f"seeded shuffle (tie_seed={seed})",
        "model_family": getattr(model, "family", "sequential"),
    }
    cell = make_cell(
        dataset=identity["dataset"], task=DirectRecommendation.name, model=identity["model"], model_class=spec["class"],
        item_repr=spec.get("item_repr", "unique_id"), setting=spec.get("setting", "default"), seed=identity["seed"],
        protocol=protocol, metrics=metrics, n_users=int(len(rows)), n_items=int(data.n_items),
        candidates={"path": str(path), "sha256": file_digests([path])[str(path)]},
        extra_columns={"na_rate": 0.0},
    )
    topk = pl.DataFrame(
        {
            "user_id": pl.Series(np.asarray(data.user_ids)[rows], dtype=pl.Int32),
            "target_item_id": pl.Series(targets, dtype=pl.Int32),
            "rank": pl.Series(ranks.astype(np.int32), dtype=pl.Int32),
            "ranked_candidates": ranked.astype(np.int32),
        },
        schema_overrides={"ranked_candidates": pl.Array(pl.Int32, cands.shape[1])},
    )
    timing = timing_record(
        seconds, len(rows), bs, "user",
        "wall time of scoring every test user's candidates in batches after one warm-up batch, divided by the number of users",
    )
    return cell, topk, timing
