"""Answer readers: from an LLM's output to the task's prediction, or N/A.

* :func:`read_rating` – the first number in the answer (digits, optionally with a decimal part,
  or a number word one..five), accepted when it lies in the rating range; anything else is N/A.
  ``"4"``, ``"Rating: 4.5 stars"``, ``"I would say four"`` read as 4, 4.5, 4; ``"10/10"``,
  ``"I cannot tell"`` and ``""`` are N/A (a number outside the range is not clipped into it: the
  model did not answer on the scale it was asked for).
* :func:`read_sentence` – a generated explanation or summary: the first non-blank line of the
  answer, a leading label ("Explanation:", "Summary:", "Title:", "Answer:") and enclosing quotes
  removed, inner whitespace collapsed; an answer with no text reads as ``""`` (scored as an empty
  generation, never dropped). ``'Summary: "Great smell!"\nMore text'`` reads as ``Great smell!``.
* :func:`read_item_number` – an item named by its number as text (item_repr ``number_text``, P5's
  way of writing IDs): the first whole integer of the answer, read as a 1-based index of the
  numbering the prompt used, accepted when 1 <= n <= n_items; ``"1011"``, ``"item 1011"`` read as
  1011; ``"10.5"``, ``"none"``, ``"0"`` and ``""`` are invalid (None).
* :func:`yes_no_token_ids` / :func:`yes_logit_margin` – P5's yes/no scoring: the score of a
  candidate is ``log P(yes) - log P(no)`` of the first answer token, where ``P(yes)`` sums the
  probabilities of the tokens that start "yes" / "Yes" (and ``P(no)`` of "no" / "No"); ranking
  by it equals ranking by ``P(yes | yes or no)`` = sigmoid(margin).
"""

from __future__ import annotations

import re
from typing import Sequence

import torch

NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w])|\b(one|two|three|four|five)\b", re.IGNORECASE)
WORDS = {"one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0}


def read_rating(answer: str, low: float = 1.0, high: float = 5.0) -> float | None:
    """The rating an answer gives, or None (N/A): the first number in it, if inside [low, high]."""
    m = NUMBER.search(answer or "")
    if m is None:
        return None
    value = float(m.group(1)) if m.group(1) is not None else WORDS[m.group(2).lower()]
    return value if low <= value <= high else None


INTEGER = re.compile(r"(?<![\w.])(\d+)(?![\w.])")


def read_item_number(answer: str, n_items: int) -> int | None:
    """The 1-based item index an answer names, or None (module docstring)."""
    m = INTEGER.search(answer or "")
    if m is None:
        return None
    n = int(m.group(1))
    return n if 1 <= n <= n_items else None


LABEL = re.compile(r"^\s*(?:explanation|summary|title|answer|review summary)\s*[:\-]\s*", re.IGNORECASE)
QUOTES = ("\"\"", "''", "\u201c\u201d", "``")


def read_sentence(answer: str) -> str:
    """The generated sentence of an explanation / summary answer (module docstring)."""
    line = next((ln for ln in (answer or "").splitlines() if ln.strip()), "")
    text = " ".join(LABEL.sub("", line).split())
    for opening, closing in QUOTES:
        if len(text) >= 2 and text[0] == opening[0] and text[-1] == closing[-1]:
            text = text[1:-1].strip()
            break
    return text


YES_WORDS = ("yes", "Yes")
NO_WORDS = ("no", "No")


def yes_no_token_ids(tok) -> tuple[list[int], list[int]]:
    """First-token ids of the yes and the no answers (distinct words, their first sub-token)."""

    def first(words: Sequence[str]) -> list[int]:
        ids = []
        for w in words:
            t = tok(w, add_special_tokens=False)["input_ids"]
            if t and t[0] not in ids:
                ids.append(int(t[0]))
        return ids

    yes, no = first(YES_WORDS), first(NO_WORDS)
    if not yes or not no or set(yes) & set(no):
        raise ValueError(f"tokenizer gives no distinct first tokens for yes {yes} / no {no}")
    return yes, no


def yes_logit_margin(logits: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int]) -> torch.Tensor:
    """``log P(yes) - log P(no)`` per row of next-token ``logits`` [B, V] (log-sum-exp over variants)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    yes = torch.logsumexp(logp[:, list(yes_ids)], dim=-1)
    no = torch.logsumexp(logp[:, list(no_ids)], dim=-1)
    return yes - no
