"""Text-generation models and data of the explanation / review tasks: PETER's mask, vocabulary,
training and decoding, the item-retrieval floor, the lead baseline, the generations check and the
reference-overlap audit."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from llmrecbench.data.text_pairs import TextPairs, reference_overlap
from llmrecbench.errors import ConfigError, InputError
from llmrecbench.models.registry import create_model
from llmrecbench.models.text.base import TextModel
from llmrecbench.models.text.peter import BOS, EOS, PAD, SPECIALS, build_vocabulary, peter_mask
from llmrecbench.pipelines.text import check_generations, generations_frame

PETER_SMALL = dict(
    vocab_size=50, d_model=32, n_heads=2, d_ff=64, n_layers=1, dropout=0.0, max_words=6, feature_hint=False,
    rating_weight=0.1, context_weight=1.0, text_weight=1.0,
)


def pairs(users, items, refs, features=None, sources=None, ratings=None) -> TextPairs:
    return TextPairs(
        users=list(users), items=list(items), ratings=list(ratings or [4.0] * len(refs)), sources=sources,
        references=list(refs), features=features, path="fixture.parquet",
    )


def test_peter_mask_is_causal_except_user_sees_item():
    # True = blocked; row = query position, column = key position
    want = torch.tensor(
        [
            [False, False, True, True],
            [False, False, True, True],
            [False, False, False, True],
            [False, False, False, False],
        ]
    )
    assert torch.equal(peter_mask(4), want)


def test_vocabulary_features_first_then_frequency_then_alphabetical():
    train = pairs([0, 1, 2], [0, 0, 1], ["b a a", "c b a", "zeta"], features=["zeta", "a", "a"])
    # features sorted (a, zeta); then by count: a (3), b (2), c (1) / zeta (1) alphabetical; no repeats
    assert build_vocabulary(train, vocab_size=10) == ["a", "zeta", "b", "c"]
    assert build_vocabulary(train, vocab_size=1) == ["a", "zeta"]  # the most frequent word is already a feature
    assert not set(build_vocabulary(train, 10)) & set(SPECIALS)


def test_peter_training_examples_bos_words_eos_padded():
    train = pairs([0, 1], [0, 1], ["good soap", "a b c d e f g h"])
    model = create_model("peter", 2, 2, seed=0, vocab=build_vocabulary(train, 50), **PETER_SMALL)
    ex = model.training_examples(train)
    assert ex["text"].shape == (2, PETER_SMALL["max_words"] + 2)
    first = ex["text"][0].tolist()
    assert first[0] == BOS and first[3] == EOS and set(first[4:]) == {PAD}
    assert [model.words[k] for k in first[1:3]] == ["good", "soap"]
    assert ex["text"][1, -1].item() == EOS  # cut to max_words, then <eos>


@pytest.mark.parametrize("hint", [False, True])
def test_peter_learns_each_pairs_explanation_and_round_trips(tmp_path, hint):
    """Three pairs that only user/item (or the feature) tell apart: after training, greedy decoding
    writes each one's explanation exactly, and a saved + loaded model writes the same."""
    refs = ["great smell lasts long", "too greasy for me", "cheap but works"]
    train = pairs([0, 1, 2], [0, 1, 2], refs, features=["smell", "greasy", "cheap"])
    hp = {**PETER_SMALL, "feature_hint": hint}
    model = create_model("peter", 3, 3, seed=0, vocab=build_vocabulary(train, 50), **hp)
    ex = model.training_examples(train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    model.train()
    for _ in range(150):
        opt.zero_grad()
        loss = model.training_loss(ex)
        loss.backward()
        opt.step()
    assert model.generate(train) == refs
    model.save(tmp_path / "peter.pt")
    again = TextModel.load(tmp_path / "peter.pt")
    assert type(again).__name__ == "PETER" and again.generate(train) == refs


NRT_SMALL = dict(vocab_size=50, d_emb=32, d_hidden=48, n_mlp=2, dropout=0.0, max_words=6, rating_weight=0.1, text_weight=1.0)


def test_nrt_learns_each_pairs_explanation_and_round_trips(tmp_path):
    refs = ["great smell lasts long", "too greasy for me", "cheap but works"]
    train = pairs([0, 1, 2], [0, 1, 2], refs, ratings=[5.0, 1.0, 3.0])
    model = create_model("nrt", 3, 3, seed=0, vocab=build_vocabulary(train, 50), **NRT_SMALL)
    ex = model.training_examples(train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        opt.zero_grad()
        model.training_loss(ex).backward()
        opt.step()
    assert model.generate(train) == refs
    rating, _ = model.encode(ex["user"], ex["item"])
    assert torch.allclose(rating, ex["rating"], atol=0.5)  # the rating head learns too
    model.save(tmp_path / "nrt.pt")
    assert TextModel.load(tmp_path / "nrt.pt").generate(train) == refs
    with pytest.raises(ConfigError, match="nrt: unknown loss 'peter'"):
        model.training_loss(ex, loss="peter")


def test_peter_feature_hint_needs_features():
    train = pairs([0], [0], ["fine"], features=None)
    model = create_model("peter", 1, 1, seed=0, vocab=["fine"], **{**PETER_SMALL, "feature_hint": True})
    with pytest.raises(ConfigError, match="feature_hint needs feature words"):
        model.training_examples(train)


def test_peter_refuses_ids_beyond_its_tables():
    model = create_model("peter", 2, 2, seed=0, vocab=["x"], **PETER_SMALL)
    with pytest.raises(ConfigError, match="exceed the model's 2 users x 2 items"):
        model.training_examples(pairs([5], [0], ["x"]))


def test_item_retrieval_picks_the_item_text_nearest_its_centroid(tmp_path):
    # item 0: "soft hair" shares words with both others, so it is nearest their TF-IDF centroid
    train = pairs([0, 1, 2, 3], [0, 0, 0, 1], ["soft hair", "soft skin", "hair shine", "nice box"])
    model = create_model("item_retrieval", 4, 3, seed=0)
    model.fit_closed_form(train)
    test = pairs([3, 1, 0], [0, 1, 2], ["r", "r", "r"])
    out = model.generate(test)
    assert out[0] == "soft hair" and out[1] == "nice box"
    assert out[2] in {"soft hair", "soft skin", "hair shine", "nice box"}  # unseen item: the global centroid's
    model.save(tmp_path / "m.pt")
    assert TextModel.load(tmp_path / "m.pt").generate(test) == out


def test_lead_first_sentence_cut_to_median_summary_length(tmp_path):
    train = pairs([0, 1, 2], [0, 0, 0], ["one two", "a b c", "x y z w"])  # median 3 words
    model = create_model("lead", 3, 1, seed=0)
    model.fit_closed_form(train)
    test = pairs([0, 1], [0, 0], ["r", "r"], sources=["Love it so much. Second sentence here.", "Dr. Smith's cream is fine. Yes."])
    assert model.generate(test) == ["Love it so", "Dr. Smith's cream"]  # pysbd keeps "Dr." inside the sentence
    model.save(tmp_path / "lead.pt")
    assert TextModel.load(tmp_path / "lead.pt").generate(test) == ["Love it so", "Dr. Smith's cream"]
    with pytest.raises(ConfigError, match="summarises the review text"):
        model.generate(pairs([0], [0], ["r"]))


def test_check_generations_refuses_rows_that_are_not_the_test_part():
    test = pairs([0, 1], [2, 3], ["ref a", "ref b"])
    good = generations_frame(test, ["gen a", "gen b"])
    check_generations(good, test, "g.parquet")
    with pytest.raises(InputError, match=r"g.parquet: 1 generations for the 2 pairs"):
        check_generations(good.head(1), test, "g.parquet")
    swapped = good.with_columns(pl.Series("item_id", [3, 2], dtype=pl.Int32))
    with pytest.raises(InputError, match=r"row 0: item_id 3 does not match the test split's 2"):
        check_generations(swapped, test, "g.parquet")
    with pytest.raises(InputError, match="generations are null"):
        check_generations(good.with_columns(pl.Series("generated", [None, "x"], dtype=pl.String)), test, "g.parquet")


def test_reference_overlap_counts_verbatim_train_references():
    parts = {
        "train": pl.DataFrame({"user_id": [0, 1], "summary": ["Great product", "Smells nice "]}),
        "valid": pl.DataFrame({"user_id": [2], "summary": ["Other"]}),
        "test": pl.DataFrame({"user_id": [0, 1, 3], "summary": [" Great product", "Smells nice", "Smells nice"]}),
    }
    assert reference_overlap(parts, "summary") == {
        "valid": {"references": 1, "in_train": 0, "in_train_same_user": 0},
        "test": {"references": 3, "in_train": 3, "in_train_same_user": 2},
    }


def test_rescore_cli_recomputes_a_cell_and_refuses_foreign_rows(tmp_path, capsys):
    import json

    from llmrecbench.cli import main
    from llmrecbench.metrics.text_library import text_metrics

    test = pl.DataFrame({"user_id": [0, 1], "item_id": [2, 3], "rating": [5.0, 1.0], "summary": ["Great smell", "Too oily"],
                         "review": ["Great smell, lasts.", "Too oily for me."]})
    test.write_parquet(tmp_path / "test.parquet")
    rows = pl.DataFrame({"user_id": [0, 1], "item_id": [2, 3], "reference": ["Great smell", "Too oily"], "generated": ["Great smell", "oily"]})
    rows.write_parquet(tmp_path / "generations.parquet")
    args = ["rescore", str(tmp_path / "generations.parquet"), "--task", "review", "--test", str(tmp_path / "test.parquet")]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == pytest.approx(text_metrics(["Great smell", "oily"], ["Great smell", "Too oily"]))
    rows.reverse().write_parquet(tmp_path / "generations.parquet")
    assert main(args) == 1
    assert "row 0: user_id 1 does not match the test split's 0" in capsys.readouterr().err


def test_reviews_without_text_and_empty_references_are_one_line(tmp_path):
    from llmrecbench.data.text_pairs import check_review_text, read_pairs

    no_text = {"train": pl.DataFrame({"user_id": [0], "item_id": [0], "rating": [5.0]})}
    with pytest.raises(InputError, match=r"train.parquet: has no review text \(column 'review'\)"):
        check_review_text(no_text, {"train": "train.parquet"})
    blank = {"test": pl.DataFrame({"user_id": [0, 1], "review": ["  ", None]})}
    with pytest.raises(InputError, match="test.parquet: every review text is blank"):
        check_review_text(blank, {"test": "test.parquet"})
    path = tmp_path / "test.parquet"
    pl.DataFrame({"user_id": [0, 1], "item_id": [0, 1], "rating": [5.0, 4.0], "summary": ["ok", " "]}).write_parquet(path)
    with pytest.raises(InputError, match=r"test.parquet: row 1: empty reference \('summary'\); 1 such rows"):
        read_pairs(path, "summary")
    with pytest.raises(InputError, match=r"lacks columns \['review'\]"):
        read_pairs(path, "summary", source="review")
