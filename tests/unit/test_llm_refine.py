"""Output refinement (LLMRec): list parsing and repair, grounding, ranks of generated lists."""

import numpy as np
import pytest

from llmrecbench.llm.refine import Grounder, hashed_ngram_encoder, normalise, parse_list, ranks_from_lists, refine

TITLES = [
    "Maybelline New York Great Lash Washable Mascara, Very Black",
    "L'Oreal Paris Voluminous Original Mascara, Black",
    "Neutrogena Hydro Boost Water Gel, 1.7 Ounce",
    "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce",
    "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce",  # duplicate title: lowest id wins
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
    assert out[0][:2] == (0, "exact")
    assert out[1][:2] == (1, "nearest") and out[1][2] >= 0.6
    assert out[2][0] is None and out[2][1] == "invalid"
    assert out[3][:2] == (3, "exact")


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
