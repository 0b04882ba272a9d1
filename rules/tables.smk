# Merge every cell JSON of a task into results/tables/{task}.csv and .md with the task's metric columns (mean and std over seeds).
rule merge_table:
    input:
        cells=table_metric_cells,
        timings=table_timing_cells,
    output:
        csv=report(
            paths.partial(paths.TABLE, ext="csv"),
            caption="../report/table.rst",
            category="Tables",
        ),
        md=paths.partial(paths.TABLE, ext="md"),
    log:
        "results/logs/tables/{task}.log",
    benchmark:
        "results/benchmarks/tables/{task}.tsv"
    wildcard_constraints:
        # any name, so that an unknown task is named in one line by the input function
        task="[A-Za-z0-9_]+",
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        metrics=lambda w: list(task_of(w).metric_names),
    script:
        "../scripts/merge_table.py"
