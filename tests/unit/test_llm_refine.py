"""Output refinement (LLMRec): list parsing and repair, grounding, ranks of generated lists."""

import numpy as np
import pytest

from llmrecbench.llm.refine import Grounder, hashed_ngram_encoder, normalise, parse_list, ranks_from_lists, refine

TITLES = [
    "Maybelline New York Great Lash Washable Mascara, Very Black",
    "L'Oreal Paris Voluminous Original Mascara, Black",
    "Neutrogena Hydro Boost Water Gel, 1.7 Ounce",
    "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce",
    "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce",  # duplicate title: both items, lowest id first
    "Long title " + "word " * 40 + "end of a very long product name",  # 244 characters: prompts cut it
]


@pytest.fixture(scope="module")
def grounder():
    return Grounder(TITLES, hashed_ngram_encoder(), min_similarity=0.6)


@pytest.mark.parametrize(
    "text, items, how",
    [
        ("['A b', 'C d']", ["A b", "C d"], "list"),
        ('Sure! ["x y z", "abc"] hope it helps', ["x y z", "abc"], "list"),
        ("['O'Keeffe's Working Hands', 'b c']", ["O'Keeffe's Working Hands", "b c"], "list"),
        ("['Great Lash', 'L'Oreal Paris Voluminous', 'Neutro", ["Great Lash", "L'Oreal Paris Voluminous"], "repaired"),
        ("1. **Sunscreen**\n2. Mascara\n- Lip balm", ["Sunscreen", "Mascara", "Lip balm"], "lines"),
        ("I'm sorry, I cannot help with that.", None, "none"),
    ],
)
def test_parse_list(text, items, how):
    assert parse_list(text) == (items, how)


def test_grounding_exact_nearest_invalid(grounder):
    out = grounder.ground(
        [
            "maybelline new york great lash washable mascara, very black",  # exact after normalising
            "L'Oreal Paris Voluminous Mascara Black",  # close paraphrase -> nearest
            "Completely unrelated garden hose 50 ft",  # too far -> invalid
            "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce",
        ]
    )
    assert out[0][:2] == ((0,), "exact")
    assert out[1][:2] == ((1,), "nearest") and out[1][2] >= 0.6
    assert out[2][0] == () and out[2][1] == "invalid"
    assert out[3][:2] == ((3, 4), "exact")  # a shared title names both items


def test_a_title_cut_in_the_prompt_grounds_exactly(grounder):
    """Prompts and targets show long titles cut to MAX_TITLE_CHARS; that form must match exactly."""
    from llmrecbench.llm.prompts import MAX_TITLE_CHARS, shown_title

    cut = shown_title(TITLES[5])
    assert len(TITLES[5]) > MAX_TITLE_CHARS >= len(cut)
    assert grounder.ground([cut])[0][:2] == ((5,), "exact")
    assert grounder.ground([TITLES[5]])[0][:2] == ((5,), "exact")


def test_refine_skips_history_items_before_the_cut_and_is_na_after_masking(grounder):
    text = str([TITLES[0], TITLES[1], TITLES[2]])
    res = refine(text, grounder, list_length=2, exclude={0})
    assert res.item_ids == [1, 2] and res.n_history == 1  # the cut to 2 happens after item 0 left
    only_history = refine(str([TITLES[0]]), grounder, list_length=2, exclude={0})
    assert only_history.is_na  # grounded, but every item is in the history: N/A
    assert refine(str([TITLES[3]]), grounder, list_length=5).item_ids == [3, 4]


def test_refine_counts_and_dedup(grounder):
    text = str([TITLES[2], TITLES[2], "garden hose", TITLES[0]])
    res = refine(text, grounder, list_length=10)
    assert res.item_ids == [2, 0]
    assert (res.n_generated, res.n_exact, res.n_invalid, res.n_duplicates) == (4, 3, 1, 1)
    assert not res.is_na
    assert refine("no list here", grounder, 10).is_na


def test_ranks_from_lists_masks_history():
    lists = [[5, 7, 9], [1, 2], []]
    ranks = ranks_from_lists(lists, [9, 3, 4], histories=[[7], [], []])
    assert ranks[0] == 2  # item 7 is in the history and leaves the list
    assert np.isinf(ranks[1]) and np.isinf(ranks[2])
    assert ranks_from_lists(lists, [9, 3, 4])[0] == 3


def test_normalise():
    assert normalise("  \u201cOPI\u201d  Nail   Lacquer. ") == "opi nail lacquer"
