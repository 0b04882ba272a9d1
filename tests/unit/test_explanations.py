"""The Sentires-like explanation extraction: train-only feature vocabulary, sentence rules, seeded
one-per-review picks, counts of left-out reviews."""

import polars as pl
import pytest

from llmrecbench.data.explanations import ExtractionConfig, extract_explanations, feature_vocabulary


def config(**changes):
    base = {"n_features": 200, "min_feature_chars": 3, "min_words": 4, "max_words": 30, "sentiment_threshold": 0.05, "seed": 2022}
    return ExtractionConfig(**{**base, **changes})

TRAIN = [
    "The smell is wonderful. I bought it on Monday.",
    "This shampoo has a great smell and leaves hair soft.",
    "The bottle leaked everywhere, terrible packaging for a shampoo.",
    "Ok.",
]
VALID = ["The smell is awful and the bottle is ugly.", "It arrived."]
TEST = ["I hate the smell of this shampoo so much.", "The zebrafeature is absolutely amazing and great."]


def part(texts, first_user=0):
    n = len(texts)
    return pl.DataFrame({
        "user_id": pl.Series(range(first_user, first_user + n), dtype=pl.Int32),
        "item_id": pl.Series([0] * n, dtype=pl.Int32),
        "rating": pl.Series([5.0] * n, dtype=pl.Float32),
        "review": texts,
    })


def parts():
    return {"train": part(TRAIN), "valid": part(VALID, 10), "test": part(TEST, 20)}


def test_feature_vocabulary_is_train_only_without_stop_or_sentiment_words():
    cfg = config(n_features=3)
    vocab = feature_vocabulary(TRAIN, cfg, sentiment_words={"great", "wonderful", "terrible", "soft"})
    # document frequency: shampoo 2, smell 2; then 1-review words alphabetically (bottle first)
    assert vocab == ["shampoo", "smell", "bottle"]
    assert "the" not in feature_vocabulary(TRAIN, config(), set())


def test_extraction_rules_counts_and_determinism():
    out, stats = extract_explanations(parts(), config(min_words=3))
    assert stats["parts"]["train"] == {"reviews": 4, "explained": 3, "left_out": 1}  # "Ok." has no sentence
    # valid: the awful-smell sentence carries sentiment; "It arrived." names no feature
    assert out["valid"]["explanation"].to_list() == ["The smell is awful and the bottle is ugly."]
    assert out["valid"]["review_row"].to_list() == [0]
    # a word seen only in the test text is never a feature
    assert "zebrafeature" not in stats["features"]
    assert out["test"]["feature"].to_list()[0] in {"smell", "shampoo"}
    for name, frame in out.items():
        for text, feature in zip(frame["explanation"], frame["feature"]):
            assert feature in text.lower()
    again, _ = extract_explanations(parts(), config(min_words=3))
    assert all(again[p].equals(out[p]) for p in out)
    # the neutral sentence "I bought it on Monday." is never picked
    assert all("Monday" not in t for t in out["train"]["explanation"])


def test_extraction_needs_review_text():
    bad = {p: f.drop("review") for p, f in parts().items()}
    with pytest.raises(ValueError, match="lacks columns \\['review'\\]"):
        extract_explanations(bad, config())
