"""LLM rows of the rating and direct tasks, below the DAG: templates, prompt records, the rating
answer reader and N/A policy, P5's yes/no margin, the per-user candidate trie, and a direct cell
scored by a stand-in LM whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from llmrecbench.data.ratings import RatingData
from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError
from llmrecbench.llm.prompts import TEMPLATES, ItemCatalog, build_prompts, get_template, seen_templates, unseen_templates
from llmrecbench.llm.readers import read_item_number, read_rating, yes_logit_margin, yes_no_token_ids
from llmrecbench.llm.task_prompts import direct_prompts, rating_prompts, rating_text


# --------------------------------------------------------------------------- answer reader


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("4", 4.0),
        ("Rating: 4.5 stars", 4.5),
        ("I would say four.", 4.0),
        ("5/5", 5.0),  # the first number is 5
        ("1 being lowest, I give 3", 1.0),  # the first number, not the 'best' one
        ("10/10", None),  # outside the scale: N/A, not clipped to 5
        ("0", None),
        ("I cannot tell", None),
        ("", None),
        ("version2 is 3", 3.0),  # digits glued to a word are not a number
    ],
)
def test_rating_reader_takes_the_first_number_inside_the_scale(answer, expected):
    assert read_rating(answer) == expected


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("1011", 1011),
        ("item 1011", 1011),
        (" 4475, 4476", 4475),  # the first number: one item per beam
        ("10.5", None),  # not a whole number
        ("12102", None),  # past the last index
        ("0", None),  # indices are 1-based
        ("<item_5> then 7", 7),  # digits glued to a word are not a number
        ("none", None),
        ("", None),
    ],
)
def test_item_number_reader_takes_the_first_whole_index_in_range(answer, expected):
    assert read_item_number(answer, 12101) == expected


def test_rating_target_text_keeps_half_stars():
    assert rating_text(4.0) == "4" and rating_text(3.5) == "3.5" and read_rating(rating_text(3.5)) == 3.5


def test_filled_metrics_put_the_train_mean_in_for_na():
    from llmrecbench.llm.rating_rows import filled_metrics

    pred = np.array([4.0, np.nan, 2.0])
    parsed = np.array([True, False, True])
    target = np.array([5.0, 3.0, 2.0])
    m = filled_metrics(pred, parsed, target, train_mean=4.0)
    # errors 1, 1 (mean 4 vs 3), 0 -> RMSE sqrt(2/3), MAE 2/3
    assert m["RMSE_na_as_mean"] == pytest.approx(math.sqrt(2 / 3)) and m["MAE_na_as_mean"] == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- yes / no


class ToyTokenizer:
    """Words -> fixed ids; enough for yes_no_token_ids and the stand-in LM below."""

    VOCAB = {"yes": 1, "Yes": 2, "no": 3, "No": 4}
    unk_token_id = 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [self.VOCAB.get(w, 5) for w in text.split()]}

    def convert_tokens_to_ids(self, tokens):
        return [100 + int(t[6:-1]) for t in tokens]  # "<item_i>" -> 100 + i


def test_yes_no_margin_is_log_p_yes_minus_log_p_no_over_variants():
    yes, no = yes_no_token_ids(ToyTokenizer())
    assert (yes, no) == ([1, 2], [3, 4])
    logits = torch.tensor([[0.0, 2.0, 1.0, 0.5, -1.0, 0.0]])
    logp = torch.log_softmax(logits, -1)[0]
    expected = torch.logaddexp(logp[1], logp[2]) - torch.logaddexp(logp[3], logp[4])
    assert yes_logit_margin(logits, yes, no).item() == pytest.approx(expected.item(), abs=1e-6)


class StandInLM:
    """A causal LM whose yes-logit for a prompt about ``<item_i>`` is ``i / 100``: P(yes) grows with
    the item id, so the ranking every candidate should get is known by construction."""

    prefix_cacheable = True  # as CausalLM: a plain causal LM whose shared prompt prefix may be cached

    def __init__(self):
        self.tok = ToyTokenizer()
        self.device = torch.device("cpu")
        self.V = 2000

    def prompt_ids(self, prompt, extra_turns=()):
        import re

        asked = re.findall(r"<item_(\d+)>", prompt)  # the asked item comes after the history
        return [100 + int(asked[-1]) if asked else 5]

    def left_pad(self, seqs):
        return torch.tensor([list(s) for s in seqs]), torch.ones((len(seqs), 1), dtype=torch.long)

    def forward(self, ids, mask, **kw):
        logits = torch.full((ids.shape[0], 1, self.V), -30.0)
        logits[:, 0, 3] = 0.0  # "no"
        logits[:, 0, 1] = (ids[:, -1].float() - 100) / 100  # "yes"
        return logits, None, mask


def _sequences():
    # 3 users over 30 items; whole sequences (train + valid + test)
    seqs = [[0, 1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12, 13, 14]]
    return LeaveOneOutSequences(
        user_ids=np.arange(3), train=[np.array(s[:-2]) for s in seqs],
        valid_target=np.array([s[-2] for s in seqs]), test_target=np.array([s[-1] for s in seqs]), n_items=30,
    ), seqs


def _catalog(repr_="unique_id"):
    return ItemCatalog([f"title {i}" for i in range(30)], item_repr=repr_)


def test_direct_cell_ranks_candidates_by_p_yes_and_recomputes():
    from llmrecbench.llm.decoding import DecodeConfig
    from llmrecbench.llm.direct_rows import direct_llm_cell
    from llmrecbench.metrics import ranking_metrics
    from llmrecbench.metrics.candidates import candidate_ranks

    data, _ = _sequences()
    cands = np.array([[4, 20, 29, 21], [8, 25, 3, 2], [14, 0, 1, 2]])  # target first; user 2's target has the top id
    rows = (np.arange(3), cands, cands[:, 0])
    records = direct_prompts(data, _catalog(), "yesno1", "test", candidates=rows)
    assert [r["candidates"] for r in records] == cands.tolist()
    import tempfile, pathlib

    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "test.parquet"
        path.write_bytes(b"candidates")
        cell, topk, timing = direct_llm_cell(
            StandInLM(), records, _catalog(), identity={"dataset": "toy", "model": "lm", "setting": "s", "seed": 1},
            spec={"setting": "yes/no"}, decode=DecodeConfig(pair_batch_size=5), options={"tie_seed": 7, "candidate_seed": 2022, "ks": [1, 2]},
            candidates_path=path, model_rec={"name": "stand-in"},
        )
    # P(yes) grows with the item id: ranks of the targets 4, 8, 14 among their candidates are 4, 2, 1
    assert topk["rank"].to_list() == [4, 2, 1]
    assert topk["ranked_candidates"].to_list()[0] == [29, 21, 20, 4]
    scores = np.array(topk["scores"].to_list())
    assert np.all(np.diff(scores, axis=1) <= 0)  # stored best first
    assert cell["metrics"] == ranking_metrics(candidate_ranks(cands / 100.0, cands, cands[:, 0], 7), [1, 2])
    assert cell["task"] == "direct" and cell["candidates"]["sha256"] and cell["extra_columns"]["na_rate"] == 0.0
    assert timing["n_users"] == 3


# --------------------------------------------------------------------------- templates and prompts


def test_every_template_belongs_to_one_task_and_seqrec_refuses_others():
    assert {t.task for t in TEMPLATES.values()} == {"seqrec", "rating", "direct", "explanation", "review", "ctr"}
    assert seen_templates("ctr") == ["ctr1"] and unseen_templates("ctr") == ["ctr2"]
    assert seen_templates("explanation") == ["expl1", "expl2", "expl_feature"] and unseen_templates("explanation") == ["expl3"]
    assert seen_templates("review") == ["review1", "review2", "review_plain"] and unseen_templates("review") == ["review3"]
    assert seen_templates("rating") == ["rate1", "rate2"] and unseen_templates("rating") == ["rate3", "rate_llmrec"]
    assert set(seen_templates("direct")) == {"direct1", "yesno1"}
    data, _ = _sequences()
    with pytest.raises(ConfigError, match="rating template"):
        build_prompts(data, _catalog("text"), "rate1", "test")


def test_rating_prompts_one_per_review_with_the_star_target():
    part = RatingData(users=np.array([0, 1]), items=np.array([3, 4]), ratings=np.array([5.0, 2.0]), n_users=2, n_items=30)
    recs = rating_prompts(part, _catalog("text"), "rate_llmrec", "test", category="Beauty")
    assert [(r["user_id"], r["item_id"], r["rating"], r["target"]) for r in recs] == [(0, 3, 5.0, "5"), (1, 4, 2.0, "2")]
    assert 'product_title: "title 3", and product_category: Beauty?' in recs[0]["prompt"]
    assert "Just give me back the exact number" in recs[0]["prompt"]
    ids = rating_prompts(part, _catalog("unique_id"), "rate1", "train")
    assert ids[0]["prompt"] == "What star rating do you think user_0 will give item <item_3>? (1 being lowest and 5 being highest)"
    with pytest.raises(ConfigError, match="unseen"):
        rating_prompts(part, _catalog("text"), "rate3", "train")
    with pytest.raises(ConfigError, match="direct template"):
        rating_prompts(part, _catalog("text"), "direct1", "test")


def test_direct_training_prompts_draw_negatives_outside_the_whole_sequence_seeded():
    data, seqs = _sequences()
    recs = direct_prompts(data, _catalog(), "direct1", "train", n_negatives=5, max_examples_per_user=2, seed=3)
    assert recs == direct_prompts(data, _catalog(), "direct1", "train", n_negatives=5, max_examples_per_user=2, seed=3)
    assert recs != direct_prompts(data, _catalog(), "direct1", "train", n_negatives=5, max_examples_per_user=2, seed=4)
    for r in recs:
        c = r["candidates"]
        assert len(c) == 6 == len(set(c)) and c.count(r["target_item_id"]) == 1
        negatives = set(c) - {r["target_item_id"]}
        assert not negatives & set(seqs[r["user_id"]])  # never an item of the user's whole sequence
        assert r["target"] == f"<item_{r['target_item_id']}>" and all(f"<item_{i}>" in r["prompt"] for i in c)
        # the target follows its history in the training sequence (no valid / test item is a target)
        train = list(data.train[r["user_id"]])
        assert r["target_item_id"] in train and r["history"] == train[: train.index(r["target_item_id"])][-10:]
    # at most 2 most recent positions per user (user 1 has a 2-item train sequence: one position)
    assert [sum(r["user_id"] == u for r in recs) for u in range(3)] == [2, 1, 2]


def test_yes_no_training_prompts_pair_each_yes_with_seeded_noes():
    data, seqs = _sequences()
    recs = direct_prompts(data, _catalog("text"), "yesno1", "train", negatives_per_positive=2, max_examples_per_user=1)
    yes = [r for r in recs if r["target"] == "yes"]
    no = [r for r in recs if r["target"] == "no"]
    assert len(yes) == 3 and len(no) == 6
    assert all(r["item_id"] not in seqs[r["user_id"]] for r in no)
    assert all(r["item_id"] == r["target_item_id"] and f'"title {r["item_id"]}"' in r["prompt"] for r in yes)
    assert get_template("yesno1").answer == "yes_no" and recs[0]["prompt"].endswith("Answer yes or no.")


def test_direct_eval_prompts_need_the_cached_candidates():
    data, _ = _sequences()
    with pytest.raises(ConfigError, match="candidate file"):
        direct_prompts(data, _catalog(), "direct1", "test")


# --------------------------------------------------------------------------- candidate trie


def test_restricted_decoder_holds_only_the_users_candidates():
    from llmrecbench.llm.item_decoding import ItemDecoder

    class Lm:
        tok = ToyTokenizer()

    dec = ItemDecoder(Lm(), ItemCatalog([f"t{i}" for i in range(30)], item_repr="unique_id"))
    sub = dec.restricted([7, 3, 21])
    assert sorted(item for _, item in sub.trie.items()) == [3, 7, 21] and len(dec.trie) == 30
    assert sub.trie.allowed_next([]) == [3, 7, 21] and sub.table is dec.table
    codes = np.array([[0, 1], [0, 2], [1, 0], [1, 1]])
    sem = ItemDecoder.__new__(ItemDecoder)
    sem.codes, sem.table, sem.depth = codes, None, 2
    sub = sem.restricted([1, 3])
    assert sub.trie.allowed_next([]) == [0, 1] and sub.trie.allowed_next([0]) == [2] and sub.trie.item_of([1, 1]) == 3


def test_settings_must_use_templates_of_their_task():
    from llmrecbench.config import check_setting_task
    from llmrecbench.tasks import get_task

    check_setting_task("ok", {"method": "lora", "template": "rate1"}, get_task("rating"))
    with pytest.raises(ConfigError, match="'seq1', a seqrec template; task rating reads rating answers"):
        check_setting_task("bad", {"method": "lora", "template": "seq1"}, get_task("rating"))
    with pytest.raises(ConfigError, match="'rate3', a rating template"):
        check_setting_task("bad", {"method": "lora", "template": "yesno1", "eval_template": "rate3"}, get_task("direct"))


class Answers:
    """A stand-in LM that answers the given texts in order (and '' to the warm-up)."""

    device = torch.device("cpu")

    def __init__(self, answers):
        self.answers = list(answers)

    def prompt_ids(self, prompt, extra_turns=()):
        return [0]

    def generate_text(self, prompts, max_new_tokens=1, **kw):
        if max_new_tokens == 1:
            return ["" for _ in prompts]
        out, self.answers = self.answers[: len(prompts)], self.answers[len(prompts) :]
        return out


def test_prediction_rows_hold_every_pair_with_the_parsed_flag():
    from llmrecbench.llm.decoding import DecodeConfig
    from llmrecbench.llm.rating_rows import rating_llm_cell

    part = RatingData(users=np.array([0, 1, 2, 2]), items=np.array([3, 4, 5, 6]), ratings=np.array([5.0, 2.0, 4.0, 1.0]),
                      n_users=3, n_items=30)
    recs = rating_prompts(part, _catalog("text"), "rate1", "test")
    cell, rows, _ = rating_llm_cell(
        Answers(["5", "three", "no idea", "4 stars"]), recs, identity={"dataset": "d", "model": "m", "setting": "s", "seed": 1},
        spec={"setting": "LoRA"}, decode=DecodeConfig(batch_size=3, na_status_threshold=0.5), options={"rating_range": [1.0, 5.0]},
        train_mean=3.0, model_rec={}, n_items=30,
    )
    assert rows["parsed"].to_list() == [True, True, False, True] and rows["prediction"].to_list() == [5.0, 3.0, None, 4.0]
    # parsed only: errors 0, 1, 3 -> RMSE sqrt(10/3), MAE 4/3; N/A as mean adds |3 - 4| = 1
    assert cell["metrics"]["RMSE"] == pytest.approx(math.sqrt(10 / 3)) and cell["metrics"]["MAE"] == pytest.approx(4 / 3)
    assert cell["extra_columns"]["na_rate"] == 0.25
    assert cell["extra_columns"]["RMSE_na_as_mean"] == pytest.approx(math.sqrt(11 / 4))
    assert "parsed answers only" in cell["protocol"]["na_policy"] and cell["status"] == "ok"
    cell, _, _ = rating_llm_cell(
        Answers(["?", "?", "?", "4"]), recs, identity={"dataset": "d", "model": "m", "setting": "s", "seed": 1},
        spec={"setting": "LoRA"}, decode=DecodeConfig(batch_size=4, na_status_threshold=0.5), options={"rating_range": [1.0, 5.0]},
        train_mean=3.0, model_rec={}, n_items=30,
    )
    assert cell["status"] == "n/a" and cell["metrics"] == {} and "75%" in cell["note"]
    assert isinstance(rows, pl.DataFrame)


# --------------------------------------------------------------------------- explanation / review


@pytest.mark.parametrize(
    "answer, expected",
    [
        ('Summary: "Great smell!"\nMore text', "Great smell!"),
        ("\n\n  Explanation - it   works well  ", "it works well"),
        ("\u201cLovely\u201d", "Lovely"),
        ('"unbalanced', '"unbalanced'),  # one quote is text, not a pair
        ("Title:", ""),
        ("", ""),
    ],
)
def test_sentence_reader_keeps_the_first_line_without_label_or_quotes(answer, expected):
    from llmrecbench.llm.readers import read_sentence

    assert read_sentence(answer) == expected


def _text_pairs(features=True, sources=False):
    from llmrecbench.data.text_pairs import TextPairs

    return TextPairs(
        users=[0, 1, 2], items=[3, 4, 5], ratings=[5.0, 2.0, 4.5],
        sources=["one two three four", "bad", "fine"] if sources else None,
        references=["smells great", "too oily", "works fine"], features=["smell", "oily", "works"] if features else None,
        path="test.parquet",
    )


def test_text_prompts_show_star_feature_and_cut_review():
    from llmrecbench.llm.task_prompts import text_prompts

    recs = text_prompts(_text_pairs(), _catalog("text"), "expl_feature", "test", "explanation", max_review_words=3)
    assert recs[2]["prompt"] == "Help user_2 generate a 4.5-star explanation about this feature: works for this product: \"title 5\""
    assert [r["target"] for r in recs] == ["smells great", "too oily", "works fine"] and [r["row"] for r in recs] == [0, 1, 2]
    assert recs[0]["feature"] == "smell" and recs[0]["item_id"] == 3
    review = text_prompts(_text_pairs(False, True), _catalog("unique_id"), "review1", "train", "review", max_review_words=3)
    assert review[0]["prompt"] == "Write a short sentence to summarize the following product review from user_0: one two three"
    with pytest.raises(ConfigError, match="shows a feature word"):
        text_prompts(_text_pairs(features=False), _catalog("text"), "expl_feature", "test", "explanation", max_review_words=3)
    with pytest.raises(ConfigError, match="unseen: it must not build training prompts"):
        text_prompts(_text_pairs(), _catalog("text"), "expl3", "train", "explanation", max_review_words=3)
    with pytest.raises(ConfigError, match="a review template, not a explanation one"):
        text_prompts(_text_pairs(), _catalog("text"), "review1", "test", "explanation", max_review_words=3)


def test_review_settings_need_no_item_text_and_explanation_ones_do():
    from llmrecbench.llm.settings import unavailable_reason

    assert unavailable_reason("all_beauty", ["rating", "review_text"], "zero_shot_review", {"method": "zeroshot", "template": "review1"}) is None
    why = unavailable_reason("all_beauty", ["rating", "review_text"], "zs", {"method": "zeroshot", "template": "expl1"})
    assert why.startswith("N/A: dataset all_beauty has no item text")


def test_text_cell_scores_read_answers_on_the_sampled_pairs():
    from llmrecbench.errors import InputError
    from llmrecbench.llm.decoding import DecodeConfig
    from llmrecbench.llm.task_prompts import text_prompts
    from llmrecbench.llm.text_rows import text_llm_cell
    from llmrecbench.metrics.text_library import text_metrics
    from llmrecbench.tasks import get_task

    task = get_task("explanation")
    test = _text_pairs()
    recs = text_prompts(test, _catalog("unique_id"), "expl1", "test", "explanation", max_review_words=5)
    sample = [recs[2], recs[0]]  # what llm.eval_users might pick, in its order
    cell, rows, timing = text_llm_cell(
        Answers(["Explanation: works fine\nand more", ""]), sample, task, test,
        identity={"dataset": "d", "model": "m", "setting": "s", "seed": 1}, spec={"setting": "LoRA"},
        decode=DecodeConfig(batch_size=2), encode=None, encoder_rec=None, model_rec={},
    )
    assert rows["generated"].to_list() == ["works fine", ""] and rows["reference"].to_list() == ["works fine", "smells great"]
    assert rows["answer"].to_list() == ["Explanation: works fine\nand more", ""] and rows["item_id"].to_list() == [5, 3]
    assert cell["metrics"] == text_metrics(["works fine", ""], ["works fine", "smells great"])
    assert cell["counters"]["empty_generations"] == 1 and cell["n_pairs"] == 2 and cell["task"] == "explanation"
    assert timing["n_users"] == 2
    forged = [{**recs[0], "target": "something else"}]
    with pytest.raises(InputError, match="row 0 does not match the prompt record"):
        text_llm_cell(Answers(["x"]), forged, task, test, identity={"dataset": "d", "model": "m", "setting": "s", "seed": 1},
                      spec={"setting": "LoRA"}, decode=DecodeConfig(batch_size=2), encode=None, encoder_rec=None, model_rec={})


# --------------------------------------------------------------------------- CTR


def _ctr_pairs():
    import polars as pl

    # user 0: clicks 29 and 25, skips 3; user 1: clicks 2, skips 28 (P(YES) grows with the item id)
    return pl.DataFrame(
        {"user_id": [0, 0, 0, 1, 1], "item_id": [29, 25, 3, 2, 28], "label": [1, 1, 0, 1, 0],
         "history": [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [5], [5]]},
        schema={"user_id": pl.Int32, "item_id": pl.Int32, "label": pl.Int8, "history": pl.List(pl.Int32)},
    )


def test_ctr_prompts_show_the_latest_history_and_answer_yes_or_no():
    from llmrecbench.llm.task_prompts import ctr_prompts

    records = ctr_prompts(_ctr_pairs(), _catalog(), "ctr1", "train", max_history=2)
    assert [r["target"] for r in records] == ["Yes", "Yes", "No", "Yes", "No"]
    assert records[0]["history"] == [3, 4] and "<item_3>, <item_4>" in records[0]["prompt"] and "<item_1>" not in records[0]["prompt"]
    assert records[0]["prompt"].endswith("Answer (Yes/No):") and "Candidate item: item <item_29>" in records[0]["prompt"]
    with pytest.raises(ConfigError, match="unseen"):
        ctr_prompts(_ctr_pairs(), _catalog(), "ctr2", "train", max_history=2)


def test_ctr_cell_scores_p_yes_and_recomputes():
    from llmrecbench.llm.ctr_rows import ctr_llm_cell
    from llmrecbench.llm.decoding import DecodeConfig
    from llmrecbench.llm.task_prompts import ctr_prompts
    from llmrecbench.metrics.ctr import ctr_metrics

    records = ctr_prompts(_ctr_pairs(), _catalog(), "ctr1", "test", max_history=20)
    cell, rows, timing = ctr_llm_cell(
        StandInLM(), records, identity={"dataset": "toy", "model": "lm", "setting": "s", "seed": 1},
        spec={"setting": "zero-shot"}, decode=DecodeConfig(pair_batch_size=2), model_rec={"name": "stand-in"}, n_items=30,
    )
    expected = 1 / (1 + np.exp(-np.array([29, 25, 3, 2, 28]) / 100))  # sigmoid(yes - no logit), no = 0
    assert rows["score"].to_numpy() == pytest.approx(expected)
    again = ctr_metrics(rows["user_id"].to_numpy(), rows["label"].to_numpy(), rows["score"].to_numpy())
    # user 0: both clicks above the skip -> 1; user 1: the click (2) below the skip (28) -> 0
    assert cell["metrics"]["GAUC (RecBench)"] == pytest.approx(0.5) == again["GAUC (RecBench)"]
    assert cell["metrics"]["AUC"] == pytest.approx(again["AUC"]) and cell["task"] == "ctr"
    assert timing["batch_size"] == 2 and timing["n_users"] == 5


def test_yes_no_bce_is_the_binary_cross_entropy_of_p_yes():
    from llmrecbench.llm.finetune import yes_no_loss

    lm = StandInLM()
    batch = [([100 + 29], 1), ([100 + 3], 0)]
    p = 1 / (1 + np.exp(-np.array([0.29, 0.03])))
    expected = -(np.log(p[0]) + np.log(1 - p[1])) / 2
    assert yes_no_loss(lm, batch, "cpu").item() == pytest.approx(expected, rel=1e-5)
