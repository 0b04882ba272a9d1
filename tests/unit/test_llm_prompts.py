"""Prompt construction: templates (seen/unseen), item representations, prompt sets on the mirror."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import mirror_root

from llmrecbench.errors import ConfigError
from llmrecbench.llm.prompts import (
    TEMPLATES,
    ItemCatalog,
    build_prompts,
    disambiguate_codes,
    mirror_slice,
    parse_prompt_key,
    prompt_key,
    prompt_key_indexing,
    read_jsonl,
    seen_templates,
    unseen_templates,
    write_jsonl,
)

MIRROR = mirror_root() / "amazon-2014-5core" / "beauty"
pytestmark = pytest.mark.skipif(not (MIRROR / "user_sequence.txt").exists(), reason="Beauty mirror not present")


@pytest.fixture(scope="module")
def beauty():
    return mirror_slice(MIRROR / "user_sequence.txt", MIRROR / "item_titles.tsv", n_users=50)


def test_template_split_is_declared_and_disjoint():
    for task in ("seqrec", "rating", "direct"):
        seen, unseen = set(seen_templates(task)), set(unseen_templates(task))
        assert seen and unseen and not seen & unseen
        assert seen | unseen == {t.id for t in TEMPLATES.values() if t.task == task}
    assert TEMPLATES["llmrec"].zero_shot and "python list" in TEMPLATES["llmrec"].text


def test_llmrec_prompt_has_three_parts(beauty):
    data, titles = beauty
    rec = build_prompts(data, ItemCatalog(titles, "text"), "llmrec", "test", list_length=10)[0]
    p = rec["prompt"]
    assert p.startswith("Requirements: you must choose 10 items")  # format indicator
    assert "chronological order: [" in p  # behaviour injection
    assert p.endswith("Please recommend the next item that the user might interact with.")  # task
    assert rec["target"] == titles[rec["target_item_id"]]


def test_splits_follow_leave_one_out(beauty):
    data, titles = beauty
    cat = ItemCatalog(titles, "unique_id")
    test = build_prompts(data, cat, "seq1", "test", max_history=5)
    valid = build_prompts(data, cat, "seq1", "valid", max_history=5)
    train = build_prompts(data, cat, "seq1", "train", max_history=5)
    assert len(test) == len(valid) == data.n_users
    assert [r["target_item_id"] for r in test] == data.test_target.tolist()
    assert test[0]["history"][-1] == int(data.valid_target[0])
    # the prompt shows the last 5 items; the evaluator masks the whole input history
    for r, rec in enumerate(test[:50]):
        assert rec["mask_items"] == data.train[r].tolist() + [int(data.valid_target[r])]
        assert rec["history"] == rec["mask_items"][-5:]
    assert all(rec["mask_items"] == data.train[r].tolist() for r, rec in enumerate(valid[:50]))
    assert all("mask_items" not in rec for rec in train)
    assert len(train) == sum(len(s) - 1 for s in data.train)
    assert all(len(r["history"]) <= 5 for r in train)
    assert test[0]["prompt"].startswith("Here is the purchase history list of user_0: <item_")
    assert all(r["target"] == f"<item_{r['target_item_id']}>" for r in train[:20])


def test_unseen_template_cannot_train(beauty):
    data, titles = beauty
    with pytest.raises(ConfigError, match="unseen"):
        build_prompts(data, ItemCatalog(titles, "text"), "seq6", "train")


def test_semantic_ids_tokens_and_collisions(beauty):
    _, titles = beauty
    codes = np.zeros((len(titles), 2), dtype=np.int64)
    codes[:, 0] = np.arange(len(titles)) % 7
    cat = ItemCatalog(titles, "semantic_id", codes=codes)
    assert cat.codes.shape[1] == 3  # a collision level was appended
    rendered = {cat.render(i) for i in range(len(titles))}
    assert len(rendered) == len(titles)
    assert cat.render(0) == "<a_0><b_0><c_0>" and cat.render(7) == "<a_0><b_0><c_1>"
    assert "<a_6>" in cat.new_tokens()
    assert (disambiguate_codes(np.arange(6).reshape(3, 2)) == np.arange(6).reshape(3, 2)).all()


def test_prompt_keys_and_jsonl(tmp_path, beauty):
    assert parse_prompt_key(prompt_key("seq2", "semantic_id")) == ("seq2", "semantic_id")
    with pytest.raises(ConfigError):
        parse_prompt_key("seq2-words")
    # a numbered representation may name its item numbering; tasks without numberings refuse it
    key = prompt_key("seq1", "unique_id", "p5_sequential")
    assert key == "seq1-unique_id.p5_sequential" and prompt_key_indexing(key) == "p5_sequential"
    assert parse_prompt_key(key, allow_indexing=True) == ("seq1", "unique_id") and prompt_key_indexing("seq1-text") is None
    with pytest.raises(ConfigError, match="no item numberings"):
        parse_prompt_key(key)
    with pytest.raises(ConfigError, match="have an indexing"):
        prompt_key("seq1", "text", "random")
    data, titles = beauty
    recs = build_prompts(data, ItemCatalog(titles, "text"), "seq3", "valid")
    write_jsonl(recs, tmp_path / "p.jsonl")
    assert read_jsonl(tmp_path / "p.jsonl") == recs


def test_id_token_prompts_are_written_in_the_row_numbering(beauty):
    """ID tokens show an item's number in the chosen numbering, not its canonical (P5-order) id;
    the records name the numbering, and the constrained decoder maps tokens back to items."""
    from llmrecbench.data.indexing import ItemNumbering
    from llmrecbench.llm.prompt_files import prompt_set

    data, titles = beauty
    perm = np.random.default_rng(0).permutation(data.n_items)
    numbering = ItemNumbering("random", perm)
    recs = prompt_set(data, titles, "seq1-unique_id", "test", numbering=numbering, max_history=5)
    r = recs[0]
    assert r["item_numbering"] == "random"
    assert r["target"] == f"<item_{perm[r['target_item_id']]}>"
    assert all(f"<item_{perm[i]}>" in r["prompt"] for i in r["history"])
    plain = prompt_set(data, titles, "seq1-unique_id", "test", max_history=5)[0]
    assert "item_numbering" not in plain and plain["target"] == f"<item_{plain['target_item_id']}>"
    cat = ItemCatalog(titles, "unique_id", numbers=perm)
    assert sorted(cat.new_tokens()) == sorted(cat.render(i) for i in range(data.n_items))  # same token set
