"""LLMRec's output refinement: parse the generated list, repair it, ground each title to an item.

1. **Parse** – the format indicator asks for a python list. We take the first ``[...]`` (a list
   cut off by the token limit is *repaired*: its last incomplete element is dropped and the
   bracket closed) and read it with :func:`ast.literal_eval`; failing that, any quoted strings;
   failing that, numbered or bulleted lines. Nothing parseable -> ``None`` (the caller re-asks).
2. **Ground** – each generated title is matched to a catalogue item: first exactly (after
   normalising case, whitespace and quotes), else to its nearest title by inner product of
   normalised title embeddings in a FAISS index, accepted when the cosine similarity reaches
   ``min_similarity``. Ungroundable strings are invalid items and are dropped. Titles match in
   full and as the prompt cut them; a title several items share grounds to all of them.
3. A user whose output yields no grounded item after all re-asks is **N/A**; the N/A rate is
   reported beside the metrics, as in LLMRec.
"""

from __future__ import annotations

import ast
import re
import zlib
from dataclasses import dataclass, field
from typing import Callable, Collection, Sequence

import numpy as np

from llmrecbench.evaluation import NO_ITEM, drop_history_items
from llmrecbench.evaluation import ranks_from_lists as evaluation_ranks

EncodeFn = Callable[[Sequence[str]], np.ndarray]  # -> [n, d] float32, rows L2-normalised

_QUOTED = re.compile(r"""'((?:[^'\\]|\\.|'(?=[a-z]))+)'|"((?:[^"\\]|\\.)+)\"""")
_BULLET = re.compile(r"^\s*(?:\d+\s*[.):-]|[-*\u2022])\s*(.+?)\s*$")


def normalise(text: str) -> str:
    text = text.lower().replace("&amp;", "&")
    text = re.sub(r"[\"'`*\u2018\u2019\u201c\u201d]", "", text)
    return " ".join(text.split()).strip(" .,;:")


def _repair_list(text: str) -> tuple[str | None, bool]:
    """(first ``[...]`` of ``text``, repaired?).

    Apostrophes inside single-quoted titles (``'L'Oreal Paris'``: a quote followed by a letter)
    are escaped; an unclosed list is cut after its last complete element and closed.
    """
    start = text.find("[")
    if start < 0:
        return None, False
    depth, quote = 0, None
    buf: list[str] = []
    last_complete = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and i + 1 < len(text):
                buf.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote:
                if quote == "'" and i + 1 < len(text) and text[i + 1].isalpha():
                    buf.append("\\'")
                    i += 1
                    continue
                quote = None
                buf.append(ch)
                last_complete = len(buf)
                i += 1
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                buf.append(ch)
                return "".join(buf), False
        buf.append(ch)
        i += 1
    if last_complete is None:
        return None, False
    return "".join(buf[:last_complete]) + "]", True


def parse_list(text: str) -> tuple[list[str] | None, str]:
    """(items, how) where how is ``list`` / ``repaired`` / ``quoted`` / ``lines`` / ``none``."""
    text = text.strip()
    fragment, repaired = _repair_list(text)
    if fragment is not None:
        try:
            value = ast.literal_eval(fragment)
            if isinstance(value, (list, tuple)):
                items = [str(v).strip() for v in value if str(v).strip()]
                if items:
                    return items, "repaired" if repaired else "list"
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    quoted = [a or b for a, b in _QUOTED.findall(text)]
    quoted = [q.strip() for q in quoted if len(q.strip()) > 2]
    if quoted:
        return quoted, "quoted"
    lines = [m.group(1) for line in text.splitlines() if (m := _BULLET.match(line))]
    lines = [re.sub(r"\*\*(.+?)\*\*", r"\1", ln).strip(" :") for ln in lines]
    lines = [ln for ln in lines if len(ln) > 2]
    if lines:
        return lines, "lines"
    return None, "none"


def hashed_ngram_encoder(dim: int = 2048, n: int = 3) -> EncodeFn:
    """Offline fallback encoder: L2-normalised hashed character n-gram counts (deterministic)."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            t = f" {normalise(text)} "
            for j in range(max(1, len(t) - n + 1)):
                out[row, zlib.crc32(t[j : j + n].encode()) % dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    return encode


@dataclass
class Grounder:
    """Maps generated titles to item ids: exact normalised match, else FAISS nearest title.

    Exact keys are every title in full *and* as prompts show it (cut to ``max_title_chars``), so an
    item whose title was shortened in the prompt matches exactly. A title shared by several items
    grounds to all of them, lowest id first: the text names the group, and no member is hidden
    behind another.
    """

    titles: Sequence[str]
    encode: EncodeFn
    min_similarity: float = 0.6
    title_embeddings: np.ndarray | None = None  # precomputed encode(titles), if at hand
    max_title_chars: int | None = None  # None: the prompts' cut (llm.prompts.MAX_TITLE_CHARS)
    exact: dict[str, tuple[int, ...]] = field(init=False)

    def __post_init__(self) -> None:
        from llmrecbench.llm.prompts import MAX_TITLE_CHARS, shown_title
        from llmrecbench.semantic_ids.faiss_index import build_index

        cut = MAX_TITLE_CHARS if self.max_title_chars is None else self.max_title_chars
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(self.titles):
            groups.setdefault(normalise(t), []).append(i)
        self._group_of = [tuple(groups[normalise(t)]) for t in self.titles]
        exact: dict[str, list[int]] = {k: list(v) for k, v in groups.items()}
        for i, t in enumerate(self.titles):
            key = normalise(shown_title(t, cut))
            if key not in groups:  # a cut title that is no full title: its items, in id order
                exact.setdefault(key, []).append(i)
        self.exact = {k: tuple(v) for k, v in exact.items()}
        emb = self.title_embeddings if self.title_embeddings is not None else self.encode(list(self.titles))
        self.index = build_index(np.asarray(emb, dtype=np.float32))

    def ground(self, texts: Sequence[str]) -> list[tuple[tuple[int, ...], str, float]]:
        """(item ids, 'exact' | 'nearest' | 'invalid', similarity) per text; ids ``()`` when invalid."""
        out: list[tuple[tuple[int, ...], str, float] | None] = []
        todo = []
        for j, t in enumerate(texts):
            hit = self.exact.get(normalise(t))
            if hit is not None:
                out.append((hit, "exact", 1.0))
            else:
                out.append(None)
                todo.append(j)
        if todo:
            from llmrecbench.semantic_ids.faiss_index import nearest

            sims, ids = nearest(self.index, self.encode([texts[j] for j in todo]), 1)
            for j, s, i in zip(todo, sims[:, 0].tolist(), ids[:, 0].tolist()):
                ok = s >= self.min_similarity and i >= 0
                out[j] = (self._group_of[int(i)], "nearest", float(s)) if ok else ((), "invalid", float(s))
        return out  # type: ignore[return-value]


@dataclass
class RefinedList:
    """One user's refined recommendation list and how it was obtained."""

    item_ids: list[int]
    parse: str  # how the list was parsed (see parse_list), 'none' = N/A
    n_generated: int = 0
    n_exact: int = 0
    n_nearest: int = 0
    n_invalid: int = 0
    n_duplicates: int = 0
    n_history: int = 0  # grounded to an item of the user's history (skipped under mask_history)
    attempts: int = 1

    @property
    def is_na(self) -> bool:
        return not self.item_ids


def refine(text: str, grounder: Grounder, list_length: int, exclude: Collection[int] = ()) -> RefinedList:
    """Parse one generated answer and ground its titles (duplicates removed, order kept).

    Items in ``exclude`` (the user's history under ``mask_history``) are skipped *before* the list
    is cut to ``list_length``, as a full-ranking row masks its history and then takes the top k;
    a user left with no other item is N/A.
    """
    items, how = parse_list(text)
    if not items:
        return RefinedList([], "none")
    grounded = grounder.ground(items[: 3 * list_length + len(exclude)])
    ids: list[int] = []
    res = RefinedList(ids, how, n_generated=len(items))
    for group, method, _ in grounded:
        if not group:
            res.n_invalid += 1
            continue
        res.n_exact += method == "exact"
        res.n_nearest += method == "nearest"
        for item_id in group:  # one item, or every item sharing the title
            if item_id in exclude:
                res.n_history += 1
            elif item_id in ids:
                res.n_duplicates += 1
            elif len(ids) < list_length:
                ids.append(item_id)
    if not ids:
        res.parse = "none"
    return res


def ranks_from_lists(
    lists: Sequence[Sequence[int]],
    targets: Sequence[int],
    histories: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """1-based rank of each target in its user's list (``inf`` when absent).

    With ``histories`` every history item is removed from the list first: the generated-list
    analogue of giving history items score -inf in full ranking. Ragged lists are padded with
    :data:`~llmrecbench.evaluation.NO_ITEM` and ranked by the evaluator's own functions, so LLM
    cells and semantic-ID cells count ranks identically.
    """
    width = max((len(lst) for lst in lists), default=0)
    padded = np.full((len(lists), width), NO_ITEM, dtype=np.int64)
    for u, lst in enumerate(lists):
        padded[u, : len(lst)] = np.asarray(lst, dtype=np.int64)
    if histories is not None:
        padded = drop_history_items(padded, [np.asarray(h, dtype=np.int64) for h in histories])
    return evaluation_ranks(padded, np.asarray(targets, dtype=np.int64))
