"""The papers' BLEU/ROUGE (metrics.text_p5) against hand-computed values, including the cases where
they differ from sacrebleu / rouge-score (metrics.text_library)."""

import math

import numpy as np
import pytest

from llmrecbench.metrics.text_library import bleu4_sacrebleu, mean_cosine, rouge_rouge_score, text_metrics
from llmrecbench.metrics.text_p5 import bleu4_p5, lcs_length, rouge_l_pair, rouge_n_pair, rouge_p5

F1_EPS = 1e-8


def f1(p, r):
    return 2 * p * r / (p + r + F1_EPS)


def test_bleu_single_pair_by_hand():
    # 1-grams: the (clipped to 1), cat, sat, on, mat = 5/6; 2-grams 3/5; 3-grams 2/4; 4-grams 1/3; BP = 1
    value = bleu4_p5(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert value == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-9)


def test_bleu_is_corpus_level_with_brevity_penalty():
    gen = ["the cat sat on the mat", "a b"]
    ref = ["the cat sat on a mat", "a b c d"]
    # pooled counts: 1-grams 7/8, 2-grams 4/6, 3-grams 2/4 (the short pair has no 3-gram), 4-grams 1/3;
    # c = 8, r = 10 -> BP = exp(1 - 10/8)
    expected = 100 * (7 / 8 * 4 / 6 * 2 / 4 * 1 / 3) ** 0.25 * math.exp(1 - 10 / 8)
    assert bleu4_p5(gen, ref) == pytest.approx(expected, abs=1e-9)
    sentence_mean = np.mean([bleu4_p5([g], [r]) for g, r in zip(gen, ref)])
    assert abs(bleu4_p5(gen, ref) - sentence_mean) > 1.0


def test_bleu_no_smoothing_and_case_and_punctuation():
    # no 4-gram matches anywhere -> 0 without smoothing, while sacrebleu smooths to a positive value
    assert bleu4_p5(["great smell and nice"], ["great smell but nice"]) == 0.0
    assert bleu4_sacrebleu(["great smell and nice"], ["great smell but nice"]) > 0.0
    # "Great" != "great" and "mat." != "mat" for whitespace tokens
    assert bleu4_p5(["Great the cat sat on the mat."], ["great the cat sat on the mat"]) < 100.0
    assert bleu4_p5(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert bleu4_p5([""], ["a b c d"]) == 0.0


def test_rouge_punctuation_attached_to_words():
    # p5 words: {great, smell.} vs {great, smell}: 1 shared unigram of 2 -> P = R = 1/2
    assert rouge_n_pair("great smell.", "great smell", 1)[0] == pytest.approx(f1(0.5, 0.5))
    assert rouge_p5(["great smell."], ["great smell"])["ROUGE-1"] == pytest.approx(100 * f1(0.5, 0.5))
    # rouge-score drops the punctuation: a perfect match
    assert rouge_rouge_score(["great smell."], ["great smell"])["ROUGE-1"] == pytest.approx(100.0)


def test_rouge_repeated_words_count_once_in_p5():
    # p5 sets: {good} vs {good, product}: P = 1, R = 1/2
    f, p, r = rouge_n_pair("good good good", "good product", 1)
    assert (p, r) == (1.0, 0.5) and f == pytest.approx(f1(1.0, 0.5))
    # rouge-score counts: min(3, 1) = 1 shared of 3 generated and 2 reference unigrams
    lib = rouge_rouge_score(["good good good"], ["good product"])["ROUGE-1"]
    assert lib == pytest.approx(100 * 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))


def test_rouge_l_beta_is_precision_over_recall():
    # LCS 2, m = 4 reference words, n = 2 generated: R = 1/2, P = 1, beta = 2
    f, p, r = rouge_l_pair("good product", "good product here now")
    assert (p, r) == (1.0, 0.5)
    beta = p / (r + 1e-12)
    assert f == pytest.approx((1 + beta**2) * r * p / (r + beta**2 * p + 1e-12))
    assert f == pytest.approx(2.5 / 4.5, abs=1e-9)  # not the balanced F1 of 2/3
    assert rouge_rouge_score(["good product"], ["good product here now"])["ROUGE-L"] == pytest.approx(100 * 2 / 3)


def test_rouge_is_a_mean_over_pairs_and_words_split_on_single_spaces():
    out = rouge_p5(["a b", "x"], ["a b", "y"])
    assert out["ROUGE-1"] == pytest.approx(100 * (f1(1, 1) + 0) / 2)
    assert out["ROUGE-2"] == pytest.approx(100 * (f1(1, 1) + 0) / 2)  # "x"/"y" have no bigram: P = R = 0
    # a double space is an empty word of its own in the papers' code
    assert rouge_n_pair("a  b", "a b", 1)[1] == pytest.approx(2 / 3)
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4


def test_bad_pairs_are_refused():
    with pytest.raises(ValueError, match="reference 1 is empty"):
        bleu4_p5(["a", "b"], ["a", "  "])
    with pytest.raises(ValueError, match="2 generated texts for 1 references"):
        rouge_p5(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no pairs"):
        text_metrics([], [])


def test_text_metrics_columns_and_cosine():
    vec = {"good": [1.0, 0.0], "fine": [0.6, 0.8], "bad": [0.0, 1.0]}
    cols = text_metrics(["good", "bad"], ["fine", "fine"], encode=lambda texts: np.array([vec[t] for t in texts]))
    assert list(cols) == [
        "BLEU-4 (p5)", "ROUGE-1 (p5)", "ROUGE-2 (p5)", "ROUGE-L (p5)", "BLEU-4 (sacrebleu)",
        "ROUGE-1 (rouge-score)", "ROUGE-2 (rouge-score)", "ROUGE-L (rouge-score)", "cosine (sentence encoder)",
    ]
    assert cols["cosine (sentence encoder)"] == pytest.approx((0.6 + 0.8) / 2)
    assert mean_cosine(np.zeros((1, 2)), np.ones((1, 2))) == 0.0
    with pytest.raises(ValueError, match="equal"):
        mean_cosine(np.ones((2, 2)), np.ones((3, 2)))


def test_bleu_p5_equals_nltk_corpus_bleu_where_every_order_matches():
    # an independent implementation of the same unsmoothed corpus BLEU-4 (one reference each)
    from nltk.translate.bleu_score import corpus_bleu

    rng = np.random.default_rng(0)
    words = ["good", "smell", "nice", "skin", "soft", "the", "is", "very"]
    refs = [" ".join(rng.choice(words, size=rng.integers(5, 12))) for _ in range(40)]
    gens = [" ".join(r.split()[: max(4, len(r.split()) - 2)] + list(rng.choice(words, size=2))) for r in refs]
    expected = 100 * corpus_bleu([[r.split()] for r in refs], [g.split() for g in gens])
    assert bleu4_p5(gens, refs) == pytest.approx(expected, rel=1e-9)
