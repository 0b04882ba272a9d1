# LLMs as recommenders: model folder, prompt files, fine-tuning (LoRA / P-tuning v2), evaluation.
# Input functions and wildcard constraints ({setting}, {template}, {prompt_split}) live in common.smk.


# Convert one registered LLM (GGUF inside a pip package, or a hub id) once into a plain model folder + manifest.
rule prepare_llm:
    input:
        unpack(llm_model_source),
    output:
        model=directory(paths.LLM_MODEL),
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


# Build one cached prompt file ({template} = <template id>-<item repr>) of one split, as the task builds it.
rule build_llm_prompts:
    input:
        unpack(llm_prompt_inputs),
    output:
        prompts=paths.PROMPTS,
    log:
        "results/logs/{dataset}/{task}/prompts/{template}/{prompt_split}.log",
    benchmark:
        "results/benchmarks/{dataset}/{task}/prompts/{template}/{prompt_split}.tsv"
    wildcard_constraints:
        task=llm_task_pattern(),
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        prompts=config["llm"]["prompts"],
        context=llm_prompt_context,
        evaluation=task_evaluation,
    script:
        "../scripts/llm_prompts.py"


# Fine-tune one LLM setting (LoRA or P-tuning v2) on its training prompts; a checkpoint per epoch, resumes.
rule finetune_llm:
    input:
        unpack(llm_finetune_inputs),
    output:
        adapter=directory(paths.partial(paths.LLM_CELL_FILE, name="adapter")),
        train_log=paths.partial(paths.LLM_CELL_FILE, name="train_log.json"),
    log:
        paths.partial(paths.LLM_LOG, step="finetune"),
    benchmark:
        paths.partial(paths.LLM_BENCHMARK, step="finetune")
    wildcard_constraints:
        task=llm_task_pattern(),
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        gpu=1,
        runtime=720,
    params:
        spec=llm_training_spec,
        checkpoint_root=paths.LLM_CHECKPOINTS,
    script:
        "../scripts/llm_finetune.py"


# One multitask LoRA adapter per dataset on the pooled seen templates of its task families (P5 / RecSysLLM).
rule finetune_multitask:
    input:
        unpack(llm_multitask_inputs),
    output:
        adapter=directory(paths.partial(paths.LLM_MULTITASK_FILE, name="adapter")),
        train_log=paths.partial(paths.LLM_MULTITASK_FILE, name="train_log.json"),
    log:
        paths.partial(paths.LLM_LOG, task=paths.MULTITASK, step="finetune"),
    benchmark:
        paths.partial(paths.LLM_BENCHMARK, task=paths.MULTITASK, step="finetune")
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        gpu=1,
        runtime=720,
    params:
        spec=llm_training_spec,
        checkpoint_root=paths.LLM_MULTITASK_CHECKPOINTS,
    script:
        "../scripts/llm_finetune.py"


# Score one LLM setting of a ranking task on the test users (generated lists, trie search, yes/no) -> one cell.
rule evaluate_llm:
    input:
        unpack(llm_evaluate_inputs),
    output:
        metrics=paths.partial(paths.LLM_CELL_FILE, name="metrics.json"),
        rows=paths.partial(paths.LLM_CELL_FILE, name="topk.parquet"),
        timing=paths.partial(paths.LLM_CELL_FILE, name="timing.json"),
        provenance=paths.LLM_PROVENANCE,
    log:
        paths.partial(paths.LLM_LOG, step="evaluate"),
    benchmark:
        paths.partial(paths.LLM_BENCHMARK, step="evaluate")
    wildcard_constraints:
        task=llm_task_rows("topk.parquet"),
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
        evaluation=task_evaluation,
        indexing=config["splits"]["indexing"],
    script:
        "../scripts/llm_evaluate.py"


# Score one LLM setting of a pointwise task (rating: answer reader, N/A policy) on the test pairs -> one cell.
use rule evaluate_llm as evaluate_llm_predictions with:
    output:
        metrics=paths.partial(paths.LLM_CELL_FILE, name="metrics.json"),
        rows=paths.partial(paths.LLM_CELL_FILE, name="predictions.parquet"),
        timing=paths.partial(paths.LLM_CELL_FILE, name="timing.json"),
        provenance=paths.LLM_PROVENANCE,
    wildcard_constraints:
        task=llm_task_rows("predictions.parquet"),


# Score one LLM setting of a text-generation task (explanation, review: one greedy sentence per test pair) -> one cell.
use rule evaluate_llm as evaluate_llm_generations with:
    output:
        metrics=paths.partial(paths.LLM_CELL_FILE, name="metrics.json"),
        rows=paths.partial(paths.LLM_CELL_FILE, name="generations.parquet"),
        timing=paths.partial(paths.LLM_CELL_FILE, name="timing.json"),
        provenance=paths.LLM_PROVENANCE,
    wildcard_constraints:
        task=llm_task_rows("generations.parquet"),


# Write the cell of an LLM setting that cannot run on a dataset (e.g. no item text): N/A and why.
rule llm_na_cell:
    output:
        cell=paths.partial(paths.LLM_CELL_FILE, name="na.json"),
    log:
        paths.partial(paths.LLM_LOG, step="na"),
    benchmark:
        paths.partial(paths.LLM_BENCHMARK, step="na")
    wildcard_constraints:
        task=llm_task_pattern(),
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        block=llm_setting,
        reason=lambda w: llm_unavailable(w.dataset, w.setting, w.task)
        or "N/A: not computed (the setting can run on this dataset; build metrics.json)",
    script:
        "../scripts/llm_na_cell.py"
