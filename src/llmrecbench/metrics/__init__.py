"""Evaluation metrics as pure functions of ranks or predictions; formulas in docstrings."""

from llmrecbench.metrics.ranking import (
    hit_rate_at_k,
    mrr,
    ndcg_at_k,
    ranking_metrics,
    ranks_from_scores,
)

__all__ = ["hit_rate_at_k", "mrr", "ndcg_at_k", "ranking_metrics", "ranks_from_scores"]
