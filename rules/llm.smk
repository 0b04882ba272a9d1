# LLMs as recommenders: model folder, prompt files, fine-tuning (LoRA / P-tuning v2), evaluation.
# Input functions and wildcard constraints ({setting}, {template}, {prompt_split}) live in common.smk.


# Convert one registered LLM (GGUF inside a pip package, or a hub id) once into a plain model folder + manifest.
rule prepare_llm:
    input:
        unpack(llm_model_source),
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
        runtime=30,
    params:
        spec=llm_model_spec,
    script:
        "../scripts/llm_prepare.py"


# Build one cached prompt file ({template} = <template id>-<item repr>) for one leave-one-out split.
rule build_llm_prompts:
    input:
        unpack(llm_prompt_inputs),
    output:
        prompts="results/{dataset}/{task}/prompts/{template}/{prompt_split}.jsonl",
    log:
        "results/logs/{dataset}/{task}/prompts/{template}/{prompt_split}.log",
    benchmark:
        "results/benchmarks/{dataset}/{task}/prompts/{template}/{prompt_split}.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        prompts=config["llm"]["prompts"],
    script:
        "../scripts/llm_prompts.py"


# Fine-tune one LLM setting (LoRA or P-tuning v2) on its training prompts; a checkpoint per epoch, resumes.
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
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        gpu=1,
        runtime=720,
    params:
        spec=llm_training_spec,
        checkpoint_root="results/{dataset}/seqrec/{model}/{setting}/seed{seed}/checkpoints",
    script:
        "../scripts/llm_finetune.py"


# Score one LLM setting on the test users (zero-shot + refinement, or beam / trie-constrained search) -> one cell.
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
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        gpu=1,
        runtime=240,
    params:
        spec=llm_setting,
        llm=config["llm"],
        evaluation=config["evaluation"],
        indexing=config["splits"]["indexing"],
    script:
        "../scripts/llm_evaluate.py"


# Write the cell of an LLM setting that cannot run on a dataset (e.g. no item text): N/A and why.
rule llm_na_cell:
    output:
        cell="results/{dataset}/seqrec/{model}/{setting}/seed{seed}/na.json",
    log:
        "results/logs/{dataset}/seqrec/{model}/{setting}/seed{seed}/na.log",
    benchmark:
        "results/benchmarks/{dataset}/seqrec/{model}/{setting}/seed{seed}/na.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        block=llm_setting,
        reason=lambda w: llm_unavailable(w.dataset, w.setting)
        or "N/A: not computed (the setting can run on this dataset; build metrics.json)",
    script:
        "../scripts/llm_na_cell.py"
