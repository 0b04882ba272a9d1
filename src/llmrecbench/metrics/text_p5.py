"""BLEU and ROUGE exactly as P5, PETER and LLMRec computed them (their ``utils`` BLEU/ROUGE code),
for the explanation-generation and review-summarization tasks.

These reproduce the papers' protocol, quirks included; the library values that are comparable
across papers (sacrebleu, Google's rouge-score) live in :mod:`llmrecbench.metrics.text_library`
and go beside them in the tables, each column naming its implementation.

* **BLEU-4 (p5)** is the TF-NMT ``compute_bleu``: corpus-level, one reference per hypothesis,
  uniform weights over 1..4-grams, no smoothing, tokens ``str.split()`` (whitespace, case- and
  punctuation-sensitive), x100.
* **ROUGE-1/2/L (p5)** are computed per pair and averaged (F-scores, x100). Words are
  ``str.split(" ")`` (single spaces: ``""`` is one empty word, a double space yields one too).
  ROUGE-N compares n-gram *sets* (a repeated word counts once); ROUGE-L is the sentence-level LCS
  F-measure with beta = P/R (not the balanced F1).

An empty reference is refused (its metric is undefined); an empty hypothesis is a legal, poor
output.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np


def check_pairs(generated: Sequence[str], references: Sequence[str]) -> None:
    """Refuse mismatched lengths, no pairs, and empty (or whitespace-only) references, naming the first."""
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} generated texts for {len(references)} references")
    if not references:
        raise ValueError("text metric of no pairs")
    for i, ref in enumerate(references):
        if not isinstance(ref, str) or not ref.strip():
            raise ValueError(f"reference {i} is empty: a text metric needs a non-empty reference")


def _ngram_counts(tokens: Sequence[str], max_order: int) -> Counter:
    counts: Counter = Counter()
    for order in range(1, max_order + 1):
        for i in range(len(tokens) - order + 1):
            counts[tuple(tokens[i : i + order])] += 1
    return counts


def compute_bleu(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]], max_order: int = 4) -> float:
    """Corpus BLEU of token lists, one reference each, no smoothing (TF-NMT ``compute_bleu``), in [0, 1].

        p_n  = sum_pairs |ngrams_n(hyp) & ngrams_n(ref)| (clipped counts) / sum_pairs max(0, |hyp| - n + 1)
        BLEU = BP * exp( (1/N) sum_{n=1..N} log p_n ),  0 if any p_n = 0
        BP   = 1 if c > r else exp(1 - r / c),  c = sum |hyp|,  r = sum |ref|

    An order with no possible match anywhere has p_n = 0. Where c = 0 (every hypothesis empty)
    the original divides by zero; here BLEU is 0.
    """
    matches = [0] * max_order
    possible = [0] * max_order
    ref_len = hyp_len = 0
    for ref, hyp in zip(references, hypotheses):
        ref_len += len(ref)
        hyp_len += len(hyp)
        overlap = _ngram_counts(hyp, max_order) & _ngram_counts(ref, max_order)
        for ngram, count in overlap.items():
            matches[len(ngram) - 1] += count
        for order in range(1, max_order + 1):
            possible[order - 1] += max(0, len(hyp) - order + 1)
    precisions = [m / p if p > 0 else 0.0 for m, p in zip(matches, possible)]
    if hyp_len == 0 or min(precisions) <= 0:
        return 0.0
    geo_mean = math.exp(sum(math.log(p) for p in precisions) / max_order)
    ratio = hyp_len / ref_len
    bp = 1.0 if ratio > 1.0 else math.exp(1.0 - 1.0 / ratio)
    return geo_mean * bp


def bleu4_p5(generated: Sequence[str], references: Sequence[str]) -> float:
    """BLEU-4 (p5): :func:`compute_bleu` of whitespace tokens, x100."""
    check_pairs(generated, references)
    return 100.0 * compute_bleu([r.split() for r in references], [g.split() for g in generated], max_order=4)


def _words(text: str) -> list[str]:
    return text.split(" ")


def _ngram_set(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def rouge_n_pair(generated: str, reference: str, n: int) -> tuple[float, float, float]:
    """(F, P, R) of ROUGE-N on n-gram sets of one pair:

        P = |G & R| / |G|  (0 if G empty),  R = |G & R| / |R|  (0 if R empty),
        F = 2 P R / (P + R + 1e-8)
    with G, R the sets of word n-grams of the generated and reference text.
    """
    g, r = _ngram_set(_words(generated), n), _ngram_set(_words(reference), n)
    overlap = len(g & r)
    p = overlap / len(g) if g else 0.0
    rec = overlap / len(r) if r else 0.0
    return 2.0 * ((p * rec) / (p + rec + 1e-8)), p, rec


def lcs_length(x: Sequence[str], y: Sequence[str]) -> int:
    """Length of the longest common subsequence of two word lists (dynamic programming)."""
    prev = [0] * (len(y) + 1)
    for xi in x:
        cur = [0]
        for j, yj in enumerate(y, start=1):
            cur.append(prev[j - 1] + 1 if xi == yj else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_pair(generated: str, reference: str) -> tuple[float, float, float]:
    """(F, P, R) of sentence-level ROUGE-L of one pair:

        R = LCS / m,  P = LCS / n  (m, n: words of reference, generated),
        beta = P / (R + 1e-12),  F = (1 + beta^2) R P / (R + beta^2 P + 1e-12)
    """
    ref, gen = _words(reference), _words(generated)
    lcs = lcs_length(gen, ref)
    r, p = lcs / len(ref), lcs / len(gen)
    beta = p / (r + 1e-12)
    f = ((1 + beta**2) * r * p) / (r + (beta**2) * p + 1e-12)
    return f, p, r


def rouge_p5(generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L (p5): the mean over pairs of each pair's F-score, x100."""
    check_pairs(generated, references)
    pairs = list(zip(generated, references))
    return {
        "ROUGE-1": 100.0 * float(np.mean([rouge_n_pair(g, r, 1)[0] for g, r in pairs])),
        "ROUGE-2": 100.0 * float(np.mean([rouge_n_pair(g, r, 2)[0] for g, r in pairs])),
        "ROUGE-L": 100.0 * float(np.mean([rouge_l_pair(g, r)[0] for g, r in pairs])),
    }
