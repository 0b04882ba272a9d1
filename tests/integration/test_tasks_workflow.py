"""The rating and direct tasks through the real DAG: rating on real all_beauty and ml-100k, direct on
the 1,500-user Beauty slice. One session-scoped run builds both tables; the tests check what a user
would check (tables, recomputable cells, candidate invariants, provenance, bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrecbench.metrics import ranking_metrics
from llmrecbench.metrics.rating import rating_metrics
from llmrecbench.provenance import file_digests
from tests.integration.dag import REPO, snakemake

pytestmark = pytest.mark.integration

TASKS_CONFIG = (str(REPO / "tests/integration/tasks.yaml"),)
RATING_MODELS = ["global_mean", "bias", "mf", "mlp"]
DIRECT_MODELS = ["pop", "sasrec", "bpr_mf", "bpr_mlp", "simplex"]
SLICE = "beauty_slice"


@pytest.fixture(scope="session")
def tasks_built(tmp_path_factory, mirror_dir) -> Path:
    workdir = tmp_path_factory.mktemp("tasks_dag")
    tables = [f"results/tables/{t}.csv" for t in ("rating", "direct", "ctr")]
    snakemake(workdir, *tables, mirror=mirror_dir, configfiles=TASKS_CONFIG)
    return workdir


def test_rating_table_and_cells_recompute_from_predictions(tasks_built):
    table = pl.read_csv(tasks_built / "results/tables/rating.csv")
    assert sorted(set(table["model"])) == sorted(RATING_MODELS) and set(table["dataset"]) == {"all_beauty", "ml-100k"}
    assert {"RMSE", "MAE", "RMSE_std", "MAE_std", "n_users", "latency_ms"} <= set(table.columns)
    for dataset in ("all_beauty", "ml-100k"):
        rmse = dict(table.filter(pl.col("dataset") == dataset).select("model", "RMSE").iter_rows())
        assert rmse["mf"] < rmse["global_mean"] and rmse["bias"] < rmse["global_mean"], (dataset, rmse)
        for model in RATING_MODELS:
            cell_dir = tasks_built / f"results/{dataset}/rating/{model}/seed1"
            cell = json.loads((cell_dir / "metrics.json").read_text())
            assert (cell["task"], cell["dataset"], cell["model"], cell["seed"]) == ("rating", dataset, model, 1)
            assert cell["protocol"]["split"] == "ratio_8_1_1" and cell["protocol"]["clip"] == [1.0, 5.0]
            rows = pl.read_parquet(cell_dir / "predictions.parquet")
            assert rows.columns[:4] == ["user_id", "item_id", "rating", "prediction"] and rows.height == cell["n_pairs"]
            assert rows["prediction"].is_between(1.0, 5.0).all()
            recomputed = rating_metrics(rows["prediction"].to_numpy(), rows["rating"].to_numpy())
            for key in ("RMSE", "MAE"):
                assert recomputed[key] == pytest.approx(cell["metrics"][key], abs=1e-12), (dataset, model, key)
            test = pl.read_parquet(tasks_built / f"results/{dataset}/splits/ratio_8_1_1/test.parquet")
            assert rows.select("user_id", "item_id").equals(test.select("user_id", "item_id"))
    ml = dict(table.filter(pl.col("dataset") == "ml-100k").select("model", "RMSE").iter_rows())
    assert ml["mf"] <= 0.95, ml  # the bar, on the real ml-100k split


def test_rating_split_is_p5_8_1_1_with_every_user_and_item_in_train(tasks_built):
    d = tasks_built / "results/ml-100k/splits/ratio_8_1_1"
    train, valid, test = (pl.read_parquet(d / f"{n}.parquet") for n in ("train", "valid", "test"))
    n = train.height + valid.height + test.height
    assert abs(train.height / n - 0.8) < 0.01 and abs(valid.height - test.height) <= 1
    all_rows = pl.concat([train, valid, test])
    assert set(train["user_id"]) == set(all_rows["user_id"]) and set(train["item_id"]) == set(all_rows["item_id"])
    assert all_rows["rating"].is_between(1, 5).all()


def test_direct_candidates_are_leak_free_and_shared(tasks_built):
    data = tasks_built / f"results/{SLICE}"
    inter = pl.read_parquet(data / "data/interactions.parquet")
    seen = inter.group_by("user_id").agg(pl.col("item_id"))
    seen = dict(zip(seen["user_id"].to_list(), map(set, seen["item_id"].to_list())))
    test = pl.read_parquet(data / "splits/loo/test.parquet")
    target_of = dict(zip(test["user_id"].to_list(), test["item_id"].to_list()))
    cands = pl.read_parquet(data / "direct/candidates/test.parquet")
    assert cands.height == 1500 and cands.columns == ["user_id", "target_item_id", "candidates"]
    for user, target, items in cands.iter_rows():
        assert target == target_of[user] and len(items) == 100 and len(set(items)) == 100
        assert items.count(target) == 1
        assert not (set(items) - {target}) & seen[user]  # no negative the user ever interacted with
    digest = file_digests([data / "direct/candidates/test.parquet"])[str(data / "direct/candidates/test.parquet")]
    for model in DIRECT_MODELS:
        cell = json.loads((data / f"direct/{model}/seed1/metrics.json").read_text())
        assert cell["candidates"]["sha256"] == digest  # every row ranks the same candidate file
        assert cell["protocol"]["tie_break"].startswith("seeded shuffle")


def test_direct_table_and_cells_recompute_from_ranked_candidates(tasks_built):
    table = pl.read_csv(tasks_built / "results/tables/direct.csv")
    assert sorted(table["model"].to_list()) == sorted(DIRECT_MODELS)
    for col in ("HR@1", "HR@5", "NDCG@5", "HR@10", "NDCG@10"):
        assert table[col].is_between(0, 1).all() and f"{col}_std" in table.columns
    assert (table["HR@1"] <= table["HR@5"]).all() and (table["HR@5"] <= table["HR@10"]).all()
    for model in DIRECT_MODELS:
        cell_dir = tasks_built / f"results/{SLICE}/direct/{model}/seed1"
        cell = json.loads((cell_dir / "metrics.json").read_text())
        topk = pl.read_parquet(cell_dir / "topk.parquet")
        ranked = np.stack(topk["ranked_candidates"].to_list())
        hit = ranked == topk["target_item_id"].to_numpy()[:, None]
        assert (hit.sum(axis=1) == 1).all()
        ranks = hit.argmax(axis=1) + 1.0
        assert np.array_equal(ranks, topk["rank"].to_numpy())
        recomputed = ranking_metrics(ranks, (1, 5, 10))
        for key in ("HR@1", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "MRR"):
            assert recomputed[key] == pytest.approx(cell["metrics"][key], abs=1e-12), (model, key)
    # the sequential rows were trained once, for seqrec, and only scored here
    assert (tasks_built / f"results/{SLICE}/seqrec/sasrec/seed1/model.pt").exists()
    assert not (tasks_built / f"results/{SLICE}/direct/sasrec/seed1/model.pt").exists()


def _mann_whitney_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC from average ranks (an implementation independent of scikit-learn's)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_ctr_pairs_are_user_disjoint_with_stated_labels_and_no_history_leak(tasks_built):
    for dataset in ("ml-100k", SLICE):
        d = tasks_built / f"results/{dataset}/ctr/data"
        parts = {p: pl.read_parquet(d / f"{p}.parquet") for p in ("train", "valid", "test")}
        assert parts["test"].columns == ["user_id", "item_id", "label", "history"]
        users = {p: set(f["user_id"]) for p, f in parts.items()}
        assert not users["test"] & (users["train"] | users["valid"]) and not users["train"] & users["valid"]
        inter = pl.read_parquet(tasks_built / f"results/{dataset}/data/interactions.parquet")
        for user, item, label, history in parts["test"].iter_rows():
            assert item not in history, (dataset, user, item)
        if dataset == "ml-100k":
            rating = {(u, i): r for u, i, r in inter.select("user_id", "item_id", "rating").iter_rows()}
            for user, item, label, history in parts["test"].iter_rows():
                assert (label == 1) == (rating[(user, item)] >= 4) and rating[(user, item)] != 3
                assert all(rating[(user, h)] >= 4 for h in history)
        else:  # positive-only: the sequence's last two items click, the sampled non-clicks were never seen
            seqs = {u: f.sort("position")["item_id"].to_list() for (u,), f in inter.group_by("user_id")}
            for (user,), g in parts["test"].group_by("user_id"):
                assert g.filter(pl.col("label") == 1)["item_id"].sort().to_list() == sorted(seqs[user][-2:])
                assert not set(g.filter(pl.col("label") == 0)["item_id"]) & set(seqs[user])
                assert g["history"][0].to_list() == seqs[user][:-2][-50:]


def test_ctr_table_recomputes_from_predictions_with_an_independent_auc(tasks_built):
    table = pl.read_csv(tasks_built / "results/tables/ctr.csv")
    assert {"AUC", "GAUC (RecBench)", "GAUC (FuxiCTR)", "logloss", "latency_ms"} <= set(table.columns)
    for dataset, model in (("ml-100k", "dnn_id"), ("ml-100k", "deepfm_text"), (SLICE, "dnn_id"), (SLICE, "deepfm_text"), ("all_beauty", "dnn_id")):
        d = tasks_built / f"results/{dataset}/ctr/{model}/seed1"
        cell = json.loads((d / "metrics.json").read_text())
        rows = pl.read_parquet(d / "predictions.parquet")
        assert rows.columns == ["user_id", "item_id", "label", "score"] and rows.height == cell["n_pairs"]
        test = pl.read_parquet(tasks_built / f"results/{dataset}/ctr/data/test.parquet")
        assert rows.select("user_id", "item_id", "label").equals(test.select("user_id", "item_id", pl.col("label")))
        y, s = rows["label"].to_numpy(), rows["score"].to_numpy()
        assert _mann_whitney_auc(y, s) == pytest.approx(cell["metrics"]["AUC"], abs=1e-12)
        per_user = [(g.height, _mann_whitney_auc(g["label"].to_numpy(), g["score"].to_numpy()))
                    for _, g in rows.group_by("user_id") if g["label"].n_unique() == 2]
        assert np.mean([a for _, a in per_user]) == pytest.approx(cell["metrics"]["GAUC (RecBench)"], abs=1e-12)
        assert sum(n * a for n, a in per_user) / sum(n for n, _ in per_user) == pytest.approx(cell["metrics"]["GAUC (FuxiCTR)"], abs=1e-12)
    na = json.loads((tasks_built / "results/all_beauty/ctr/deepfm_text/seed1/na.json").read_text())
    assert na["status"] == "n/a" and "built from item text" in na["note"]
    # (no accuracy bar here: 3 epochs over a 1,500-user slice's ~4,300 training pairs; the
    # full-Beauty rows are in the README)


def test_provenance_chain_comes_from_snakemake_metadata(tasks_built):
    cell = json.loads((tasks_built / f"results/{SLICE}/direct/bpr_mf/seed1/metrics.json").read_text())
    chain = json.loads((tasks_built / cell["provenance"]).read_text())["rule_chain"]
    assert chain[0] == "download_raw_file" and chain[-1] == "evaluate_ranking_model"
    assert {"ingest_dataset", "split_dataset", "sample_candidates", "train_model"} <= set(chain)


def test_candidates_same_seed_same_bytes(tasks_built, tmp_path, mirror_dir):
    rel = f"results/{SLICE}/direct/candidates/test.parquet"
    snakemake(tmp_path, rel, mirror=mirror_dir, configfiles=TASKS_CONFIG)
    assert (tmp_path / rel).read_bytes() == (tasks_built / rel).read_bytes()


def test_bad_rating_file_is_one_line_and_leaves_nothing(tmp_path, mirror_dir):
    """A rating outside 1-5 in a ratings file: one line naming the file, the row and the value; no parquet."""
    src = mirror_dir / "movielens-100k"
    bad = tmp_path / "mirror/movielens-100k"
    bad.mkdir(parents=True)
    lines = (src / "ml-100k.inter").read_text().splitlines()
    fields = lines[5].split("\t")
    fields[2] = "7"
    lines[5] = "\t".join(fields)
    (bad / "ml-100k.inter").write_text("\n".join(lines) + "\n")
    for name in ("ml-100k.item", "ml-100k.user"):
        (bad / name).write_bytes((src / name).read_bytes())
    unchecked = tmp_path / "unchecked.yaml"  # the edited file no longer has the published sha256
    unchecked.write_text(
        "sources: {movielens_100k_recbole: {files: {inter: {url: null, sha256: null, mirror: movielens-100k/ml-100k.inter}}}}\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "results/ml-100k/data/interactions.parquet", mirror=tmp_path / "mirror", check=False,
                     configfiles=(str(unchecked),))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "Error in rule ingest_dataset:" in line and "ml-100k.inter" in line]
    assert len(lines) == 1 and "rating 7 is outside [1, 5]" in lines[0], proc.stderr[-2000:]
    assert not (work / "results/ml-100k/data/interactions.parquet").exists()


def test_every_cell_matches_the_cell_schema(tasks_built):
    """One schema for the cells of every task (schemas/cell.schema.yaml)."""
    import jsonschema
    import yaml

    schema = yaml.safe_load((REPO / "schemas/cell.schema.yaml").read_text())
    cells = sorted(tasks_built.glob("results/*/*/*/seed*/metrics.json"))
    assert {json.loads(p.read_text())["task"] for p in cells} == {"rating", "direct", "ctr"}
    for path in cells:
        jsonschema.validate(json.loads(path.read_text()), schema)


def _raw_2014_mirror(root: Path, n_users: int = 40, n_items: int = 12) -> Path:
    """A mirror holding reviews_Beauty_5.json.gz + meta_Beauty.json.gz in the raw 2014 dumps' format
    (JSON lines; meta as Python dict literals), seeded: every user reviews 6 of the items."""
    import gzip

    rng = np.random.default_rng(5)
    d = root / "amazon-2014-5core/beauty"
    d.mkdir(parents=True)
    with gzip.open(d / "reviews_Beauty_5.json.gz", "wt") as fh:
        for u in range(n_users):
            for k, i in enumerate(rng.choice(n_items, size=6, replace=False).tolist()):
                fh.write(json.dumps({"reviewerID": f"U{u:04d}", "asin": f"B{i:09d}", "helpful": [0, 0],
                                     "reviewText": "fine", "overall": float(rng.integers(1, 6)), "summary": "ok",
                                     "unixReviewTime": 1388534400 + 86400 * k, "reviewTime": "01 1, 2014"}) + "\n")
    with gzip.open(d / "meta_Beauty.json.gz", "wt") as fh:
        for i in range(n_items):
            fh.write(repr({"asin": f"B{i:09d}", "title": f"Product {i}", "categories": [["Beauty"]]}) + "\n")
    return root


def test_a_dataset_whose_raw_files_are_missing_gets_na_cells_and_computes_once_mirrored(tmp_path, mirror_dir):
    tables = tmp_path / "only_beauty_raw.yaml"
    tables.write_text(
        "tasks:\n  rating: {datasets: [beauty_raw], models: [global_mean, mf]}\n  direct: {datasets: []}\n"
        "models: {mf: {train: {max_epochs: 3}}}\n"
    )
    # the default: the mirror does not carry the raw 2014 files and fetch_missing is false
    missing = tmp_path / "missing"
    missing.mkdir()
    snakemake(missing, "results/tables/rating.csv", mirror=mirror_dir, configfiles=(str(tables),))
    md = (missing / "results/tables/rating.md").read_text()
    assert md.count("N/A: raw file reviews_Beauty_5.json.gz of dataset beauty_raw is not mirrored") == 2, md
    cell = json.loads((missing / "results/beauty_raw/rating/mf/seed1/na.json").read_text())
    assert cell["status"] == "n/a" and "fetch_missing: true downloads it from http://snap.stanford.edu" in cell["note"]
    assert not (missing / "resources/raw").exists()  # nothing fetched, nothing half-written
    # the same files in a mirror: the cells are computed
    mirror = _raw_2014_mirror(tmp_path / "mirror")
    tables.write_text(tables.read_text() + (
        "sources:\n  amazon2014_beauty_raw:\n    files:\n"
        "      reviews: {mirror: amazon-2014-5core/beauty/reviews_Beauty_5.json.gz}\n"
        "      meta: {mirror: amazon-2014-5core/beauty/meta_Beauty.json.gz}\n"
    ))
    present = tmp_path / "present"
    present.mkdir()
    snakemake(present, "results/tables/rating.csv", mirror=mirror, configfiles=(str(tables),))
    table = pl.read_csv(present / "results/tables/rating.csv")
    assert table["RMSE"].null_count() == 0 and set(table["model"]) == {"global_mean", "mf"}
    assert json.loads((present / "results/beauty_raw/rating/mf/seed1/metrics.json").read_text())["status"] == "ok"
