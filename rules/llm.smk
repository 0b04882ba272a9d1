# LLM recommenders: model preparation, prompt files, fine-tuning (LoRA / P-tuning v2), evaluation.
from llmrecbench.llm.recommend import setting_spec


def llm_model_spec(wildcards):
    """The LLM's config block; unknown names fail with the list of known ones."""
    if wildcards.model not in config["llm_models"]:
        raise ValueError(
            f"config.yaml: unknown LLM {wildcards.model!r}; "
            f"known: {', '.join(sorted(config['llm_models']))}"
        )
    return config["llm_models"][wildcards.model]


def llm_setting(wildcards):
    """The validated block of the LLM setting {setting} (method, item_repr, templates, ...)."""
    if wildcards.setting not in config["llm_settings"]:
        raise ValueError(
            f"config.yaml: unknown LLM setting {wildcards.setting!r}; "
            f"known: {', '.join(sorted(config['llm_settings']))}"
        )
    return setting_spec(wildcards.setting, config["llm_settings"][wildcards.setting])


def llm_codes(item_repr, dataset):
    """Semantic-ID codes file of the dataset, as a one-entry input dict (empty for other reprs)."""
    if item_repr != "semantic_id":
        return {}
    return {"codes": config["llm"]["semantic_id_codes"].format(dataset=dataset)}


def llm_prompt_inputs(wildcards):
    """Split files + item table (+ semantic-ID codes) of one prompt file."""
    return {
        "train": f"results/{wildcards.dataset}/splits/loo/train.parquet",
        "valid": f"results/{wildcards.dataset}/splits/loo/valid.parquet",
        "test": f"results/{wildcards.dataset}/splits/loo/test.parquet",
        "item_table": f"results/{wildcards.dataset}/data/items.parquet",
        **llm_codes(wildcards.template.partition("-")[2], wildcards.dataset),
    }


def llm_finetune_inputs(wildcards):
    """Training prompts of the setting's (seen) template, the prepared model, items (+ codes)."""
    spec = llm_setting(wildcards)
    key = f"{spec['template']}-{spec['item_repr']}"
    return {
        "prompts": f"results/{wildcards.dataset}/seqrec/prompts/{key}/train.jsonl",
        "model": f"resources/models/{wildcards.model}/model_manifest.json",
        "item_table": f"results/{wildcards.dataset}/data/items.parquet",
        **llm_codes(spec["item_repr"], wildcards.dataset),
    }


def llm_evaluate_inputs(wildcards):
    """Test prompts of the setting's evaluation template, the model, the adapter if fine-tuned."""
    spec = llm_setting(wildcards)
    key = f"{spec['eval_template']}-{spec['item_repr']}"
    run_dir = f"results/{wildcards.dataset}/seqrec/{wildcards.model}/{wildcards.setting}/seed{wildcards.seed}"
    inputs = {
        "prompts": f"results/{wildcards.dataset}/seqrec/prompts/{key}/test.jsonl",
        "model": f"resources/models/{wildcards.model}/model_manifest.json",
        "item_table": f"results/{wildcards.dataset}/data/items.parquet",
        **llm_codes(spec["item_repr"], wildcards.dataset),
    }
    if spec["method"] != "zeroshot":
        inputs["adapter"] = f"{run_dir}/adapter"
        inputs["train_log"] = f"{run_dir}/train_log.json"
    return inputs


# Convert one registered LLM (GGUF in a pip package, or a hub id) once into a plain model folder + manifest.
rule prepare_llm:
    output:
        manifest="resources/models/{model}/model_manifest.json",
    log:
        "results/logs/models/{model}/prepare.log",
    benchmark:
        "results/benchmarks/models/{model}/prepare.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        spec=llm_model_spec,
    script:
        "../scripts/llm_prepare.py"


# Build one prompt file ({template} = <template id>-<item repr>) for a split of the leave-one-out data.
rule build_llm_prompts:
    input:
        unpack(llm_prompt_inputs),
    output:
        prompts="results/{dataset}/{task}/prompts/{template}/{split}.jsonl",
    log:
        "results/logs/{dataset}/{task}/prompts/{template}/{split}.log",
    benchmark:
        "results/benchmarks/{dataset}/{task}/prompts/{template}/{split}.tsv"
    wildcard_constraints:
        template="[a-z0-9]+-(text|unique_id|semantic_id)",
        split="train|valid|test",
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        prompts=config["llm"]["prompts"],
    script:
        "../scripts/llm_prompts.py"


# Fine-tune one LLM setting (LoRA or P-tuning v2) on its training prompts; checkpoints every epoch, resumes.
rule finetune_llm:
    input:
        unpack(llm_finetune_inputs),
    output:
        adapter=directory(
            "results/{dataset}/seqrec/{model}/{setting}/seed{seed}/adapter"
        ),
        train_log="results/{dataset}/seqrec/{model}/{setting}/seed{seed}/train_log.json",
    log:
        "results/logs/{dataset}/seqrec/{model}/{setting}/seed{seed}/finetune.log",
    benchmark:
        "results/benchmarks/{dataset}/seqrec/{model}/{setting}/seed{seed}/finetune.tsv"
    wildcard_constraints:
        setting="[A-Za-z0-9_\\-]+",
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        gpu=1,
        runtime=600,
    params:
        spec=llm_setting,
        checkpoint_root="results/{dataset}/seqrec/{model}/{setting}/seed{seed}/checkpoints",
    script:
        "../scripts/llm_finetune.py"


# Evaluate one LLM setting on the test users (zero-shot + refinement, or beam / trie-constrained search) -> one cell.
rule evaluate_llm:
    input:
        unpack(llm_evaluate_inputs),
    output:
        metrics="results/{dataset}/seqrec/{model}/{setting}/seed{seed}/metrics.json",
        topk="results/{dataset}/seqrec/{model}/{setting}/seed{seed}/topk.parquet",
        timing="results/{dataset}/seqrec/{model}/{setting}/seed{seed}/timing.json",
        provenance="results/provenance/{dataset}/seqrec/{model}/{setting}/seed{seed}.json",
    log:
        "results/logs/{dataset}/seqrec/{model}/{setting}/seed{seed}/evaluate.log",
    benchmark:
        "results/benchmarks/{dataset}/seqrec/{model}/{setting}/seed{seed}/evaluate.tsv"
    wildcard_constraints:
        setting="[A-Za-z0-9_\\-]+",
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        gpu=1,
    params:
        spec=llm_setting,
        llm=config["llm"],
        evaluation=config["evaluation"],
        indexing=config["splits"]["indexing"],
    script:
        "../scripts/llm_evaluate.py"
