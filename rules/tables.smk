# Merge every cell JSON of a task into results/tables/{task}.csv and .md (mean and std over seeds).
rule merge_table:
    input:
        cells=table_metric_cells,
        timings=table_timing_cells,
    output:
        csv=report(
            "results/tables/{task}.csv",
            caption="../report/table.rst",
            category="Tables",
        ),
        md="results/tables/{task}.md",
    log:
        "results/logs/tables/{task}.log",
    benchmark:
        "results/benchmarks/tables/{task}.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        task="{task}",
    script:
        "../scripts/merge_table.py"
