"""The explanation and review tasks through the real DAG on the real all_beauty reviews: the shared
8:1:1 split, the task data rules, the conventional rows, recomputable cells, one clear line where
a dataset has no review text. One session-scoped run builds both tables."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llmrecbench.metrics.text_library import text_metrics
from llmrecbench.tasks.text_generation import TEXT_METRICS
from tests.integration.dag import REPO, snakemake

pytestmark = pytest.mark.integration

TEXT_CONFIG = (str(REPO / "tests/integration/text_tasks.yaml"),)
EXPLANATION_MODELS = ["item_retrieval", "nrt", "peter", "peter_plus"]


@pytest.fixture(scope="session")
def text_built(tmp_path_factory, mirror_dir) -> Path:
    workdir = tmp_path_factory.mktemp("text_dag")
    snakemake(workdir, "results/tables/explanation.csv", "results/tables/review.csv", mirror=mirror_dir, configfiles=TEXT_CONFIG)
    return workdir


def _cell(built: Path, task: str, model: str, dataset: str = "all_beauty") -> Path:
    return built / f"results/{dataset}/{task}/{model}/seed1"


@pytest.mark.parametrize(("task", "models", "reference"), [("explanation", EXPLANATION_MODELS, "explanation"), ("review", ["lead"], "summary")])
def test_text_table_cells_recompute_from_generations(text_built, task, models, reference):
    table = pl.read_csv(text_built / f"results/tables/{task}.csv")
    ours = table.filter(pl.col("dataset") == "all_beauty")
    assert sorted(ours["model"]) == sorted(models)
    assert set(TEXT_METRICS) <= set(table.columns) and "n_pairs" in table.columns
    test = pl.read_parquet(text_built / f"results/all_beauty/{task}/data/test.parquet")
    for model in models:
        cell = json.loads((_cell(text_built, task, model) / "metrics.json").read_text())
        assert (cell["task"], cell["dataset"], cell["model"], cell["seed"]) == (task, "all_beauty", model, 1)
        assert cell["protocol"]["split"] == "ratio_8_1_1" and cell["protocol"]["reference"] == reference
        rows = pl.read_parquet(_cell(text_built, task, model) / "generations.parquet")
        assert rows.select("user_id", "item_id").equals(test.select("user_id", "item_id"))
        assert rows["reference"].to_list() == test[reference].to_list() and rows.height == cell["n_pairs"]
        again = text_metrics(rows["generated"].to_list(), rows["reference"].to_list())
        for key, value in again.items():
            assert value == pytest.approx(cell["metrics"][key], abs=1e-9), (task, model, key)
        assert 0.0 < cell["metrics"]["cosine (sentence encoder)"] <= 1.0
        row = ours.filter(pl.col("model") == model).row(0, named=True)
        assert row["ROUGE-L (p5)"] == pytest.approx(cell["metrics"]["ROUGE-L (p5)"], abs=1e-6)


def test_task_data_is_the_rating_split_without_copied_references(text_built):
    """Both tasks read the one 8:1:1 split (each pair points at its review's row there); with the
    variant copies dropped at ingest (almost) no test reference was written by its user in train too."""
    split = {p: pl.read_parquet(text_built / f"results/all_beauty/splits/ratio_8_1_1/{p}.parquet") for p in ("train", "valid", "test")}
    for task, reference in (("explanation", "explanation"), ("review", "summary")):
        stats = json.loads((text_built / f"results/all_beauty/{task}/data/stats.json").read_text())
        for part, frame in split.items():
            pairs = pl.read_parquet(text_built / f"results/all_beauty/{task}/data/{part}.parquet")
            source = frame.with_row_index("review_row").join(pairs.select("review_row", "user_id", "item_id"), on="review_row", suffix="_pair")
            assert source.height == pairs.height and (source["user_id"] == source["user_id_pair"]).all()
            assert (source["item_id"] == source["item_id_pair"]).all()
            if task == "explanation":  # a sentence of the review (whitespace collapsed)
                review_of = dict(zip(source["review_row"].to_list(), source["review"].to_list()))
                for row, sentence in zip(pairs["review_row"].to_list(), pairs["explanation"].to_list()):
                    assert sentence in " ".join(review_of[row].split()), (row, sentence)
            else:
                assert pairs["summary"].to_list() == source["summary"].str.strip_chars().to_list()
        for part in ("valid", "test"):
            overlap = stats["reference_overlap"][part]
            # with the copies kept it was every test reference; what is left is a user reusing a
            # sentence in two reviews of different products (1 of 126 test explanations)
            assert overlap["in_train_same_user"] <= 0.02 * overlap["references"], (task, part, overlap)
            assert overlap["in_train"] <= 0.05 * overlap["references"], (task, part, overlap)
    ingest = json.loads((text_built / "results/all_beauty/data/stats.json").read_text())["ingest"]
    assert ingest["variant_copies"] == 2813 and ingest["variant_copies_dropped"] is True


def test_dataset_without_review_text_is_one_clear_line(tmp_path, mirror_dir):
    """ml-100k has no review text: asking the explanation task for it fails before any job runs."""
    ask = tmp_path / "ml100k_explanation.yaml"
    ask.write_text("tasks:\n  explanation:\n    datasets: [ml-100k]\n    models: [item_retrieval]\n")
    proc = snakemake(tmp_path, "results/tables/explanation.csv", "-n", mirror=mirror_dir, check=False, configfiles=(str(ask),))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "dataset ml-100k provides no review_text, which task explanation needs" in out
    assert not (tmp_path / "results").exists()


def test_empty_text_table_is_one_clear_line(tmp_path, mirror_dir):
    empty = tmp_path / "empty_review.yaml"
    empty.write_text("tasks:\n  review:\n    datasets: [all_beauty]\n    models: []\n")
    proc = snakemake(tmp_path, "results/tables/review.csv", "-n", mirror=mirror_dir, check=False, configfiles=(str(empty),))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "the table of task 'review' has no cells" in out
