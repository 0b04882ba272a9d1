"""Prompt records of the rating and direct tasks (the seqrec ones are ``prompts.build_prompts``).

Every record is one JSON line with ``user_id``, ``split``, ``template``, ``item_repr``, ``prompt``
and ``target`` (the text a fine-tuned model should produce), plus the task's fields:

* rating (template answer ``rating``): ``item_id`` and ``rating``; one record per review of the
  split; the target is the star rating as written (``"4"``; half stars keep their decimal);
* direct, ``candidate_item`` / ``candidate_list``: ``target_item_id``, ``candidates`` (the cached
  list, in its file order, which the prompt shows) and ``history``; one record per user at valid
  / test; at train one per training position (the ``max_examples_per_user`` most recent), with
  the next item among ``n_negatives`` seeded negatives from outside the user's whole sequence;
* direct, ``yes_no``: valid / test records as above (the evaluator asks the question once per
  candidate, rendering ``prompt`` with each candidate in turn from the stored template, so the file
  holds one prompt per user, for the first candidate); train records are one ``yes`` record per
  training position and ``negatives_per_positive`` ``no`` records with seeded negatives (P5).

* explanation / review (template answer ``explanation`` / ``summary``): one record per pair of the
  task's own data part (``results/{dataset}/{task}/data/{split}.parquet``), with ``item_id``,
  ``rating``, ``row`` (the pair's row in that part, so a cell can be checked against it) and
  ``feature`` where the task has one; the target is the reference sentence (explanation or
  summary); the review text is cut to ``max_review_words`` words.
* ctr (template answer ``click``): one record per labelled pair of the task's own data part,
  with ``item_id``, ``label`` (0/1) and ``history``; the prompt shows the latest ``max_history``
  history items (RecBench: 20); the target is ``Yes`` / ``No``.

Training negatives come from their own stream (``candidate_seed``, spawn key 3), independent of
the valid and test candidate draws.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from llmrecbench.data.candidates import sample_negatives, stage_rng
from llmrecbench.data.ratings import RatingData
from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError
from llmrecbench.llm.prompts import SPLITS, ItemCatalog, Template, get_template


def check_template(template: Template, task: str, split: str) -> None:
    if template.task != task:
        raise ConfigError(f"template {template.id!r} is a {template.task} template, not a {task} one")
    if split not in SPLITS:
        raise ConfigError(f"prompt split {split!r} is not one of {SPLITS}")
    if split == "train" and not template.seen:
        raise ConfigError(f"template {template.id!r} is declared unseen: it must not build training prompts")


def rating_text(rating: float) -> str:
    """The star rating as a target string: ``4`` for 4.0, ``4.5`` for half stars."""
    return str(int(rating)) if float(rating).is_integer() else f"{float(rating):g}"


def category_clause(category: str | None) -> str:
    return f", and product_category: {category}" if category else ""


def rating_prompts(part: RatingData, catalog: ItemCatalog, template_id: str, split: str, *, category: str | None = None) -> list[dict]:
    """One record per (user, item, rating) of ``part`` (a part of the 8:1:1 split), in file order."""
    template = get_template(template_id)
    check_template(template, "rating", split)
    extra = category_clause(category)
    records = []
    for u, i, r in zip(part.users.tolist(), part.items.tolist(), part.ratings.tolist()):
        records.append({
            "user_id": int(u),
            "item_id": int(i),
            "rating": float(r),
            "split": split,
            "template": template_id,
            "item_repr": catalog.item_repr,
            "prompt": template.text.format(user_id=int(u), item=catalog.render_item(i), category=extra),
            "target": rating_text(r),
        })
    return records


def render_direct(template: Template, catalog: ItemCatalog, user_id: int, history: Sequence[int],
                  candidates: Sequence[int] = (), item: int | None = None, n: int = 10) -> str:
    """A direct-task prompt: history as in seqrec prompts, candidates as a list, one item for yes/no."""
    return template.text.format(
        user_id=int(user_id),
        history=catalog.render_history(history),
        candidates=catalog.render_history(candidates),
        item="" if item is None else catalog.render_item(item),
        n=n,
    )


def direct_prompts(
    data: LeaveOneOutSequences,
    catalog: ItemCatalog,
    template_id: str,
    split: str,
    *,
    candidates: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    max_history: int = 10,
    list_length: int = 10,
    max_examples_per_user: int | None = None,
    n_negatives: int = 99,
    negatives_per_positive: int = 1,
    seed: int = 2022,
) -> list[dict]:
    """Direct-task prompt records for one split (module docstring).

    ``candidates`` = ``(rows, lists, targets)`` of :func:`llmrecbench.data.candidates.read_candidates`
    for valid / test (the cached files every row of the table shares); train draws its own.
    """
    template = get_template(template_id)
    check_template(template, "direct", split)
    if split == "train":
        return _direct_train(data, catalog, template, max_history, list_length, max_examples_per_user,
                             n_negatives, negatives_per_positive, seed)
    if candidates is None:
        raise ConfigError(f"direct prompts of split {split!r} need that stage's candidate file")
    rows, lists, targets = candidates
    histories = data.histories(split)
    records = []
    for r, cands, target in zip(rows.tolist(), lists.tolist(), targets.tolist()):
        uid = int(data.user_ids[r])
        hist = [int(i) for i in histories[r][-max_history:]]
        first = int(cands[0]) if template.answer == "yes_no" else None
        records.append({
            "user_id": uid,
            "split": split,
            "template": template.id,
            "item_repr": catalog.item_repr,
            "prompt": render_direct(template, catalog, uid, hist, cands, first, list_length),
            "target": catalog.render(int(target)),
            "target_item_id": int(target),
            "candidates": [int(c) for c in cands],
            "history": hist,
        })
    return records


def _direct_train(data, catalog, template, max_history, list_length, max_examples_per_user, n_negatives,
                  negatives_per_positive, seed) -> list[dict]:
    # training positions: the next item after every prefix of the training sequence (P5), the most
    # recent ``max_examples_per_user`` of them; position k (counted from the end) of all users
    # draws its negatives in one vectorised call, so the draw is exact and seeded
    rng = stage_rng(seed, "train")
    depth = max((len(s) - 1 for s in data.train), default=0)
    if max_examples_per_user:
        depth = min(depth, int(max_examples_per_user))
    yes_no = template.answer == "yes_no"
    per_position = negatives_per_positive if yes_no else n_negatives
    negatives = [sample_negatives(data, per_position, rng) for _ in range(depth)]
    records = []
    for r in range(data.n_users):
        uid = int(data.user_ids[r])
        seq = [int(i) for i in data.train[r]]
        for k in range(min(depth, len(seq) - 1), 0, -1):  # oldest first
            p = len(seq) - k
            hist, target = seq[:p][-max_history:], seq[p]
            negs = [int(i) for i in negatives[k - 1][r]]
            base = {"user_id": uid, "split": "train", "template": template.id, "item_repr": catalog.item_repr,
                    "history": hist, "target_item_id": target}
            if yes_no:
                records.append({**base, "prompt": render_direct(template, catalog, uid, hist, item=target),
                                "target": "yes", "label": 1, "item_id": target})
                for neg in negs:
                    records.append({**base, "prompt": render_direct(template, catalog, uid, hist, item=neg),
                                    "target": "no", "label": 0, "item_id": neg})
            else:
                cands = np.random.default_rng(seed * 1_000_003 + r * 101 + k).permutation([target, *negs]).tolist()
                records.append({**base, "prompt": render_direct(template, catalog, uid, hist, cands, n=list_length),
                                "target": catalog.render(target), "candidates": [int(c) for c in cands]})
    return records


def text_prompts(pairs, catalog: ItemCatalog, template_id: str, split: str, task: str, *, max_review_words: int) -> list[dict]:
    """One record per pair of a text task's part (``TextPairs``), in file order (module docstring)."""
    template = get_template(template_id)
    check_template(template, task, split)
    if "{feature}" in template.text and pairs.features is None:
        raise ConfigError(f"template {template_id!r} shows a feature word, and {pairs.path} has none")
    if "{review}" in template.text and pairs.sources is None:
        raise ConfigError(f"template {template_id!r} shows the review text, and {pairs.path} has none")
    records = []
    for row in range(pairs.n):
        u, i, r = int(pairs.users[row]), int(pairs.items[row]), float(pairs.ratings[row])
        fields = {
            "user_id": u,
            "item": catalog.render_item(i) if template.shows_items else "",
            "star": rating_text(r),
            "feature": pairs.features[row] if pairs.features is not None else "",
            "review": " ".join((pairs.sources[row] if pairs.sources is not None else "").split()[:max_review_words]),
        }
        record = {
            "user_id": u, "item_id": i, "rating": r, "row": row, "split": split, "template": template_id,
            "item_repr": catalog.item_repr, "prompt": template.text.format(**fields), "target": pairs.references[row],
        }
        if pairs.features is not None:
            record["feature"] = pairs.features[row]
        records.append(record)
    return records


CLICK_ANSWERS = {1: "Yes", 0: "No"}


def ctr_prompts(pairs, catalog: ItemCatalog, template_id: str, split: str, *, max_history: int) -> list[dict]:
    """One record per labelled pair of a CTR part (a frame with user_id, item_id, label, history)."""
    template = get_template(template_id)
    check_template(template, "ctr", split)
    records = []
    for u, i, label, history in pairs.select("user_id", "item_id", "label", "history").iter_rows():
        shown = list(history)[-max_history:] if max_history > 0 else []
        records.append({
            "user_id": int(u), "item_id": int(i), "label": int(label), "history": shown, "split": split,
            "template": template_id, "item_repr": catalog.item_repr, "target": CLICK_ANSWERS[int(label)],
            "prompt": template.text.format(user_id=int(u), history=catalog.render_history(shown), item=catalog.render_item(i)),
        })
    return records
