"""The retrieval floor of explanation generation: the most typical training explanation of the item."""

from __future__ import annotations

import numpy as np

from llmrecbench.data.text_pairs import TextPairs
from llmrecbench.models.registry import register
from llmrecbench.models.text.base import TextModel


def most_central(texts: list[str], vectors) -> str:
    """The text whose TF-IDF vector x_j is nearest the centroid c = (1/n) sum_j x_j by cosine,
    argmax_j <x_j, c> / (|x_j| |c|) (ties: the first in file order)."""
    centroid = np.asarray(vectors.mean(axis=0)).ravel()
    dots = np.asarray(vectors @ centroid).ravel()
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel()) * max(np.linalg.norm(centroid), 1e-12)
    return texts[int(np.argmax(dots / np.where(norms > 0, norms, 1.0)))]


@register("item_retrieval")
class ItemRetrieval(TextModel):
    """For item i: among the training explanations E_i of i, the one nearest their TF-IDF centroid
    (:func:`most_central`; TF-IDF fitted on every training explanation, scikit-learn defaults);
    an item with no training explanation gets the one nearest the centroid of all of them.

    The same text for every user of an item: a floor that is honest about generic text, which a
    personalised model must beat.
    """

    family = "explanation"

    def __init__(self, n_users: int, n_items: int):
        super().__init__(n_users, n_items)
        self._by_item: dict[int, str] = {}
        self._fallback = ""

    def fit_closed_form(self, train: TextPairs) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.check_data(train)
        vectors = TfidfVectorizer().fit_transform(train.references).tocsr()
        rows: dict[int, list[int]] = {}
        for row, item in enumerate(train.items):
            rows.setdefault(int(item), []).append(row)
        self._by_item = {item: most_central([train.references[r] for r in idx], vectors[idx]) for item, idx in sorted(rows.items())}
        self._fallback = most_central(train.references, vectors)

    def generate(self, pairs: TextPairs) -> list[str]:
        return [self._by_item.get(int(item), self._fallback) for item in pairs.items]

    def get_extra_state(self) -> dict:
        return {"items": list(self._by_item), "texts": list(self._by_item.values()), "fallback": self._fallback}

    def set_extra_state(self, state: dict) -> None:
        self._by_item = dict(zip((int(i) for i in state["items"]), state["texts"]))
        self._fallback = state["fallback"]
