"""Dataset statistics in the form the papers report them."""

from __future__ import annotations

from llmrecbench.data.ingest import CanonicalDataset

OPTIONAL_FIELDS = ("timestamp", "rating", "review", "summary")


def dataset_stats(ds: CanonicalDataset) -> dict:
    """users, items, interactions, actions per user / item and sparsity.

    actions_per_user = |R| / |U|;  actions_per_item = |R| / |I|;  sparsity = 1 - |R| / (|U| |I|)
    (the P5/LLMRec table reports them rounded: Beauty 8.9, 16.4, 99.93%).
    """
    inter = ds.interactions
    n_users = int(inter["user_id"].n_unique())
    n_items = int(inter["item_id"].n_unique())
    n = int(inter.height)
    titles = int(ds.items["title"].is_not_null().sum()) if "title" in ds.items.columns else 0
    return {
        "users": n_users,
        "items": n_items,
        "interactions": n,
        "actions_per_user": n / n_users if n_users else 0.0,
        "actions_per_item": n / n_items if n_items else 0.0,
        "sparsity": 1.0 - n / (n_users * n_items) if n_users and n_items else 0.0,
        "fields": [f for f in OPTIONAL_FIELDS if f in inter.columns],
        "items_with_title": titles,
        "ingest": ds.report,
    }
