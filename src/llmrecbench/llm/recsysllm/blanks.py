"""Which spans of a prompt are blanked (GLM's multi-task blank infilling, entity-aware).

A prompt's maskable tokens ``[lo, hi)`` are cut into *units*: each entity run is one unit,
every other token its own unit. Spans are runs of whole units, so a span never cuts an entity
(RecSysLLM: "the tokens of an entity are treated as a whole"). Three levels, as GLM's
multi-task setup which RecSysLLM adopts:

* ``entity``   – spans of Poisson(3) units each, until >= ``ratio`` (15 %) of the tokens are
  blanked (GLM's token-level objective, over units);
* ``sentence`` – whole sentences until >= ``ratio`` of the tokens are blanked (a sentence is the
  run of units whose first token starts in it, so sentences also respect entities);
* ``document`` – one span whose length is uniform in 50-100 % of the tokens.

The ablation ``recsysllm_no_entity_mask`` passes no entity runs: every unit is one token, so
spans may cut entities. Spans never touch (one unblanked unit between two), never blank
every unit, and come back sorted (chronological order, the paper's change to GLM). The answer
span is not chosen here: :mod:`.layout` always appends it as the last span.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

LEVELS = ("entity", "sentence", "document")
POISSON_LAMBDA = 3.0
MAX_TRIES = 64


def units_of(lo: int, hi: int, entity_runs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[a, b)`` units covering ``[lo, hi)``: entity runs whole, other tokens one by one."""
    out, i = [], lo
    for a, b in sorted(entity_runs):
        a, b = max(a, lo), min(b, hi)
        if b <= a or a < i:
            continue
        out += [(k, k + 1) for k in range(i, a)]
        out.append((a, b))
        i = b
    out += [(k, k + 1) for k in range(i, hi)]
    return out


def _tokens(units, s: int, e: int) -> int:
    return units[e - 1][1] - units[s][0]


def _free(taken: np.ndarray, s: int, e: int) -> bool:
    """Units s..e-1 free and their neighbours too (spans never touch)."""
    return not taken[max(0, s - 1) : min(len(taken), e + 1)].any()


def _poisson_spans(units, ratio: float, rng: np.random.Generator) -> list[tuple[int, int]]:
    n_units = len(units)
    n_tokens = units[-1][1] - units[0][0]
    goal = max(1, int(np.ceil(ratio * n_tokens)))
    taken = np.zeros(n_units, dtype=bool)
    spans, covered = [], 0
    for _ in range(MAX_TRIES):
        if covered >= goal:
            break
        length = int(min(max(1, rng.poisson(POISSON_LAMBDA)), n_units - 1 - taken.sum()))
        if length < 1:
            break
        starts = [s for s in range(n_units - length + 1) if _free(taken, s, s + length)]
        if not starts:
            continue
        s = int(starts[int(rng.integers(len(starts)))])
        taken[s : s + length] = True
        spans.append((s, s + length))
        covered += _tokens(units, s, s + length)
    return spans


def _sentence_spans(units, sentence_of_token: Sequence[int], ratio: float, rng: np.random.Generator):
    groups: list[list[int]] = []
    for u, (a, _) in enumerate(units):
        if groups and sentence_of_token[a] == sentence_of_token[units[groups[-1][-1]][0]]:
            groups[-1].append(u)
        else:
            groups.append([u])
    if len(groups) < 2:
        return None  # one sentence: the sentence level would blank everything
    n_tokens = units[-1][1] - units[0][0]
    goal = max(1, int(np.ceil(ratio * n_tokens)))
    taken = np.zeros(len(units), dtype=bool)
    spans, covered = [], 0
    for g in rng.permutation(len(groups)).tolist():
        s, e = groups[g][0], groups[g][-1] + 1
        if taken.sum() + (e - s) >= len(units) or not _free(taken, s, e):
            continue
        taken[s:e] = True
        spans.append((s, e))
        covered += _tokens(units, s, e)
        if covered >= goal:
            break
    return spans


def _document_span(units, rng: np.random.Generator) -> list[tuple[int, int]]:
    lo, n_tokens = units[0][0], units[-1][1] - units[0][0]
    want = max(1, int(round(rng.uniform(0.5, 1.0) * n_tokens)))
    first = lo + int(rng.integers(0, n_tokens - want + 1))
    s = next(u for u, (_, b) in enumerate(units) if b > first)
    e = s + 1
    while e < len(units) and _tokens(units, s, e) < want:
        e += 1
    if s == 0 and e == len(units):  # keep one unit of context
        e -= 1
    return [(s, e)] if e > s else []


def choose_blanks(
    lo: int,
    hi: int,
    entity_runs: Sequence[tuple[int, int]],
    level: str,
    rng: np.random.Generator,
    *,
    ratio: float = 0.15,
    sentence_of_token: Sequence[int] | None = None,
) -> list[tuple[int, int]]:
    """Sorted, disjoint, non-touching ``[a, b)`` token spans to blank in ``[lo, hi)``."""
    if hi - lo < 2:
        return []
    units = units_of(lo, hi, entity_runs)
    if len(units) < 2:
        return []
    if level == "entity":
        spans = _poisson_spans(units, ratio, rng)
    elif level == "sentence":
        if sentence_of_token is None:
            raise ValueError("the sentence level needs sentence_of_token")
        spans = _sentence_spans(units, sentence_of_token, ratio, rng)
        if spans is None:
            spans = _poisson_spans(units, ratio, rng)
    elif level == "document":
        spans = _document_span(units, rng)
    else:
        raise ValueError(f"blank level {level!r} is not one of {LEVELS}")
    return sorted((units[s][0], units[e - 1][1]) for s, e in spans)
