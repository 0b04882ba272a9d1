# Conventional models of every task: training (the task's split, early stopping on its monitored
# metric) and evaluation (the task's evaluator) -> one table cell. Paths: llmrecbench.paths.


# Train one registered model on its task's training split (early stopping on the task's monitored valid metric, resumable).
rule train_model:
    input:
        unpack(model_train_inputs),
    output:
        model=paths.partial(paths.CELL_FILE, name="model.pt"),
        train_log=paths.partial(paths.CELL_FILE, name="train_log.json"),
    log:
        paths.partial(paths.CELL_LOG, step="train"),
    benchmark:
        paths.partial(paths.CELL_BENCHMARK, step="train")
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        spec=trained_model_spec,
        evaluation=task_evaluation,
        checkpoint_root=paths.CHECKPOINTS,
    script:
        "../scripts/train_model.py"


# Evaluate one trained model on a ranking task's test users (full ranking or candidates) -> cell + top-k lists.
rule evaluate_ranking_model:
    input:
        unpack(model_eval_inputs),
    output:
        metrics=paths.partial(paths.CELL_FILE, name="metrics.json"),
        rows=paths.partial(paths.CELL_FILE, name="topk.parquet"),
        timing=paths.partial(paths.CELL_FILE, name="timing.json"),
        provenance=paths.PROVENANCE,
    log:
        paths.partial(paths.CELL_LOG, step="evaluate"),
    benchmark:
        paths.partial(paths.CELL_BENCHMARK, step="evaluate")
    wildcard_constraints:
        task=tasks_with_rows("topk.parquet"),
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        spec=model_spec,
        evaluation=task_evaluation,
        indexing=row_indexing,
    script:
        "../scripts/evaluate_model.py"


# Evaluate one trained pointwise model (rating, CTR) on the test pairs -> cell + predictions.parquet (metrics recomputable).
rule evaluate_pointwise_model:
    input:
        unpack(model_eval_inputs),
    output:
        metrics=paths.partial(paths.CELL_FILE, name="metrics.json"),
        rows=paths.partial(paths.CELL_FILE, name="predictions.parquet"),
        timing=paths.partial(paths.CELL_FILE, name="timing.json"),
        provenance=paths.PROVENANCE,
    log:
        paths.partial(paths.CELL_LOG, step="evaluate"),
    benchmark:
        paths.partial(paths.CELL_BENCHMARK, step="evaluate")
    wildcard_constraints:
        task=tasks_with_rows("predictions.parquet"),
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        spec=model_spec,
        evaluation=task_evaluation,
        indexing=row_indexing,
    script:
        "../scripts/evaluate_model.py"


# Sample one stage's candidate lists of a candidate-ranking task (seeded; shared by every row of its table).
rule sample_candidates:
    input:
        unpack(candidate_inputs),
    output:
        candidates=paths.CANDIDATES,
    log:
        "results/logs/{dataset}/{task}/candidates/{stage}.log",
    benchmark:
        "results/benchmarks/{dataset}/{task}/candidates/{stage}.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        evaluation=task_evaluation,
    script:
        "../scripts/sample_candidates.py"


# Write the cell of a model whose dataset cannot serve it (raw files missing, or no item text for its item representation): N/A and why.
rule model_na_cell:
    output:
        cell=paths.partial(paths.CELL_FILE, name="na.json"),
    log:
        paths.partial(paths.CELL_LOG, step="na"),
    benchmark:
        paths.partial(paths.CELL_BENCHMARK, step="na")
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        spec=model_spec,
        reason=conventional_unavailable,
    script:
        "../scripts/model_na_cell.py"


# Evaluate one trained text model on a text task's test pairs -> cell + generations (BLEU / ROUGE recomputable).
use rule evaluate_pointwise_model as evaluate_generation_model with:
    output:
        metrics=paths.partial(paths.CELL_FILE, name="metrics.json"),
        rows=paths.partial(paths.CELL_FILE, name="generations.parquet"),
        timing=paths.partial(paths.CELL_FILE, name="timing.json"),
        provenance=paths.PROVENANCE,
    wildcard_constraints:
        task=tasks_with_rows("generations.parquet"),
