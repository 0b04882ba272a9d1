"""The multitask branch (RecSysLLM) through the real DAG on the CPU with the offline SmolLM2-135M
(tests/integration/multitask_llm.yaml): one blank-infilling adapter per dataset trained on the
pooled seen templates of its task families (seqrec + direct on a 200-user Beauty slice; rating,
explanation and review on all_beauty), and in each of the five tables a row on the task's first
seen and one on its first unseen template, evaluated with that one adapter."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llmrecbench.llm.prompts import seen_templates, unseen_templates
from tests.integration.dag import REPO, require_offline_llm, snakemake

pytestmark = pytest.mark.integration
require_offline_llm()

CONFIG = (str(REPO / "tests/integration/multitask_llm.yaml"),)
FAMILIES = {"beauty_llm": ("seqrec", "direct"), "all_beauty": ("rating", "explanation", "review")}


@pytest.fixture(scope="session")
def built(tmp_path_factory, mirror_dir) -> Path:
    workdir = tmp_path_factory.mktemp("multitask_dag")
    tables = [f"results/tables/{t}.csv" for tasks in FAMILIES.values() for t in tasks]
    snakemake(workdir, *tables, mirror=mirror_dir, configfiles=CONFIG)
    return workdir


def test_one_adapter_per_dataset_trained_on_every_family(built):
    for dataset, tasks in FAMILIES.items():
        d = built / f"results/{dataset}/multitask/smollm2/recsysllm/seed1"
        log = json.loads((d / "train_log.json").read_text())
        meta = json.loads((d / "adapter/llm_adapter.json").read_text())
        assert meta["config"]["objective"] == "blank_infilling" and meta["entity_pool_size"] > 0
        assert (d / "adapter/entity_pool.json").exists() and (d / "adapter/intra_position.pt").exists()
        expected = {f"results/{dataset}/{t}/prompts/{tpl}-unique_id/train.jsonl" for t in tasks for tpl in seen_templates(t)}
        assert set(log["train_prompts"]) == expected  # the pooled seen templates of all its families
        assert set(meta["train_examples_per_template"]) <= {tpl for t in tasks for tpl in seen_templates(t)}
        assert len({tpl[:3] for tpl in meta["train_examples_per_template"]}) > 1  # really mixed


def test_every_table_has_seen_and_unseen_rows_from_the_shared_adapter(built):
    for dataset, tasks in FAMILIES.items():
        fingerprint = json.loads((built / f"results/{dataset}/multitask/smollm2/recsysllm/seed1/adapter/llm_adapter.json").read_text())["train_fingerprint"]
        for task in tasks:
            table = pl.read_csv(built / f"results/tables/{task}.csv")
            assert set(table["setting"]) == {"RecSysLLM", "RecSysLLM, unseen template"}, task
            assert set(table["template"]) == {f"{seen_templates(task)[0]} (seen)", f"{unseen_templates(task)[0]} (unseen)"}, task
            for key, template, kind in (("recsysllm", seen_templates(task)[0], "seen"),
                                        ("recsysllm_unseen", unseen_templates(task)[0], "unseen")):
                cell = json.loads((built / f"results/{dataset}/{task}/smollm2/{key}/seed1/metrics.json").read_text())
                assert cell["status"] == "ok", (task, key, cell.get("reason"))
                assert cell["protocol"]["eval_template"] == template and cell["protocol"]["eval_template_seen"] == kind
                assert cell["protocol"]["template"] == "multitask"
                assert cell["adapter"] == {"method": "lora", "setting": "recsysllm", "train_fingerprint": fingerprint}
                prov = json.loads((built / cell["provenance"]).read_text())
                assert "finetune_multitask" in prov["rule_chain"]
                assert f"results/{dataset}/multitask/smollm2/recsysllm/seed1/adapter/adapter_model.safetensors" in prov["inputs"]
                assert len(prov["train_prompts"]) == sum(len(seen_templates(t)) for t in tasks)
