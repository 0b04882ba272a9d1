"""Explanation ground truth from review text: a documented, Sentires-like extraction.

P5, PETER and LLMRec take one (feature, opinion, sentence) tuple per review from the Sentires
phrase-level sentiment toolkit. Sentires is not available here, so this module approximates it
with three public, rule-based parts, and says so wherever its output is used:

1. **Sentences**: ``pysbd`` (rule-based sentence boundary detection, English, ``clean=False``);
   whitespace inside a sentence is collapsed, its text is otherwise kept as written.
2. **Feature words** come from the *training* reviews only (no valid/test text leaks into the
   vocabulary): lower-cased alphabetic tokens of at least ``min_feature_chars`` letters that are
   neither English stop words (scikit-learn's list) nor sentiment words (the VADER lexicon),
   ranked by document frequency over the training reviews (ties alphabetical); the top
   ``n_features`` are the aspect terms. Sentires finds noun-phrase aspects with a parser; this
   frequency list also admits frequent non-aspect words.
3. **Sentiment**: VADER's compound score of the sentence; ``|compound| >= sentiment_threshold``
   (VADER's own neutral band is 0.05) counts as carrying sentiment.

An explanation is a sentence of ``min_words``..``max_words`` whitespace words that names a feature
word and carries sentiment. Each review with at least one such (feature, sentence) pair gets one
seeded pick among them (stream ``[seed, part index]``, so each part's picks are independent of the
others'); a review with none is left out, and the counts are reported.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

PARTS = ("train", "valid", "test")
WORD = re.compile(r"[a-z]+")
COLUMNS = ("user_id", "item_id", "rating", "feature", "explanation", "review_row")


@dataclass(frozen=True)
class ExtractionConfig:
    """The extraction's knobs (no defaults here: the config schema will hold the one default of each)."""

    n_features: int
    min_feature_chars: int
    min_words: int
    max_words: int
    sentiment_threshold: float
    seed: int


def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def tokens(text: str) -> list[str]:
    """Lower-cased alphabetic tokens of a text."""
    return WORD.findall(text.lower())


def feature_vocabulary(train_reviews: Iterable[str], cfg: ExtractionConfig, sentiment_words: set[str]) -> list[str]:
    """The ``n_features`` most frequent aspect-term candidates (by document frequency) of the training reviews."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    df: Counter = Counter()
    for review in train_reviews:
        df.update({t for t in tokens(review or "") if len(t) >= cfg.min_feature_chars})
    eligible = [(w, n) for w, n in df.items() if w not in ENGLISH_STOP_WORDS and w not in sentiment_words]
    eligible.sort(key=lambda wn: (-wn[1], wn[0]))
    return [w for w, _ in eligible[: cfg.n_features]]


def explanation_candidates(review: str, features: set[str], segmenter, analyzer, cfg: ExtractionConfig) -> list[tuple[str, str]]:
    """Every (feature, sentence) pair of a review: the sentence has min..max words, names the
    feature and has |VADER compound| >= threshold; in sentence order, features alphabetical."""
    out: list[tuple[str, str]] = []
    for raw in segmenter.segment(review or ""):
        sentence = " ".join(raw.split())
        if not cfg.min_words <= len(sentence.split()) <= cfg.max_words:
            continue
        named = sorted(features.intersection(tokens(sentence)))
        if not named or abs(analyzer.polarity_scores(sentence)["compound"]) < cfg.sentiment_threshold:
            continue
        out.extend((f, sentence) for f in named)
    return out


def extract_explanations(parts: dict[str, pl.DataFrame], cfg: ExtractionConfig) -> tuple[dict[str, pl.DataFrame], dict]:
    """One explanation per review of each split part (columns ``COLUMNS``; ``review_row`` is the
    review's row in its part) and the counts: reviews, explained, left out, features."""
    missing = [p for p in PARTS if p not in parts]
    if missing:
        raise ValueError(f"explanation extraction needs split parts {missing}")
    for name, frame in parts.items():
        absent = [c for c in ("user_id", "item_id", "rating", "review") if c not in frame.columns]
        if absent:
            raise ValueError(f"split part {name} lacks columns {absent} (a dataset with review text is needed)")
    segmenter, analyzer = _segmenter(), _analyzer()
    features = feature_vocabulary(parts["train"]["review"].to_list(), cfg, set(analyzer.lexicon))
    feature_set = set(features)
    out: dict[str, pl.DataFrame] = {}
    counts: dict[str, dict[str, int]] = {}
    for index, name in enumerate(PARTS):
        frame = parts[name]
        rng = np.random.default_rng([cfg.seed, index])
        rows: list[tuple] = []
        for row, (user, item, rating, review) in enumerate(
            zip(frame["user_id"].to_list(), frame["item_id"].to_list(), frame["rating"].to_list(), frame["review"].to_list())
        ):
            found = explanation_candidates(review, feature_set, segmenter, analyzer, cfg)
            if found:
                feature, sentence = found[int(rng.integers(len(found)))]
                rows.append((user, item, rating, feature, sentence, row))
        out[name] = pl.DataFrame(
            rows, schema={"user_id": pl.Int32, "item_id": pl.Int32, "rating": pl.Float32, "feature": pl.Utf8,
                          "explanation": pl.Utf8, "review_row": pl.Int32}, orient="row",
        )
        counts[name] = {"reviews": frame.height, "explained": len(rows), "left_out": frame.height - len(rows)}
    stats = {"method": "Sentires-like (pysbd sentences, train-frequency feature words, VADER sentiment)",
             "config": cfg.__dict__, "n_features": len(features), "features": features, "parts": counts}
    return out, stats


def feature_hits(explanations: Sequence[str], features: Sequence[str]) -> int:
    """How many texts name their paired feature word (a check of extraction and, later, of generations)."""
    return sum(f in tokens(text) for text, f in zip(explanations, features))
