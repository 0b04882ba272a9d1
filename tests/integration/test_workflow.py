"""The real DAG on a real slice of Beauty from the mirror: table, cells, audit trail, faults.

One session-scoped run builds ``results/tables/seqrec.csv`` for 1,500 Beauty users, five models
and two seeds; the tests then check what a user would check.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrecbench.metrics import ranking_metrics
from tests.integration.dag import REPO, SNAKEMAKE, snakemake

SLICE = "beauty_slice"
MODELS = ["pop", "index_leak_p5", "index_leak_train_only", "index_leak_random", "sasrec", "gru4rec", "bert4rec", "caser"]
TRAINED = ["sasrec", "gru4rec", "bert4rec", "caser"]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def built(tmp_path_factory, mirror_dir) -> Path:
    workdir = tmp_path_factory.mktemp("dag")
    snakemake(workdir, "results/tables/seqrec.csv", mirror=mirror_dir)
    return workdir


def test_table_has_every_model_with_two_seeds(built):
    table = pl.read_csv(built / "results/tables/seqrec.csv")
    assert sorted(table["model"].to_list()) == sorted(MODELS)
    assert set(table["n_seeds"].to_list()) == {2}
    for col in ("HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR"):
        assert table[col].is_between(0, 1).all(), col
        assert f"{col}_std" in table.columns
    assert (table["NDCG@10"] <= table["HR@10"]).all()
    assert (table["HR@10"] <= table["HR@20"]).all()
    md = (built / "results/tables/seqrec.md").read_text()
    assert all(f"| {m} |" in md for m in MODELS)
    # every trained model learned something: its training loss fell from the first epoch
    for model in TRAINED:
        log = json.loads((built / f"results/{SLICE}/seqrec/{model}/seed1/train_log.json").read_text())
        assert log["epochs"][-1]["loss"] < log["epochs"][0]["loss"], model


def test_cells_recompute_from_topk(built):
    import jsonschema
    import yaml

    schema = yaml.safe_load((REPO / "schemas/cell.schema.yaml").read_text())
    for model in MODELS:
        cell_dir = built / f"results/{SLICE}/seqrec/{model}/seed1"
        cell = json.loads((cell_dir / "metrics.json").read_text())
        jsonschema.validate(cell, schema)  # one cell schema for every task
        assert cell["dataset"] == SLICE and cell["model"] == model and cell["seed"] == 1
        assert cell["protocol"]["ranking"] == "full" and cell["protocol"]["split"] == "loo"
        topk = pl.read_parquet(cell_dir / "topk.parquet")
        assert topk.height == cell["n_users"]
        # HR@10 and NDCG@10 from the stored top-20 lists equal the cell's numbers
        lists = np.stack(topk["topk_item_ids"].to_list())
        targets = topk["target_item_id"].to_numpy()
        hit = lists == targets[:, None]
        ranks = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)
        recomputed = ranking_metrics(ranks, ks=(5, 10, 20))
        for key in ("HR@10", "NDCG@10", "HR@20", "NDCG@20"):
            assert recomputed[key] == pytest.approx(cell["metrics"][key], abs=1e-12), (model, key)
        manifest = json.loads((built / cell["provenance"]).read_text())
        assert manifest["seed"] == 1 and manifest["config_sha256"] and manifest["packages"]["torch"]


def test_cells_record_the_numbering_their_model_saw_and_the_index_leak_shows(built):
    """Indexing is real: each row's model was trained in the numbering its cell names (the model
    file keeps it), the cell carries that numbering's leakage probe, and the index-only probe
    model finds the P5 leak under p5_sequential and not under the other numberings."""
    import torch

    stats = json.loads((built / f"results/{SLICE}/splits/loo/stats.json").read_text())
    cells = {}
    for model in MODELS:
        cell = json.loads((built / f"results/{SLICE}/seqrec/{model}/seed1/metrics.json").read_text())
        payload = torch.load(built / f"results/{SLICE}/seqrec/{model}/seed1/model.pt", weights_only=True)
        scheme = cell["protocol"]["indexing"]
        assert payload["item_numbering"]["scheme"] == scheme, model
        assert cell["protocol"]["leakage_probe"] == pytest.approx(stats["leakage_probe"][scheme]["share_next_index"], abs=1e-6)
        cells[model] = cell
    assert cells["sasrec"]["protocol"]["indexing"] == stats["indexing"] == "sequential_train_only"
    leak = {m: cells[f"index_leak_{m}"]["metrics"]["HR@1"] for m in ("p5", "train_only", "random")}
    probe = stats["leakage_probe"]["p5_sequential"]["share_next_index"]
    assert leak["p5"] > 0.02 and leak["p5"] >= probe - 1e-9  # its top-1 is max(history) + 1: HR@1 >= the probe
    assert leak["p5"] > 5 * leak["train_only"] and leak["p5"] > 5 * max(leak["random"], 1e-3)


def test_data_and_split_files_are_consistent(built):
    stats = json.loads((built / f"results/{SLICE}/data/stats.json").read_text())
    assert stats["users"] == 1500
    split = built / f"results/{SLICE}/splits/loo"
    train, valid, test = (pl.read_parquet(split / f"{n}.parquet") for n in ("train", "valid", "test"))
    assert valid.height == test.height == 1500
    assert train.height + valid.height + test.height == stats["interactions"]
    last = train.group_by("user_id").agg(pl.col("position").max().alias("p")).join(valid, on="user_id")
    assert (last["position"] == last["p"] + 1).all()
    raw_prov = json.loads((built / "resources/raw/amazon2014_beauty_sequences/user_sequence.txt.provenance.json").read_text())
    assert raw_prov["source"] == "mirror" and raw_prov["sha256"] == raw_prov["expected_sha256"]


def test_semantic_rows_on_the_slice(built, mirror_dir):
    """SentenceBERT -> RQ-VAE -> SASRec-SBERT, SID-SASRec (CBS and unconstrained, one trained
    model) and TIGER cells on the slice: every semantic ID unique, zero invalid items under
    constrained decoding over all test users, and metrics that the stored lists reproduce."""
    models = ["sasrec_sbert", "sid_sasrec_cbs", "sid_sasrec_free", "tiger"]
    snakemake(built, *[f"results/{SLICE}/seqrec/{m}/seed1/metrics.json" for m in models], mirror=mirror_dir)
    report = json.loads((built / f"results/{SLICE}/semantic_ids/minilm/4x256/report.json").read_text())
    codes = pl.read_parquet(built / f"results/{SLICE}/semantic_ids/minilm/4x256/codes.parquet")
    assert report["unique_ids"] and codes.drop("item_id").unique().height == codes.height
    assert not (built / f"results/{SLICE}/seqrec/sid_sasrec_free/seed1/model.pt").exists()  # weights_from
    for model in models:
        cell_dir = built / f"results/{SLICE}/seqrec/{model}/seed1"
        cell = json.loads((cell_dir / "metrics.json").read_text())
        assert cell["n_users"] == 1500 and 0 <= cell["metrics"]["NDCG@10"] <= cell["metrics"]["HR@10"] <= 1
        topk = pl.read_parquet(cell_dir / "topk.parquet")
        lists = np.stack(topk["topk_item_ids"].to_list())
        targets = topk["target_item_id"].to_numpy()
        hit = lists == targets[:, None]
        ranks = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)
        recomputed = ranking_metrics(ranks, ks=(5, 10, 20))
        for key in ("HR@10", "NDCG@10", "HR@20"):
            assert recomputed[key] == pytest.approx(cell["metrics"][key], abs=1e-12), (model, key)
        if model == "sasrec_sbert":
            assert cell["item_repr"] == "semantic_embedding" and "extra_columns" not in cell
            continue
        assert cell["item_repr"] == "semantic_id" and cell["protocol"]["ranking"] == "generated_list"
        assert cell["n_generated"] == 1500 * cell["protocol"]["beam_width"]
        if cell["protocol"]["constrained"]:
            assert cell["n_invalid"] == 0 and cell["extra_columns"]["invalid_rate"] == 0.0, model
        else:
            assert cell["extra_columns"]["invalid_rate"] == cell["n_invalid"] / cell["n_generated"]


def _recomputed_from_topk(cell_dir: Path) -> dict:
    topk = pl.read_parquet(cell_dir / "topk.parquet")
    lists = np.stack(topk["topk_item_ids"].to_list())
    hit = lists == topk["target_item_id"].to_numpy()[:, None]
    return ranking_metrics(np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf), ks=(5, 10, 20))


def test_table4_baselines_on_the_slice(built, mirror_dir):
    """HGN (user embedding: scored with the users' ids), FDSA (MiniLM title vectors) and S3-Rec
    (pre-training with attributes from the slice's titles, then fine-tuning) through the real
    rules: cells the stored lists reproduce, and S3-Rec's protocol names what it pre-trained on."""
    models = ["hgn", "fdsa", "s3rec"]
    snakemake(built, *[f"results/{SLICE}/seqrec/{m}/seed1/metrics.json" for m in models], mirror=mirror_dir)
    for model in models:
        cell_dir = built / f"results/{SLICE}/seqrec/{model}/seed1"
        cell = json.loads((cell_dir / "metrics.json").read_text())
        assert cell["n_users"] == 1500 and cell["protocol"]["indexing"] == "sequential_train_only"
        recomputed = _recomputed_from_topk(cell_dir)
        for key in ("HR@10", "NDCG@10", "HR@20"):
            assert recomputed[key] == pytest.approx(cell["metrics"][key], abs=1e-12), (model, key)
    s3 = json.loads((built / f"results/{SLICE}/seqrec/s3rec/seed1/metrics.json").read_text())["protocol"]
    assert s3["pretraining"] == "AAP+MIP+MAP+SP" and s3["attributes"].startswith("title words (")
    log = json.loads((built / f"results/{SLICE}/seqrec/s3rec/seed1/train_log.json").read_text())
    assert len(log["pretraining"]["epochs"]) == 2 and log["pretraining"]["monitor"]["name"] == "pretrain_loss"


def test_rerun_has_nothing_to_do(built, mirror_dir):
    proc = snakemake(built, "results/tables/seqrec.csv", "-n", mirror=mirror_dir)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_same_seed_same_bytes(built, tmp_path, mirror_dir):
    """A second, independent run reproduces split, top-k and metrics files byte for byte.

    (The semantic-ID stages are checked below the DAG, where they cost seconds, not 90: same
    bytes for the embeddings in tests/unit/test_embeddings.py, for RQ-VAE codes on the real
    Beauty embeddings in tests/unit/test_rqvae.py.)"""
    target = f"results/{SLICE}/seqrec/sasrec/seed1/metrics.json"
    snakemake(tmp_path, target, mirror=mirror_dir)
    for rel in (
        f"results/{SLICE}/splits/loo/train.parquet",
        f"results/{SLICE}/splits/loo/test.parquet",
        f"results/{SLICE}/splits/loo/item_index.parquet",
        f"results/{SLICE}/seqrec/sasrec/seed1/topk.parquet",
        target,
    ):
        assert (tmp_path / rel).read_bytes() == (built / rel).read_bytes(), rel


def test_checksum_mismatch_is_one_line_and_leaves_nothing(tmp_path, mirror_dir):
    bad_mirror = tmp_path / "mirror"
    src = mirror_dir / "amazon-2014-5core/beauty/user_sequence.txt"
    dst = bad_mirror / "amazon-2014-5core/beauty/user_sequence.txt"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(src.read_bytes()[:100_000])  # truncated copy
    work = tmp_path / "work"
    work.mkdir()
    raw = "resources/raw/amazon2014_beauty_sequences/user_sequence.txt"
    proc = snakemake(work, raw, mirror=bad_mirror, check=False)
    assert proc.returncode != 0
    # one line says which file and what is wrong (snakemake 9 adds its own bare "Error in rule" header)
    lines = [line for line in proc.stderr.splitlines() if "sha256 mismatch" in line]
    assert len(lines) == 1 and "user_sequence.txt" in lines[0] and "file removed" in lines[0]
    assert not (work / raw).exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ('tasks={"seqrec": {"datasets": ["nope"], "models": ["pop"]}}', "tasks.seqrec.datasets: unknown name 'nope'"),
        ('tasks={"seqrec": {"datasets": ["beauty"], "models": ["transformer9000"]}}', "tasks.seqrec.models: unknown name 'transformer9000'"),
        ('tasks={"seqrec": {"evaluation": {"ks": "ten"}}}', "tasks.seqrec.evaluation.ks: 'ten' is not of type 'array'"),
        # a model of a family the task does not take, a dataset without the ratings the task needs
        ('tasks={"rating": {"datasets": ["ml-100k"], "models": ["sasrec"]}}', "tasks.rating.models: 'sasrec' is a sequential model; task rating takes rating models"),
        ('tasks={"rating": {"datasets": ["beauty"], "models": ["mf"]}}', "dataset beauty provides no rating, which task rating needs"),
        ('tasks={"ranking9000": {"datasets": ["beauty"], "models": ["pop"]}}', "ranking9000"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, mirror_dir, override, message):
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile", str(REPO / "config.yaml"), "-n", "--config", override],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert message in out and "config.yaml" in out


def test_unknown_task_table_is_one_clear_line(tmp_path, mirror_dir):
    proc = snakemake(tmp_path, "results/tables/ranking9000.csv", "-n", mirror=mirror_dir, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "unknown task 'ranking9000'; known: ctr, direct, explanation, rating, review, seqrec" in out


def test_report_has_table_and_tradeoff_plot(built, mirror_dir):
    """The README's report command: the HTML embeds the seqrec table and the accuracy/latency plot."""
    import base64
    import re

    snakemake(built, mirror=mirror_dir)  # default target: table, markdown, plot
    snakemake(built, "--report", "results/report.html", mirror=mirror_dir)
    html = (built / "results/report.html").read_text()
    results = json.loads(re.search(r"var results = (\{.*?\});\s*</script>", html, re.S).group(1))
    table = results["results/tables/seqrec.csv"]
    plot = results["results/plots/seqrec_tradeoff.png"]
    csv = base64.b64decode(table["data_uri"].split("base64,", 1)[1]).decode()
    assert csv == (built / "results/tables/seqrec.csv").read_text()
    assert plot["mime_type"] == "image/png"
    assert base64.b64decode(plot["data_uri"].split("base64,", 1)[1]).startswith(b"\x89PNG")
    assert "mailto:" not in plot["caption"]
