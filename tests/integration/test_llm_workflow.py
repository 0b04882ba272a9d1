"""The LLM branch of the real DAG on a 200-user CPU slice of Beauty with the offline SmolLM2-135M.

One session-scoped run builds ``results/tables/seqrec.csv`` with a popularity row and five LLM
rows: zero-shot (titles, output refinement), LoRA (titles, beam search), LoRA over semantic
IDs from the semantic layer with trie-constrained beam search (CBS), that adapter on an unseen
template, LoRA + CBS trained on all five seen templates, and LoRA on item numbers written as
text in P5's leaky numbering (one of the index-leak rows). Library-level behaviour
(GGUF conversion, resume after a kill, logits of a reloaded adapter, P-tuning v2) is covered
by tests/unit/test_llm_pipeline.py; these tests check the wiring a user relies on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrecbench.metrics import ranking_metrics
from llmrecbench.tables import merge_cells, read_cells, to_markdown
from tests.integration.dag import REPO, require_offline_llm, snakemake

pytestmark = pytest.mark.integration
require_offline_llm()

SLICE = "beauty_llm"
LLM_CONFIG = (str(REPO / "tests/integration/llm.yaml"),)
EVAL_USERS = 8  # llm.eval_users of tests/integration/llm.yaml
SETTINGS = {
    "zero_shot_title": ("text", "zero-shot"),
    "lora_title": ("text", "LoRA"),
    "lora_sid_cbs": ("semantic_id", "LoRA + CBS"),
    "lora_sid_cbs_unseen": ("semantic_id", "LoRA + CBS, unseen template"),
    "lora_sid_cbs_seen5": ("semantic_id", "LoRA + CBS, 5 seen templates"),
    "lora_number_p5": ("number_text", "LoRA, IDs as number text, P5 indexing"),
}
SEEN = ("seq1", "seq2", "seq3", "seq4", "seq5")


def cell_dir(root: Path, setting: str) -> Path:
    return root / f"results/{SLICE}/seqrec/smollm2/{setting}/seed1"


@pytest.fixture(scope="session")
def llm_built(tmp_path_factory, mirror_dir) -> Path:
    workdir = tmp_path_factory.mktemp("llm_dag")
    snakemake(workdir, "results/tables/seqrec.csv", mirror=mirror_dir, configfiles=LLM_CONFIG)
    return workdir


def test_table_has_llm_rows_with_na_rate_and_latency(llm_built):
    table = pl.read_csv(llm_built / "results/tables/seqrec.csv")
    llm = table.filter(pl.col("model") == "smollm2")
    assert sorted(zip(llm["item_repr"], llm["setting"])) == sorted(SETTINGS.values())
    assert llm["na_rate"].is_between(0, 1).all() and (llm["latency_ms"] > 0).all()
    pop = table.filter(pl.col("model") == "pop").row(0, named=True)
    assert pop["na_rate"] == 0.0 and pop["latency_ms"] > 0  # full ranking always returns a list
    md = (llm_built / "results/tables/seqrec.md").read_text()
    assert "| smollm2 | semantic_id | LoRA + CBS |" in md and "na_rate" in md and "latency_ms" in md
    for setting, (item_repr, label) in SETTINGS.items():
        cell = json.loads((cell_dir(llm_built, setting) / "metrics.json").read_text())
        assert (cell["item_repr"], cell["setting"], cell["n_users"]) == (item_repr, label, EVAL_USERS)
        assert cell["llm"]["hf_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and cell["llm"]["source"]["sha256"]
        timing = json.loads((llm_built / cell["timing"]).read_text())
        assert timing["batch_size"] == 8 and timing["n_users"] == EVAL_USERS and timing["device"] == "cpu"
        prov = json.loads((llm_built / cell["provenance"]).read_text())
        assert prov["seed"] == 1 and "evaluate_llm" in prov["rule_chain"] and prov["inputs"]
    manifest = json.loads((llm_built / "resources/models/smollm2/model_manifest.json").read_text())
    assert manifest["source"]["kind"] == "gguf" and manifest["weights_sha256"]


def test_cbs_returns_only_real_items_and_cells_recompute(llm_built):
    n_items = json.loads((llm_built / f"results/{SLICE}/data/stats.json").read_text())["items"]
    cell = json.loads((cell_dir(llm_built, "lora_sid_cbs") / "metrics.json").read_text())
    assert cell["protocol"]["decoding"] == "beam5+trie(CBS)" and cell["status"] == "ok"
    assert cell["counters"]["invalid_items"] == 0 and cell["counters"]["hypotheses"] == EVAL_USERS * 5
    assert cell["extra_columns"]["na_rate"] == 0.0
    topk = pl.read_parquet(cell_dir(llm_built, "lora_sid_cbs") / "topk.parquet")
    lists = np.stack(topk["topk_item_ids"].to_list())
    assert ((lists >= 0) & (lists < n_items)).all()  # every slot filled with a real item
    # the cell's metrics follow from the stored ranks (rank -1 = target not in the list)
    ranks = topk["rank"].to_numpy().astype(float)
    ranks[ranks < 0] = np.inf
    recomputed = ranking_metrics(ranks, ks=(1, 5, 10, 20))
    for key, value in cell["metrics"].items():
        assert recomputed[key] == pytest.approx(value, abs=1e-12), key
    # the semantic IDs the prompts use are the semantic layer's codes
    sem = llm_built / f"results/{SLICE}/semantic_ids/minilm/3x16/codes.parquet"
    assert pl.read_parquet(sem).height == n_items


def test_adapter_target_reloads_to_identical_scores(llm_built, mirror_dir):
    """Re-running only the evaluation from the saved adapter reproduces the cell byte for byte."""
    d = cell_dir(llm_built, "lora_sid_cbs")
    before = {n: (d / n).read_bytes() for n in ("metrics.json", "topk.parquet")}
    adapter_mtime = (d / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    snakemake(llm_built, str(d.relative_to(llm_built) / "metrics.json"), "--force", mirror=mirror_dir, configfiles=LLM_CONFIG)
    assert (d / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == adapter_mtime  # not retrained
    for name, blob in before.items():
        assert (d / name).read_bytes() == blob, name


def test_unseen_template_row_reuses_the_trained_adapter(llm_built):
    """RecSysLLM's zero-shot transfer: lora_sid_cbs's adapter on unseen seq6 prompts, not retrained."""
    seen, unseen = cell_dir(llm_built, "lora_sid_cbs"), cell_dir(llm_built, "lora_sid_cbs_unseen")
    assert not (unseen / "adapter").exists() and not (unseen / "train_log.json").exists()
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (seen, unseen))
    assert b["adapter"] == {**a["adapter"], "setting": "lora_sid_cbs"} and a["adapter"]["setting"] == "lora_sid_cbs"
    assert (a["protocol"]["eval_template"], b["protocol"]["eval_template"]) == ("seq1", "seq6")
    assert a["protocol"]["template"] == b["protocol"]["template"] == "seq1"
    assert b["counters"]["invalid_items"] == 0 and b["n_users"] == EVAL_USERS
    prompts = llm_built / f"results/{SLICE}/seqrec/prompts"
    seq6 = [json.loads(line) for line in (prompts / "seq6-semantic_id/test.jsonl").read_text().splitlines()]
    seq1 = [json.loads(line) for line in (prompts / "seq1-semantic_id/test.jsonl").read_text().splitlines()]
    assert [r["target"] for r in seq6] == [r["target"] for r in seq1]  # same users and targets
    assert all("What would user_" in r["prompt"] for r in seq6) and not (prompts / "seq6-semantic_id/train.jsonl").exists()
    prov = json.loads((llm_built / b["provenance"]).read_text())
    assert any("/lora_sid_cbs/seed1/adapter/" in path for path in prov["inputs"])


def test_seen_family_setting_trains_on_every_seen_template(llm_built):
    """RecSysLLM / P5 training: one adapter on the pooled training prompts of seq1-seq5."""
    d = cell_dir(llm_built, "lora_sid_cbs_seen5")
    train_log = json.loads((d / "train_log.json").read_text())
    assert train_log["template"] == "+".join(SEEN) and train_log["n_train_examples"] == 32
    per_template = train_log["train_examples_per_template"]
    assert set(per_template) == set(SEEN) and sum(per_template.values()) == 32  # seeded sample of the pool
    cell = json.loads((d / "metrics.json").read_text())
    assert cell["protocol"]["template"] == "+".join(SEEN) and cell["protocol"]["eval_template"] == "seq1"
    assert cell["counters"]["invalid_items"] == 0
    prov = json.loads((llm_built / cell["provenance"]).read_text())
    trained_on = sorted(Path(path).parent.name for path in prov["train_prompts"])  # sha256 of each file
    assert trained_on == [f"{template}-semantic_id" for template in SEEN]


def test_setting_without_item_text_is_na_with_reason(tmp_path, mirror_dir):
    """Title / semantic-ID settings on a dataset without item text give an N/A cell that says why."""
    target = "results/toys/seqrec/smollm2/lora_sid_cbs/seed1/na.json"
    snakemake(tmp_path, target, mirror=mirror_dir, configfiles=LLM_CONFIG)
    md = to_markdown(merge_cells(read_cells([tmp_path / target])))
    assert "N/A" in md and "toys has no item text" in md
    # and the table of such a run asks for the N/A cell, not for a model run
    toys = tmp_path / "toys.yaml"
    toys.write_text("tasks: {seqrec: {datasets: [toys], models: [], llm_settings: [lora_title, lora_sid_cbs]}}\n")
    proc = snakemake(tmp_path, "results/tables/seqrec.csv", "-n", mirror=mirror_dir, configfiles=(*LLM_CONFIG, str(toys)))
    out = proc.stdout + proc.stderr
    assert "merge_table" in out and "evaluate_llm" not in out and "finetune_llm" not in out


def test_index_leak_row_uses_p5_numbering_and_records_its_probe(llm_built):
    """The setting's `indexing: p5_sequential` numbers its prompts (not splits.indexing), and the
    cell records that numbering with its leakage probe from the split's stats."""
    cell = json.loads((cell_dir(llm_built, "lora_number_p5") / "metrics.json").read_text())
    split = llm_built / f"results/{SLICE}/splits/loo"
    stats = json.loads((split / "stats.json").read_text())
    assert stats["indexing"] != "p5_sequential"  # the row's choice, not the split's default
    p = cell["protocol"]
    assert p["indexing"] == "p5_sequential" and p["decoding"] == "beam5+read_item_number"
    assert p["leakage_probe"] == round(stats["leakage_probe"]["p5_sequential"]["share_next_index"], 6)
    index = pl.read_parquet(split / "item_index.parquet")
    number = dict(zip(index["item_id"].to_list(), index["p5_sequential"].to_list()))
    prompts = llm_built / f"results/{SLICE}/seqrec/prompts/seq1-number_text.p5_sequential"
    for part in ("train", "test"):
        records = [json.loads(line) for line in (prompts / f"{part}.jsonl").read_text().splitlines()]
        assert records and all(r["item_numbering"] == "p5_sequential" for r in records)
        assert all(r["target"] == str(number[r["target_item_id"]]) for r in records)
    c = cell["counters"]
    assert c["hypotheses"] == c["invalid_items"] + c["grounded_exact"] and cell["n_users"] == EVAL_USERS
