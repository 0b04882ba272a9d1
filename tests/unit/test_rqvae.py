"""RQ-VAE semantic IDs: uniqueness after collision resolution, determinism, report ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import mirror_root
import torch

from llmrecbench.errors import ConfigError
from llmrecbench.semantic_ids.rqvae import (
    RQVAEConfig,
    assign_codes,
    codes_report,
    kmeans,
    load_rqvae,
    resolve_collisions,
    save_rqvae,
    train_rqvae,
)

TITLES = mirror_root() / "amazon-2014-5core" / "beauty" / "item_titles.tsv"
SMALL = dict(levels=3, codebook_size=16, latent_dim=8, hidden=(64, 32), epochs=4, batch_size=128, dead_code_every=10, kmeans_iters=10)


def _clustered(n: int = 600, d: int = 48, clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.fixture(scope="session")
def beauty_embeddings() -> np.ndarray:
    """The first 500 real Beauty titles encoded with the offline MiniLM (computed once per session)."""
    if not TITLES.exists():
        pytest.skip(f"{TITLES} not present")
    pytest.importorskip("sentence_transformers")
    from llmrecbench.errors import ConfigError as _CE
    from llmrecbench.semantic_ids.embeddings import encode_items, resolve_encoder

    with TITLES.open(encoding="utf-8") as f:
        next(f)
        titles = [line.rstrip("\n").partition("\t")[2] for _, line in zip(range(500), f)]
    try:
        path, _ = resolve_encoder("sentence-transformers/all-MiniLM-L6-v2", Path("/tmp/llmrecbench-hf-cache"))
    except _CE as exc:
        pytest.skip(f"offline MiniLM not available: {exc}")
    return encode_items(titles, path, batch_size=128, show_progress=False, device="cpu")


def _check_report(report: dict, cfg: RQVAEConfig, n: int) -> None:
    for key in ("config", "n_items", "input_dim", "steps", "train_seconds", "history", "reconstruction_mse",
                "relative_reconstruction_error", "quantisation_loss", "dead_codes_reseeded", "codes"):
        assert key in report, key
    assert report["n_items"] == n and len(report["history"]) == cfg.epochs
    assert report["reconstruction_mse"] >= 0 and np.isfinite(report["reconstruction_mse"])
    assert 0 <= report["relative_reconstruction_error"] < 1.5
    c = report["codes"]
    assert 0.0 <= c["collision_rate"] <= 1.0
    assert 1 <= c["max_collision_group"] <= n
    assert len(c["utilisation"]) == cfg.levels == len(c["perplexity"])
    assert all(0 < u <= 1 for u in c["utilisation"])
    assert all(1 <= p <= cfg.codebook_size + 1e-9 for p in c["perplexity"])


def test_train_assign_resolve_on_clustered_vectors():
    x = _clustered()
    cfg = RQVAEConfig(**SMALL, seed=3)
    model, report = train_rqvae(x, cfg, progress=False)
    _check_report(report, cfg, len(x))
    codes = assign_codes(model, x)
    assert codes.shape == (len(x), cfg.levels) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < cfg.codebook_size
    # the report's codes are the assign_codes codes
    assert codes_report(codes, cfg.codebook_size) == report["codes"]
    full, rep = resolve_collisions(codes, cfg.codebook_size)
    assert full.shape == (len(x), cfg.levels + 1)
    assert len({tuple(r) for r in full.tolist()}) == len(x)  # unique IDs
    assert (full[:, :-1] == codes).all()
    assert rep["collision_rate"] == report["codes"]["collision_rate"]
    assert rep["extra_level_size"] == rep["max_collision_group"]


def test_training_reduces_loss():
    x = _clustered(seed=1)
    cfg = RQVAEConfig(**{**SMALL, "epochs": 12})
    _, report = train_rqvae(x, cfg, progress=False)
    assert report["history"][-1]["recon"] < report["history"][0]["recon"]


def test_deterministic_same_seed_same_bytes(tmp_path):
    x = _clustered(seed=2)
    cfg = RQVAEConfig(**SMALL, seed=11)
    m1, r1 = train_rqvae(x, cfg, progress=False)
    m2, r2 = train_rqvae(x, cfg, progress=False)
    c1, c2 = assign_codes(m1, x), assign_codes(m2, x)
    assert c1.tobytes() == c2.tobytes()
    assert r1["history"] == r2["history"]
    for (n1, p1), (n2, p2) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    # different seed -> (almost surely) different codes
    m3, _ = train_rqvae(x, RQVAEConfig(**SMALL, seed=12), progress=False)
    assert assign_codes(m3, x).tobytes() != c1.tobytes()
    # round trip through disk keeps the codes
    save_rqvae(m1, tmp_path / "rq.pt")
    assert assign_codes(load_rqvae(tmp_path / "rq.pt"), x).tobytes() == c1.tobytes()


def test_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train_rqvae(_clustered(n=200), RQVAEConfig(**{**SMALL, "epochs": 1}), progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_real_beauty_embeddings(beauty_embeddings):
    x = beauty_embeddings
    cfg = RQVAEConfig(levels=3, codebook_size=16, latent_dim=16, hidden=(128, 64), epochs=8, batch_size=64, dead_code_every=20, seed=0)
    model, report = train_rqvae(x, cfg, progress=False)
    _check_report(report, cfg, len(x))
    codes = assign_codes(model, x)
    full, rep = resolve_collisions(codes, cfg.codebook_size)
    assert len(np.unique(full, axis=0)) == len(x)
    assert all(u > 0 for u in rep["utilisation"])
    # codes of identical vectors are identical (first-level codes are content-based)
    assert (assign_codes(model, x[:5]) == codes[:5]).all()
    model2, _ = train_rqvae(x, cfg, progress=False)
    assert assign_codes(model2, x).tobytes() == codes.tobytes()


def test_resolve_collisions_numbers_groups_in_row_order():
    codes = np.array([[1, 2], [0, 0], [1, 2], [3, 3], [1, 2], [0, 0]])
    full, rep = resolve_collisions(codes, codebook_size=4)
    assert full[:, 2].tolist() == [0, 0, 1, 0, 2, 1]
    assert rep["collision_rate"] == pytest.approx(5 / 6)
    assert rep["n_colliding_items"] == 5
    assert rep["max_collision_group"] == 3 and rep["extra_level_size"] == 3 and rep["extra_level_fits"]
    assert rep["unique_ids"] == 3
    assert rep["utilisation"] == [0.75, 0.75]
    # level 0 usage: code 1 x3, code 0 x2, code 3 x1
    p = np.array([3, 2, 1]) / 6
    assert rep["perplexity"][0] == pytest.approx(float(np.exp(-(p * np.log(p)).sum())))


def test_resolve_collisions_no_collisions_and_bad_input():
    full, rep = resolve_collisions(np.array([[0, 1], [1, 0]]))
    assert full[:, 2].tolist() == [0, 0]
    assert rep["collision_rate"] == 0.0 and rep["max_collision_group"] == 1 and rep["codebook_size"] == 2
    with pytest.raises(ValueError):
        resolve_collisions(np.zeros((0, 2), dtype=int))


def test_kmeans_finds_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = centres.repeat_interleave(50, 0) + 0.1 * torch.randn(150, 2, generator=gen)
    cent = kmeans(x, 3, 20, gen)
    d = torch.cdist(centres, cent).min(1).values
    assert (d < 0.5).all()
    # fewer points than clusters still gives k centroids
    assert kmeans(x[:2], 5, 5, gen).shape == (5, 2)


def test_config_validation():
    with pytest.raises(ConfigError):
        RQVAEConfig(levels=0)
    with pytest.raises(ConfigError, match="unknown"):
        RQVAEConfig.from_dict({"levels": 2, "codebooks": 3})
    assert RQVAEConfig.from_dict({"hidden": [8, 4]}).hidden == (8, 4)
    with pytest.raises(ValueError):
        train_rqvae(np.full((10, 4), np.nan, dtype=np.float32), RQVAEConfig(**SMALL), progress=False)
