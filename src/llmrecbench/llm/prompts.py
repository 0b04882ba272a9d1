"""Prompts for sequential recommendation with an LLM, and how items appear in them.

Construction follows LLMRec (task description + behaviour injection + format indicator) for
zero-shot use, and P5-style template families for fine-tuning. Each fine-tuning template is
declared *seen* (used to build training prompts) or *unseen* (held out for zero-shot transfer
evaluation), as in P5; the ``llmrec`` template is the zero-shot prompt of LLMRec's supplement.

Items appear in prompts and targets in one of three representations (RecBench):

* ``text``         – the item title (``"Maybelline Great Lash Mascara"``);
* ``unique_id``    – one new token per item (``<item_123>``); the embedding matrix is resized;
* ``number_text``  – the item's number written as plain text (``1011``), as P5 wrote item IDs:
  the tokenizer splits it into digit pieces, so numbers close in value share pieces and an
  LLM can read "max(history) + 1" off the prompt (the P5 index leak, :mod:`llmrecbench.data.indexing`);
* ``semantic_id``  – a few new tokens per item, one per code level (``<a_12><b_3><c_200>``).

A prompt file is one JSON object per line with ``user_id``, ``split``, ``template``,
``item_repr``, ``prompt``, ``target`` (text the model should produce), ``target_item_id`` and
``history`` (item ids of the input history, oldest first).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError, InputError
from llmrecbench.io import atomic_path

ITEM_REPRS = ("text", "unique_id", "number_text", "semantic_id")
# representations that show an item by its number in an item numbering (llmrecbench.data.indexing)
NUMBERED_REPRS = ("unique_id", "number_text")
SPLITS = ("train", "valid", "test")


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    """One prompt template: ``{history}`` is filled with the rendered item list."""

    id: str
    text: str
    seen: bool  # True: used for fine-tuning; False: only for (zero-shot) evaluation
    zero_shot: bool = False  # usable without fine-tuning (LLMRec's format indicator, or a yes/no question)
    task: str = "seqrec"  # the task whose prompt files it builds
    # what the answer is, and so how it is read: item_list (seqrec), rating (a star rating),
    # candidate_item (one of the prompt's candidates), candidate_list (a ranked list of
    # candidate titles, LLMRec zero-shot), yes_no (P(yes) of one user-item pair), explanation /
    # summary (one generated sentence), click (P(YES) of one user-item pair, CTR)
    answer: str = "item_list"

    @property
    def shows_items(self) -> bool:
        """Whether the prompt renders an item (title, ID token or semantic ID): review templates do not."""
        return any(f in self.text for f in ("{item}", "{history}", "{candidates}"))


# LLMRec Figure 2 (sequential recommendation) is seq1; seq2-seq7 follow P5's sequential family.
TEMPLATES: dict[str, Template] = {
    t.id: t
    for t in (
        Template(
            "seq1",
            "Here is the purchase history list of user_{user_id}: {history} try to recommend next item to the user",
            seen=True,
        ),
        Template(
            "seq2",
            "Given the following purchase history of user_{user_id}: {history} predict next possible item to be purchased by the user?",
            seen=True,
        ),
        Template(
            "seq3",
            "User_{user_id} has purchased items {history}, predict next possible item to be bought by the user?",
            seen=True,
        ),
        Template(
            "seq4",
            "I find the purchase history list of user_{user_id}: {history} I wonder what is the next item to recommend to the user. Can you help me decide?",
            seen=True,
        ),
        Template(
            "seq5",
            "According to what items user_{user_id} has purchased: {history} Can you recommend another item to the user?",
            seen=True,
        ),
        Template(
            "seq6",
            "What would user_{user_id} be likely to purchase next after buying items {history} ?",
            seen=False,
        ),
        Template(
            "seq7",
            "By analyzing user_{user_id}'s purchases of {history} , what is the next item expected to be bought?",
            seen=False,
        ),
        # LLMRec supplement (Fig. 4): format indicator + behaviour injection + task description
        Template(
            "llmrec",
            "Requirements: you must choose {n} items for recommendation and sort them in order of priority, "
            "from highest to lowest. Output format: a python list. Do not explain the reason or include any "
            "other words. The user has interacted with the following items in chronological order: {history}. "
            "Please recommend the next item that the user might interact with.",
            seen=False,
            zero_shot=True,
        ),
    )
}

# Rating prediction (task rating). rate1 is LLMRec's fine-tuning prompt (Fig. 2, after P5's 1-5;
# item_{id} when the item is an ID token, the quoted title otherwise), rate2 P5's 1-2; rate3 is
# held out (unseen);
# rate_llmrec is LLMRec's zero-shot rating prompt (supplement), product category from the dataset.
# Direct recommendation (task direct). direct1 is LLMRec's Fig. 2 prompt with user_desc rendered
# as the user id and recent history, candidates in the cached candidate order; direct2 is held
# out; direct_llmrec is LLMRec's zero-shot candidate prompt (supplement); yesno1/yesno2 are P5's
# yes/no family (5-5 style), scored by P(yes) for every candidate.
TASK_TEMPLATES = (
    Template("rate1", "What star rating do you think user_{user_id} will give {item}? (1 being lowest and 5 being highest)",
             seen=True, task="rating", answer="rating"),
    Template("rate2", "How will user_{user_id} rate this product: {item}? (1 being lowest and 5 being highest)",
             seen=True, task="rating", answer="rating"),
    Template("rate3", "Predict user_{user_id}'s preference on {item} (1 being lowest and 5 being highest)",
             seen=False, task="rating", answer="rating"),
    Template(
        "rate_llmrec",
        "How will user rate this product_title: {item}{category}? ( 1 being lowest and 5 being highest ) "
        "Attention! Just give me back the exact number a result, and you don't need a lot of text.",
        seen=False, zero_shot=True, task="rating", answer="rating",
    ),
    Template("direct1", "Which item of the following to recommend for user_{user_id}, who has purchased {history}? {candidates}",
             seen=True, task="direct", answer="candidate_item"),
    Template("direct2", "Choose the best item from these candidates for user_{user_id}, who bought {history}: {candidates}",
             seen=False, task="direct", answer="candidate_item"),
    Template(
        "direct_llmrec",
        "Requirements: you must choose {n} items for recommendation and sort them in order of priority, from "
        "highest to lowest. Output format: a python list. Do not explain the reason or include any other words. "
        "The user has interacted with the following items (in no particular order): {history}. From the "
        "candidates listed below, choose the top {n} items to recommend to the user and rank them in order of "
        "priority from highest to lowest. Candidates: {candidates}.",
        seen=False, zero_shot=True, task="direct", answer="candidate_list",
    ),
    Template("yesno1", "Will user_{user_id}, who has purchased {history}, likely interact with {item}? Answer yes or no.",
             seen=True, zero_shot=True, task="direct", answer="yes_no"),
    Template("yesno2", "Would user_{user_id}, who bought {history}, enjoy {item}? Answer yes or no.",
             seen=False, zero_shot=True, task="direct", answer="yes_no"),
    # Explanation generation (task explanation). expl1 is LLMRec's fine-tuning prompt (Fig. 2, P5's
    # 3-3 without the feature); expl2 is P5's 3-1; expl_feature P5's feature-hint form (3-3 with
    # the feature word, as PETER+); expl3 is held out (unseen). Every one reads as a request for
    # a sentence, so each is usable zero-shot.
    Template("expl1", "Help user_{user_id} generate a {star}-star explanation about this product: {item}",
             seen=True, zero_shot=True, task="explanation", answer="explanation"),
    Template("expl2", "Generate an explanation for user_{user_id} about this product: {item}",
             seen=True, zero_shot=True, task="explanation", answer="explanation"),
    Template("expl_feature", "Help user_{user_id} generate a {star}-star explanation about this feature: {feature} for this product: {item}",
             seen=True, zero_shot=True, task="explanation", answer="explanation"),
    Template("expl3", "In one sentence, say why user_{user_id} gave {item} {star} stars.",
             seen=False, zero_shot=True, task="explanation", answer="explanation"),
    # Review summarization (task review). review1 is LLMRec's prompt (Fig. 2); review2 follows
    # P5's 4-family; review3 is held out (unseen). None shows the item, so none needs item text.
    Template("review1", "Write a short sentence to summarize the following product review from user_{user_id}: {review}",
             seen=True, zero_shot=True, task="review", answer="summary"),
    Template("review2", "Give a short title for this review written by user_{user_id}: {review}",
             seen=True, zero_shot=True, task="review", answer="summary"),
    Template("review3", "Summarize in a few words what user_{user_id} says in this review: {review}",
             seen=False, zero_shot=True, task="review", answer="summary"),
    # CTR prediction (task ctr). ctr1 is RecBench's pair-wise prompt (the behaviour sequence as
    # item texts, the candidate, "Answer (Yes/No):"), scored by P(YES) from the last-token logits;
    # ctr2 is held out (unseen)
    Template("ctr1", "User behavior sequence: {history}\nCandidate item: {item}\nWill the user click the candidate item? Answer (Yes/No):",
             seen=True, zero_shot=True, task="ctr", answer="click"),
    Template("ctr2", "A user interacted with these items in this order: {history}. Would the user also click {item}? Answer (Yes/No):",
             seen=False, zero_shot=True, task="ctr", answer="click"),
    # no prompt at all: the review text is the whole input. Fine-tuned on it, the default LLM stands
    # for LLMRec's GPT-2 / T0 summarization baselines (a language model, not LLMRec's prompt)
    Template("review_plain", "{review}", seen=True, task="review", answer="summary"),
)
TEMPLATES.update({t.id: t for t in TASK_TEMPLATES})

REASK = (
    "Your previous answer could not be read as a python list of item titles. Answer again with only a "
    "python list of {n} item titles, e.g. ['first title', 'second title'], and nothing else."
)


def seen_templates(task: str = "seqrec") -> list[str]:
    return [t.id for t in TEMPLATES.values() if t.seen and t.task == task]


def unseen_templates(task: str = "seqrec") -> list[str]:
    return [t.id for t in TEMPLATES.values() if not t.seen and t.task == task]


def get_template(template_id: str) -> Template:
    if template_id not in TEMPLATES:
        raise ConfigError(f"unknown prompt template {template_id!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[template_id]


def prompt_key(template_id: str, item_repr: str, indexing: str | None = None) -> str:
    """The ``{template}`` wildcard of prompt files: ``<template id>-<item repr>``, e.g. ``seq1-text``;
    numbered representations may name their item numbering: ``seq1-number_text.p5_sequential``
    (without it, the split's configured ``splits.indexing``)."""
    if indexing is not None and item_repr not in NUMBERED_REPRS:
        raise ConfigError(f"prompt set {template_id}-{item_repr}: only {'/'.join(NUMBERED_REPRS)} items have an indexing")
    return f"{template_id}-{item_repr}" + (f".{indexing}" if indexing else "")


def parse_prompt_key(key: str, allow_indexing: bool = False) -> tuple[str, str]:
    """``(template id, item repr)`` of a prompt key; a key naming an item numbering is refused
    unless the task numbers items (``allow_indexing``; read it with :func:`prompt_key_indexing`)."""
    template_id, _, rest = key.partition("-")
    item_repr, _, indexing = rest.partition(".")
    get_template(template_id)
    if item_repr not in ITEM_REPRS:
        raise ConfigError(f"prompt set {key!r}: item representation {item_repr!r} is not one of {ITEM_REPRS}")
    if indexing and not allow_indexing:
        raise ConfigError(f"prompt set {key!r}: this task has no item numberings (indexing {indexing!r}); drop the setting's indexing:")
    if indexing and item_repr not in NUMBERED_REPRS:
        raise ConfigError(f"prompt set {key!r}: only {'/'.join(NUMBERED_REPRS)} items have an indexing")
    return template_id, item_repr


def prompt_key_indexing(key: str) -> str | None:
    """The item numbering a prompt key names (``seq1-unique_id.p5_sequential`` -> ``p5_sequential``), else None."""
    return key.partition("-")[2].partition(".")[2] or None


# --------------------------------------------------------------------------- item representations


MAX_TITLE_CHARS = 120  # a title longer than this is cut (at a word end's trailing space) in prompts and targets


def shown_title(title: str, max_chars: int = MAX_TITLE_CHARS) -> str:
    """The title as prompts and fine-tuning targets show it: cut to ``max_chars``."""
    return title if len(title) <= max_chars else title[:max_chars].rstrip()


def clean_title(title: str | None, fallback: str) -> str:
    text = " ".join(str(title or "").split())
    return text if text else fallback


@dataclass
class ItemCatalog:
    """Item texts and, for token representations, the token string of every item."""

    titles: list[str]  # index = canonical item id
    item_repr: str = "text"
    codes: np.ndarray | None = None  # [n_items, levels] semantic-ID codes (semantic_id only)
    max_title_chars: int = MAX_TITLE_CHARS
    # numbered reprs only: the model id each item is shown with (<item_n>, or n + 1 as number
    # text), from the split's item numbering (llmrecbench.data.indexing); None: canonical ids
    numbers: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.item_repr not in ITEM_REPRS:
            raise ConfigError(f"item_repr {self.item_repr!r} is not one of {ITEM_REPRS}")
        if self.item_repr == "semantic_id":
            if self.codes is None:
                raise ConfigError("item_repr semantic_id needs semantic-ID codes")
            self.codes = np.asarray(self.codes, dtype=np.int64)
            if self.codes.ndim != 2 or self.codes.shape[0] != len(self.titles):
                raise ConfigError(f"semantic-ID codes have shape {self.codes.shape}, expected [{len(self.titles)}, L]")
            self.codes = disambiguate_codes(self.codes)

    @property
    def n_items(self) -> int:
        return len(self.titles)

    def number(self, item_id: int) -> int:
        """The id an ID-token item is shown with (its numbering's model id)."""
        return int(item_id) if self.numbers is None else int(self.numbers[int(item_id)])

    def title(self, item_id: int) -> str:
        return shown_title(self.titles[int(item_id)], self.max_title_chars)

    def render(self, item_id: int) -> str:
        """The item as it appears in prompts and targets."""
        if self.item_repr == "text":
            return self.title(item_id)
        if self.item_repr == "unique_id":
            return f"<item_{self.number(item_id)}>"
        if self.item_repr == "number_text":  # the 1-based index, as P5's data files number items
            return str(self.number(item_id) + 1)
        return "".join(semantic_token(level, int(c)) for level, c in enumerate(self.codes[int(item_id)]))

    def render_item(self, item_id: int) -> str:
        """One item inside a sentence: the quoted title, or its ID / semantic-ID tokens (``item_<tokens>``)."""
        if self.item_repr == "text":
            return f'"{self.title(item_id)}"'
        return f"item {self.render(item_id)}"

    def render_history(self, items: Sequence[int]) -> str:
        if self.item_repr == "text":
            return "[" + ", ".join(repr(self.title(i)) for i in items) + "]"
        return ", ".join(self.render(i) for i in items)

    def new_tokens(self) -> list[str]:
        """Tokens to add to the tokenizer (empty for text)."""
        if self.item_repr == "unique_id":
            return [f"<item_{i}>" for i in range(self.n_items)]
        if self.item_repr == "semantic_id":
            out = []
            for level in range(self.codes.shape[1]):
                out += [semantic_token(level, c) for c in range(int(self.codes[:, level].max()) + 1)]
            return out
        return []


def semantic_token(level: int, code: int) -> str:
    return f"<{chr(ord('a') + level)}_{code}>"


def disambiguate_codes(codes: np.ndarray) -> np.ndarray:
    """Append a level that numbers items sharing the same code tuple (TIGER), only if any do."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    if counts.max() == 1:
        return codes
    extra = np.zeros(codes.shape[0], dtype=np.int64)
    seen: dict[int, int] = {}
    for row, group in enumerate(inverse.ravel().tolist()):
        extra[row] = seen.get(group, 0)
        seen[group] = extra[row] + 1
    return np.concatenate([codes, extra[:, None]], axis=1)


def load_titles_tsv(path: str | Path, item_ids: dict[str, int] | None = None) -> dict[str, str]:
    """``asin<TAB>title`` file -> {asin: title}."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    out = {}
    with open(path, encoding="utf-8") as fh:
        header = fh.readline()
        if "\t" not in header:
            raise InputError(path, "expected a tab-separated header 'asin<TAB>title'")
        for line in fh:
            asin, _, title = line.rstrip("\n").partition("\t")
            out[asin] = title
    return out


def load_item_titles(items_path: str | Path, require_text: bool = True) -> list[str]:
    """Titles by canonical item id from ``items.parquet`` (column ``title`` or ``item_text``).

    Without a title column, ``require_text=False`` gives every item its fallback name
    ``item <raw id>`` (ID and semantic-ID prompts need only the count); otherwise it is an error.
    """
    import polars as pl

    items_path = Path(items_path)
    try:
        df = pl.read_parquet(items_path)
    except Exception as exc:  # polars raises several exception types
        raise InputError(items_path, f"cannot read parquet ({type(exc).__name__}: {exc})") from exc
    col = next((c for c in ("title", "item_text", "text") if c in df.columns), None)
    if (col is None and require_text) or "item_id" not in df.columns:
        raise InputError(items_path, f"needs columns item_id and title (has {df.columns}); the dataset must provide item_text")
    df = df.sort("item_id")
    if df["item_id"].to_list() != list(range(df.height)):
        raise InputError(items_path, "item ids are not 0..n-1")
    raw = next((c for c in ("raw_item_id", "asin", "original_id") if c in df.columns), None)
    fallbacks = [f"item {r}" for r in (df[raw].to_list() if raw else df["item_id"].to_list())]
    if col is None:
        return fallbacks
    return [clean_title(t, fb) for t, fb in zip(df[col].to_list(), fallbacks)]


# --------------------------------------------------------------------------- prompt sets


def fill(template: Template, catalog: ItemCatalog, user_id: int, history: Sequence[int], n: int = 10) -> str:
    return template.text.format(user_id=int(user_id), history=catalog.render_history(history), n=n)


def build_prompts(
    data: LeaveOneOutSequences,
    catalog: ItemCatalog,
    template_id: str,
    split: str,
    max_history: int = 10,
    list_length: int = 10,
    max_examples_per_user: int | None = None,
    users: np.ndarray | None = None,
) -> list[dict]:
    """Prompt records for one split.

    ``train``: every prefix of each user's training sequence predicts its next item (P5); at
    most ``max_examples_per_user`` most recent ones per user. ``valid`` / ``test``: one record
    per user (history -> held-out item). Histories keep the ``max_history`` most recent items;
    valid/test records also carry ``mask_items``, the user's whole input history, which the
    evaluator masks exactly as it does for the conventional rows (not only the items shown).
    ``users`` restricts to those row indices of ``data``.
    """
    template = get_template(template_id)
    if template.task != "seqrec":
        raise ConfigError(f"template {template_id!r} is a {template.task} template, not a seqrec one")
    if split not in SPLITS:
        raise ConfigError(f"prompt split {split!r} is not one of {SPLITS}")
    if split == "train" and not template.seen:
        raise ConfigError(f"template {template_id!r} is declared unseen: it must not build training prompts")
    rows = np.arange(data.n_users) if users is None else np.asarray(users)
    records = []
    for r in rows.tolist():
        uid = int(data.user_ids[r])
        if split == "train":
            seq = data.train[r]
            positions = list(range(1, len(seq)))
            if max_examples_per_user:
                positions = positions[-max_examples_per_user:]
            pairs = [(seq[:p], int(seq[p])) for p in positions]
        else:
            hist = data.train[r] if split == "valid" else np.append(data.train[r], data.valid_target[r])
            pairs = [(hist, int(data.targets(split)[r]))]
        for full, target in pairs:
            hist = [int(i) for i in full[-max_history:]]
            extra = {} if split == "train" else {"mask_items": [int(i) for i in full]}
            records.append(
                {
                    **extra,
                    "user_id": uid,
                    "split": split,
                    "template": template_id,
                    "item_repr": catalog.item_repr,
                    "prompt": fill(template, catalog, uid, hist, list_length),
                    "target": catalog.render(target),
                    "target_item_id": target,
                    "history": hist,
                }
            )
    return records


def write_jsonl(records: Iterable[dict], dest: str | Path) -> None:
    with atomic_path(dest) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(path, f"line {n}: malformed JSON ({exc.msg})") from exc
    return out


def iter_batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mirror_slice(
    user_sequence: str | Path, item_titles: str | Path, n_users: int | None = None
) -> tuple[LeaveOneOutSequences, list[str]]:
    """Leave-one-out sequences of the first ``n_users`` users of a P5 ``user_sequence.txt`` and
    the titles of *all* items of ``item_titles.tsv`` (item id = row order there).

    For library tests and quick runs on the raw mirror; the workflow reads the canonical
    parquet splits instead.
    """
    titles_by_asin = load_titles_tsv(item_titles)
    asins = list(titles_by_asin)
    index = {a: i for i, a in enumerate(asins)}
    users, train, valid, test = [], [], [], []
    with open(user_sequence, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 4:
                continue
            try:
                seq = [index[a] for a in parts[1:]]
            except KeyError as exc:
                raise InputError(user_sequence, f"item {exc.args[0]} has no title in {item_titles}") from exc
            users.append(len(users))
            train.append(np.asarray(seq[:-2], dtype=np.int64))
            valid.append(seq[-2])
            test.append(seq[-1])
            if n_users and len(users) >= n_users:
                break
    data = LeaveOneOutSequences(
        user_ids=np.asarray(users, dtype=np.int64),
        train=train,
        valid_target=np.asarray(valid, dtype=np.int64),
        test_target=np.asarray(test, dtype=np.int64),
        n_items=len(asins),
    )
    return data, [clean_title(titles_by_asin[a], f"item {a}") for a in asins]
