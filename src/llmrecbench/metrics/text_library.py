"""Text-generation metrics from the standard libraries, beside the papers' own
(:mod:`llmrecbench.metrics.text_p5`), plus a semantic column neither has.

* **BLEU-4 (sacrebleu)**: ``sacrebleu.corpus_bleu`` with its defaults (13a tokenizer, exp
  smoothing, one reference stream), already x100.
* **ROUGE-1/2/L (rouge-score)**: Google's ``rouge_score.RougeScorer`` with the Porter stemmer, its
  own tokenizer (lower-cased, non-alphanumerics dropped), n-gram *counts* and balanced F1; the
  mean over pairs of the F-measure, x100.
* **cosine (sentence encoder)**: mean over pairs of cos(e(generated), e(reference)) under the
  project's sentence encoder, which credits paraphrases that share no n-gram.

Column names :func:`text_metrics` returns (one table cell's metrics) name their implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llmrecbench.metrics.text_p5 import bleu4_p5, check_pairs, rouge_p5

ROUGE_KEYS = {"ROUGE-1": "rouge1", "ROUGE-2": "rouge2", "ROUGE-L": "rougeL"}


def bleu4_sacrebleu(generated: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu corpus BLEU with its default settings (0-100)."""
    import sacrebleu

    check_pairs(generated, references)
    return float(sacrebleu.corpus_bleu(list(generated), [list(references)]).score)


def rouge_rouge_score(generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean F-measure x100 of rouge-score's ROUGE-1/2/L (``use_stemmer=True``)."""
    from rouge_score import rouge_scorer

    check_pairs(generated, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS.values()), use_stemmer=True)
    scores = [scorer.score(ref, gen) for gen, ref in zip(generated, references)]  # score(target, prediction)
    return {name: 100.0 * float(np.mean([s[key].fmeasure for s in scores])) for name, key in ROUGE_KEYS.items()}


def mean_cosine(generated_vectors: np.ndarray, reference_vectors: np.ndarray) -> float:
    """(1/N) sum_i <g_i, r_i> / (|g_i| |r_i|) over paired rows (a zero row has cosine 0)."""
    g = np.asarray(generated_vectors, dtype=np.float64)
    r = np.asarray(reference_vectors, dtype=np.float64)
    if g.shape != r.shape or g.ndim != 2 or g.shape[0] == 0:
        raise ValueError(f"cosine of paired vectors needs two equal [N, d] arrays, N > 0; got {g.shape} and {r.shape}")
    norms = np.linalg.norm(g, axis=1) * np.linalg.norm(r, axis=1)
    dots = (g * r).sum(axis=1)
    return float(np.mean(np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)))


def text_metrics(
    generated: Sequence[str], references: Sequence[str], encode: Callable[[list[str]], np.ndarray] | None = None
) -> dict[str, float]:
    """Every metric column of a text-generation cell: the papers' (p5) and the libraries' values side
    by side, plus the sentence-encoder cosine when ``encode`` (texts -> [N, d] vectors) is given."""
    check_pairs(generated, references)
    out = {"BLEU-4 (p5)": bleu4_p5(generated, references)}
    out.update({f"{k} (p5)": v for k, v in rouge_p5(generated, references).items()})
    out["BLEU-4 (sacrebleu)"] = bleu4_sacrebleu(generated, references)
    out.update({f"{k} (rouge-score)": v for k, v in rouge_rouge_score(generated, references).items()})
    if encode is not None:
        out["cosine (sentence encoder)"] = mean_cosine(encode(list(generated)), encode(list(references)))
    return out
