"""Evaluation metrics as pure functions of ranks, predictions or generated text; formulas in docstrings."""

from llmrecbench.metrics.candidates import (
    candidate_metrics,
    candidate_order,
    candidate_ranks,
    candidate_topk,
    target_columns,
    tie_keys,
)
from llmrecbench.metrics.ranking import (
    hit_rate_at_k,
    mrr,
    ndcg_at_k,
    ranking_metrics,
    ranks_from_scores,
)
from llmrecbench.metrics.rating import clip_ratings, mae, rating_metrics, rmse
from llmrecbench.metrics.text_library import text_metrics
from llmrecbench.metrics.text_p5 import bleu4_p5, rouge_p5

__all__ = [
    "bleu4_p5",
    "candidate_metrics",
    "candidate_order",
    "candidate_ranks",
    "candidate_topk",
    "clip_ratings",
    "hit_rate_at_k",
    "mae",
    "mrr",
    "ndcg_at_k",
    "ranking_metrics",
    "ranks_from_scores",
    "rating_metrics",
    "rmse",
    "rouge_p5",
    "target_columns",
    "text_metrics",
    "tie_keys",
]
