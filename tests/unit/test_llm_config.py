"""LLM blocks of the configuration: schema, registry names, settings, shipped configs."""

from pathlib import Path

import pytest
import yaml

from llmrecbench.config import check_config, check_registry_names
from llmrecbench.errors import ConfigError
from llmrecbench.llm.settings import setting_spec

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas/config.schema.yaml"


def merged(*files: str) -> dict:
    """config.yaml with the given files merged over it, the way Snakemake's --configfile does."""

    def update(base, new):
        for k, v in new.items():
            base[k] = update(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return base

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for f in files:
        cfg = update(cfg, yaml.safe_load((REPO / f).read_text()))
    return cfg


@pytest.mark.parametrize("files", [(), ("configs/llm_gpu.yaml",), ("configs/llm_cpu_slice.yaml",), ("configs/semantic.yaml",),
                                   ("configs/converged.yaml",), ("configs/amazon3.yaml",), ("configs/seeds3.yaml",),
                                   ("configs/llm_cpu_tasks.yaml",), ("configs/recsysllm_cpu_seeds.yaml",),
                                   ("configs/tiger_paper.yaml",), ("configs/tiger_paper.yaml", "configs/tiger_paper_cpu.yaml"),
                                   ("tests/integration/config.yaml", "tests/integration/llm.yaml"),
                                   ("tests/integration/config.yaml", "tests/integration/tasks.yaml"),
                                   ("tests/integration/config.yaml", "tests/cluster/config.yaml")])
def test_shipped_configs_are_valid(files):
    cfg = merged(*files)
    check_config(cfg, SCHEMA)
    check_registry_names(cfg)
    from llmrecbench.llm.settings import check_adapter_source

    for name in cfg["tasks"].get("seqrec", {}).get("llm_settings", []):
        check_adapter_source(name, cfg["llm_settings"])
        spec = setting_spec(name, cfg["llm_settings"][name])
        assert spec["method"] in ("zeroshot", "lora", "prefix")


def test_default_settings_are_llmrec_and_main_run_has_no_llm():
    cfg = merged()
    seqrec = cfg["tasks"]["seqrec"]
    assert seqrec["llm_models"] == [] and seqrec["llm_settings"] == []  # main CPU command
    lora = cfg["llm_settings"]["lora_title"]["finetune"]
    assert (lora["lora_r"], lora["lora_alpha"], lora["lr"], lora["batch_size"], lora["epochs"]) == (8, 16, 3e-4, 8, 10)
    pt = cfg["llm_settings"]["ptuning_title"]["finetune"]
    assert (pt["prefix_length"], pt["lr"]) == (128, 2e-2) and cfg["llm"]["decoding"]["beam_width"] == 20
    assert cfg["llm_models"]["smollm2"]["hf_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    tasks = ("seqrec", "rating", "direct", "explanation", "review", "ctr")
    for task in tasks:
        assert cfg["tasks"][task]["llm_models"] == [] and cfg["tasks"][task]["llm_settings"] == []
    gpu = merged("configs/llm_gpu.yaml")
    # the GPU config runs every setting, each under the task whose templates it uses
    assert set().union(*(gpu["tasks"][t]["llm_settings"] for t in tasks)) == set(cfg["llm_settings"])
    check_registry_names(gpu, "configs/llm_gpu.yaml")


def test_unknown_or_clashing_names_fail_in_one_line():
    cfg = merged()
    cfg["tasks"]["seqrec"]["llm_settings"] = ["nope"]
    with pytest.raises(ConfigError, match="tasks.seqrec.llm_settings: unknown name 'nope'"):
        check_registry_names(cfg, "c.yaml")
    cfg = merged()
    cfg["llm_models"]["sasrec"] = cfg["llm_models"]["smollm2"]
    with pytest.raises(ConfigError, match="also name models"):
        check_registry_names(cfg, "c.yaml")


@pytest.mark.parametrize(
    "block, message",
    [
        ({"method": "finetune"}, "is not zeroshot, lora or prefix"),
        ({"method": "zeroshot", "item_repr": "unique_id"}, "zero-shot needs item_repr text"),
        ({"method": "lora", "template": "seq6"}, "seq6 unseen"),
        ({"method": "lora", "template": ["seq1", "seq7"]}, "seq7 unseen"),
        ({"method": "lora", "template": ["seq1", "seq1"]}, "not a template id or a list of distinct ids"),
        ({"method": "lora", "template": []}, "not a template id or a list of distinct ids"),
        ({"method": "zeroshot", "template": ["llmrec", "seq1"]}, "one zero-shot template"),
        ({"method": "prefix", "item_repr": "semantic_id"}, "prefix tuning trains no embeddings"),
        ({"method": "lora", "item_repr": "number_text", "indexing": "p5"}, "is not one of"),
        ({"method": "lora", "item_repr": "text", "indexing": "p5_sequential"}, "shows no item numbers"),
    ],
)
def test_bad_settings_are_rejected(block, message):
    with pytest.raises(ConfigError, match=message):
        setting_spec("x", block)


def test_indexing_names_the_prompt_file_and_must_match_the_adapter_source():
    from llmrecbench.llm.settings import check_adapter_source, prompt_key_of

    p5 = {"method": "lora", "item_repr": "number_text", "indexing": "p5_sequential"}
    assert prompt_key_of(setting_spec("a", p5), "seq1") == "seq1-number_text.p5_sequential"
    assert prompt_key_of(setting_spec("b", {**p5, "indexing": None}), "seq6") == "seq6-number_text"
    settings = {"a": p5, "b": {**p5, "indexing": "random", "adapter_from": "a", "eval_template": "seq6"}}
    with pytest.raises(ConfigError, match="indexing"):  # an adapter trained on other numbers would be mislabelled
        check_adapter_source("b", settings)


def test_adapter_from_evaluates_another_settings_adapter():
    from llmrecbench.llm.settings import check_adapter_source

    cfg = merged()
    settings = cfg["llm_settings"]
    check_adapter_source("lora_sid_cbs_unseen", settings)
    spec = setting_spec("lora_sid_cbs_unseen", settings["lora_sid_cbs_unseen"])
    assert spec["adapter_setting"] == "lora_sid_cbs" and spec["eval_template"] == "seq6"
    assert setting_spec("lora_sid_cbs", settings["lora_sid_cbs"])["adapter_setting"] == "lora_sid_cbs"
    assert setting_spec("zero_shot_title", settings["zero_shot_title"])["adapter_setting"] is None
    # resolving a resolved spec changes nothing (rules pass resolved specs on)
    assert setting_spec("lora_sid_cbs_unseen", spec) == spec


def test_a_setting_can_train_on_the_seen_template_family():
    """RecSysLLM / P5: one adapter on the pooled prompts of several seen templates."""
    from llmrecbench.llm.settings import check_adapter_source

    settings = merged()["llm_settings"]
    spec = setting_spec("lora_sid_cbs_seen5", settings["lora_sid_cbs_seen5"])
    assert spec["train_templates"] == ["seq1", "seq2", "seq3", "seq4", "seq5"]
    assert spec["template"] == "seq1+seq2+seq3+seq4+seq5" and spec["eval_template"] == "seq1"
    assert setting_spec("lora_sid_cbs_seen5", spec) == spec
    check_adapter_source("lora_sid_cbs_seen5_unseen", settings)
    # the seq1-only adapter is not the family's adapter
    borrowed = {**settings["lora_sid_cbs_seen5_unseen"], "adapter_from": "lora_sid_cbs"}
    with pytest.raises(ConfigError, match=r"template: 'seq1\+seq2\+seq3\+seq4\+seq5' differs from 'seq1'"):
        check_adapter_source("x", {**settings, "x": borrowed})


def test_training_prompt_files_must_match_the_settings_templates(tmp_path):
    from llmrecbench.errors import InputError
    from llmrecbench.llm.prompts import write_jsonl
    from llmrecbench.llm.recommend import run_finetune

    files = []
    for template in ("seq2", "seq1"):
        files.append(tmp_path / f"{template}.jsonl")
        write_jsonl([{"template": template, "prompt": "p", "target": "t", "item_repr": "text"}], files[-1])
    spec = setting_spec("x", {"method": "lora", "template": ["seq1", "seq2"]})
    with pytest.raises(InputError, match=r"seq2.jsonl.*uses? template 'seq2', the setting trains on 'seq1'"):
        run_finetune(tmp_path, files, tmp_path / "items.parquet", spec, 1, tmp_path / "a", tmp_path / "c")
    with pytest.raises(ConfigError, match="1 training prompt files for templates"):
        run_finetune(tmp_path, files[:1], tmp_path / "items.parquet", spec, 1, tmp_path / "a", tmp_path / "c")


@pytest.mark.parametrize(
    "block, message",
    [
        ({"method": "lora", "adapter_from": "nope"}, "unknown setting 'nope'"),
        ({"method": "lora", "adapter_from": "zero_shot_title"}, "does not train an adapter of its own"),
        ({"method": "lora", "adapter_from": "lora_sid_cbs_unseen", "item_repr": "semantic_id"}, "does not train an adapter"),
        ({"method": "lora", "adapter_from": "lora_sid_cbs"}, r"item_repr: 'text' differs from 'semantic_id'"),
        ({"method": "prefix", "adapter_from": "lora_title"}, r"method: 'prefix' differs from 'lora'"),
        ({"method": "lora", "adapter_from": "lora_title", "finetune": {"epochs": 3}}, "finetune options belong to 'lora_title'"),
    ],
)
def test_bad_adapter_sources_fail_in_one_line(block, message):
    from llmrecbench.llm.settings import check_adapter_source

    settings = {**merged()["llm_settings"], "x": block}
    with pytest.raises(ConfigError, match=message):
        check_adapter_source("x", settings)
