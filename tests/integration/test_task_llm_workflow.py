"""LLM rows of the rating, direct, explanation and review tables through the real DAG, on the CPU with the offline
SmolLM2-135M (tests/integration/tasks_llm.yaml): rating on real ml-100k and all_beauty (no titles,
so its title settings are N/A cells and its ID setting runs), direct on a 200-user Beauty slice
with 10 cached candidates per user (the config says why not 100), explanation and review on
all_beauty. One session-scoped run; the tests check what a user
would check: rows in the tables, cells recomputable from their per-row files, the N/A policy, the
candidates shared with the conventional rows, seen vs unseen templates, provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrecbench.metrics import ranking_metrics
from llmrecbench.metrics.rating import rating_metrics
from tests.integration.dag import REPO, require_offline_llm, snakemake

pytestmark = pytest.mark.integration
require_offline_llm()

CONFIG = (str(REPO / "tests/integration/tasks_llm.yaml"),)
EVAL = 4  # llm.eval_users of tasks_llm.yaml
N_CANDIDATES = 10  # tasks.direct.evaluation.n_negatives + 1 of tasks_llm.yaml
RATING = {"zero_shot_rating": "rate_llmrec", "lora_rating": "rate1", "lora_rating_unseen": "rate3", "lora_rating_id": "rate1"}
DIRECT = {"zero_shot_direct": "direct_llmrec", "zero_shot_yesno": "yesno1", "lora_yesno": "yesno1",
          "lora_yesno_unseen": "yesno2", "lora_direct_id_cbs": "direct1"}


@pytest.fixture(scope="session")
def built(tmp_path_factory, mirror_dir) -> Path:
    workdir = tmp_path_factory.mktemp("task_llm_dag")
    tables = [f"results/tables/{t}.csv" for t in ("rating", "direct", "explanation", "review", "ctr")]
    snakemake(workdir, *tables, mirror=mirror_dir, configfiles=CONFIG)
    return workdir


def cell_dir(root: Path, dataset: str, task: str, setting: str) -> Path:
    return root / f"results/{dataset}/{task}/smollm2/{setting}/seed1"


def test_rating_llm_rows_recompute_from_predictions_under_the_stated_na_policy(built):
    table = pl.read_csv(built / "results/tables/rating.csv")
    llm = table.filter((pl.col("model") == "smollm2") & (pl.col("dataset") == "ml-100k"))
    assert llm.height == 4 and {"na_rate", "latency_ms", "RMSE_na_as_mean", "MAE_na_as_mean"} <= set(table.columns)
    train = pl.read_parquet(built / "results/ml-100k/splits/ratio_8_1_1/train.parquet")
    test = pl.read_parquet(built / "results/ml-100k/splits/ratio_8_1_1/test.parquet")
    for setting, template in RATING.items():
        d = cell_dir(built, "ml-100k", "rating", setting)
        cell = json.loads((d / "metrics.json").read_text())
        assert (cell["task"], cell["model_class"], cell["protocol"]["eval_template"]) == ("rating", "llm", template)
        assert "parsed answers only" in cell["protocol"]["na_policy"]
        rows = pl.read_parquet(d / "predictions.parquet")
        assert rows.columns == ["user_id", "item_id", "rating", "prediction", "parsed", "answer"] and rows.height == EVAL
        # every pair is a real test review of the split
        assert rows.join(test, on=["user_id", "item_id", "rating"], how="semi").height == EVAL
        parsed = rows.filter(pl.col("parsed"))
        assert parsed["prediction"].is_between(1, 5).all() and rows.filter(~pl.col("parsed"))["prediction"].null_count() == rows.height - parsed.height
        assert cell["extra_columns"]["na_rate"] == pytest.approx(1 - parsed.height / EVAL)
        if parsed.height:
            m = rating_metrics(parsed["prediction"].to_numpy(), parsed["rating"].to_numpy())
            assert m["RMSE"] == pytest.approx(cell["metrics_if_counted"]["RMSE"], abs=1e-12)
        filled = rows["prediction"].fill_null(float(train["rating"].mean())).to_numpy()
        assert rating_metrics(filled, rows["rating"].to_numpy())["RMSE"] == pytest.approx(cell["extra_columns"]["RMSE_na_as_mean"], abs=1e-9)
        assert cell["status"] == ("ok" if cell["extra_columns"]["na_rate"] < 0.5 else "n/a")
    # the unseen-template row evaluates the seen row's adapter, trained once
    unseen = json.loads((cell_dir(built, "ml-100k", "rating", "lora_rating_unseen") / "metrics.json").read_text())
    assert unseen["adapter"]["setting"] == "lora_rating" and unseen["protocol"]["template"] == "rate1"
    assert not (cell_dir(built, "ml-100k", "rating", "lora_rating_unseen") / "adapter").exists()


def test_rating_title_settings_are_na_on_a_dataset_without_titles_and_ids_run(built):
    table = pl.read_csv(built / "results/tables/rating.csv").filter(pl.col("dataset") == "all_beauty")
    for setting in ("zero_shot_rating", "lora_rating", "lora_rating_unseen"):
        cell = json.loads((cell_dir(built, "all_beauty", "rating", setting) / "na.json").read_text())
        assert cell["status"] == "n/a" and "no item text" in cell["note"] and cell["task"] == "rating"
    ids = json.loads((cell_dir(built, "all_beauty", "rating", "lora_rating_id") / "metrics.json").read_text())
    assert ids["item_repr"] == "unique_id" and ids["n_pairs"] == EVAL
    prompts = (built / "results/all_beauty/rating/prompts/rate1-unique_id/train.jsonl").read_text().splitlines()
    first = json.loads(prompts[0])
    assert first["prompt"].startswith("What star rating do you think user_") and "<item_" in first["prompt"]
    assert first["target"] == str(int(first["rating"]))
    assert set(table["model"]) == {"global_mean", "smollm2"}


def test_direct_llm_rows_rank_the_shared_candidates_and_recompute(built):
    cand_path = built / "results/beauty_llm/direct/candidates/test.parquet"
    cands = pl.read_parquet(cand_path)
    by_user = {u: c for u, c in zip(cands["user_id"].to_list(), cands["candidates"].to_list())}
    pop = json.loads((built / "results/beauty_llm/direct/pop/seed1/metrics.json").read_text())
    table = pl.read_csv(built / "results/tables/direct.csv")
    assert table.filter(pl.col("model") == "smollm2").height == len(DIRECT)
    for setting, template in DIRECT.items():
        d = cell_dir(built, "beauty_llm", "direct", setting)
        cell = json.loads((d / "metrics.json").read_text())
        assert cell["candidates"]["sha256"] == pop["candidates"]["sha256"]  # the same file as every row
        assert cell["protocol"]["eval_template"] == template and cell["protocol"]["n_candidates"] == N_CANDIDATES
        topk = pl.read_parquet(d / "topk.parquet")
        assert topk.height == EVAL
        for u, t, ranked, rank in topk.select("user_id", "target_item_id", "ranked_candidates", "rank").iter_rows():
            assert sorted(ranked) == sorted(by_user[u]) and ranked.index(t) + 1 == rank
        m = ranking_metrics(topk["rank"].to_numpy(), (1, 5, 10))
        assert m["HR@10"] == pytest.approx(cell["metrics_if_counted"]["HR@10"]) and m["NDCG@10"] == pytest.approx(cell["metrics_if_counted"]["NDCG@10"])
        scores = np.array(topk["scores"].to_list())
        assert np.all(np.diff(np.where(np.isfinite(scores), scores, -1e30), axis=1) <= 0)
        if template.startswith("yesno") or template.startswith("direct1"):
            assert cell["extra_columns"]["na_rate"] == 0.0  # every candidate gets a score / CBS always returns candidates
        if template.startswith("yesno"):
            assert np.isfinite(scores).all()
    zs = pl.read_parquet(cell_dir(built, "beauty_llm", "direct", "zero_shot_direct") / "topk.parquet")
    assert "answer" in zs.columns and zs["na"].mean() == pytest.approx(
        json.loads((cell_dir(built, "beauty_llm", "direct", "zero_shot_direct") / "metrics.json").read_text())["extra_columns"]["na_rate"])


def test_direct_prompts_show_the_cached_candidates_and_train_on_fresh_negatives(built):
    root = built / "results/beauty_llm/direct/prompts"
    cands = pl.read_parquet(built / "results/beauty_llm/direct/candidates/test.parquet")
    first = json.loads((root / "direct1-unique_id/test.jsonl").read_text().splitlines()[0])
    row = cands.filter(pl.col("user_id") == first["user_id"]).row(0, named=True)
    assert first["candidates"] == row["candidates"] and first["target_item_id"] == row["target_item_id"]
    assert first["prompt"].endswith(", ".join(f"<item_{i}>" for i in row["candidates"]))
    seqs = {}
    for part in ("train", "valid", "test"):
        df = pl.read_parquet(built / f"results/beauty_llm/splits/loo/{part}.parquet")
        for u, i in df.select("user_id", "item_id").iter_rows():
            seqs.setdefault(u, set()).add(i)
    for line in (root / "direct1-unique_id/train.jsonl").read_text().splitlines()[:50]:
        rec = json.loads(line)
        assert rec["candidates"].count(rec["target_item_id"]) == 1
        assert not (set(rec["candidates"]) - {rec["target_item_id"]}) & seqs[rec["user_id"]]
    yes_no = [json.loads(x) for x in (root / "yesno1-text/train.jsonl").read_text().splitlines()]
    assert {r["target"] for r in yes_no} == {"yes", "no"} and sum(r["target"] == "no" for r in yes_no) == sum(r["target"] == "yes" for r in yes_no)
    assert not (root / "yesno2-text/train.jsonl").exists()  # unseen templates build no training prompts
    prov = json.loads((built / "results/provenance/beauty_llm/direct/smollm2/lora_direct_id_cbs/seed1.json").read_text())
    assert "finetune_llm" in prov["rule_chain"] and "sample_candidates" in prov["rule_chain"]
    assert any(p.endswith("candidates/test.parquet") for p in prov["inputs"])


TEXT = {("explanation", "lora_explanation_id"): "expl1",
        ("review", "zero_shot_review"): "review1", ("review", "lora_review"): "review1", ("review", "lora_review_unseen"): "review3"}


def test_text_llm_rows_recompute_from_generations_and_title_prompts_are_na(built):
    from llmrecbench.metrics.text_library import text_metrics

    for (task, setting), template in TEXT.items():
        d = cell_dir(built, "all_beauty", task, setting)
        cell = json.loads((d / "metrics.json").read_text())
        assert (cell["task"], cell["protocol"]["eval_template"], cell["n_pairs"]) == (task, template, EVAL)
        rows = pl.read_parquet(d / "generations.parquet")
        assert {"user_id", "item_id", "reference", "generated", "answer"} <= set(rows.columns) and rows.height == EVAL
        reference = "explanation" if task == "explanation" else "summary"
        test = pl.read_parquet(built / f"results/all_beauty/{task}/data/test.parquet")
        assert rows.join(test.rename({reference: "reference"}), on=["user_id", "item_id", "reference"], how="semi").height == EVAL
        again = text_metrics(rows["generated"].to_list(), rows["reference"].to_list())
        for key, value in again.items():
            assert value == pytest.approx(cell["metrics"][key], abs=1e-9), (setting, key)
        assert "cosine (sentence encoder)" in cell["metrics"]
    na = json.loads((cell_dir(built, "all_beauty", "explanation", "zero_shot_explanation") / "na.json").read_text())
    assert "no item text" in na["note"]
    table = pl.read_csv(built / "results/tables/review.csv")
    assert set(table.filter(pl.col("model") == "smollm2")["setting"]) == {"zero-shot", "LoRA", "LoRA, unseen template"}
    first = json.loads((built / "results/all_beauty/review/prompts/review1-text/train.jsonl").read_text().splitlines()[0])
    assert first["prompt"].startswith("Write a short sentence to summarize the following product review from user_")
    assert len(first["prompt"].split(": ", 1)[1].split()) <= 40  # llm.prompts.max_review_words of tasks_llm.yaml


def test_ctr_llm_rows_score_p_yes_on_whole_test_users_and_recompute(built):
    from llmrecbench.metrics.ctr import ctr_metrics

    test = pl.read_parquet(built / "results/ml-100k/ctr/data/test.parquet")
    table = pl.read_csv(built / "results/tables/ctr.csv")
    assert set(table["setting"]) == {"zero-shot", "LoRA (BCE on P(YES))", "LoRA (BCE on P(YES)), unseen template"}
    for setting, template in (("zero_shot_ctr", "ctr1"), ("lora_ctr", "ctr1"), ("lora_ctr_unseen", "ctr2")):
        d = cell_dir(built, "ml-100k", "ctr", setting)
        cell = json.loads((d / "metrics.json").read_text())
        rows = pl.read_parquet(d / "predictions.parquet")
        assert rows.columns == ["user_id", "item_id", "label", "score"] and cell["protocol"]["eval_template"] == template
        assert rows["user_id"].n_unique() == EVAL and rows["score"].is_between(0, 1).all()
        # whole users: every test pair of each sampled user, with its label
        sampled = rows["user_id"].unique().implode()
        expected = test.filter(pl.col("user_id").is_in(sampled)).select("user_id", "item_id", "label").sort("user_id", "item_id")
        assert rows.select("user_id", "item_id", "label").sort("user_id", "item_id").equals(expected)
        again = ctr_metrics(rows["user_id"].to_numpy(), rows["label"].to_numpy(), rows["score"].to_numpy())
        for key in ("AUC", "GAUC (RecBench)", "GAUC (FuxiCTR)", "logloss"):
            assert again[key] == pytest.approx(cell["metrics"][key], abs=1e-12), (setting, key)
    unseen = json.loads((cell_dir(built, "ml-100k", "ctr", "lora_ctr_unseen") / "metrics.json").read_text())
    assert unseen["adapter"]["setting"] == "lora_ctr"
    meta = json.loads((cell_dir(built, "ml-100k", "ctr", "lora_ctr") / "adapter/llm_adapter.json").read_text())
    assert meta["config"]["objective"] == "yes_no_bce" and meta["config"]["lora_r"] == 32 and meta["config"]["lora_alpha"] == 128
    train = [json.loads(x) for x in (built / "results/ml-100k/ctr/prompts/ctr1-text/train.jsonl").read_text().splitlines()]
    assert all(r["target"] == ("Yes" if r["label"] == 1 else "No") and r["prompt"].endswith("Answer (Yes/No):") for r in train)
    assert all(len(r["history"]) <= 3 for r in train)  # llm.prompts.ctr_max_history of tasks_llm.yaml
