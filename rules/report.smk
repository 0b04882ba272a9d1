# Plot accuracy against scoring latency per model from a merged table (RecBench's trade-off).
rule plot_tradeoff:
    input:
        table=paths.partial(paths.TABLE, ext="csv"),
    output:
        plot=report(
            paths.PLOT,
            caption="../report/tradeoff.rst",
            category="Plots",
        ),
    log:
        "results/logs/plots/{task}_tradeoff.log",
    benchmark:
        "results/benchmarks/plots/{task}_tradeoff.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        metric=lambda w: task_of(w).headline,
        unit=lambda w: task_of(w).latency_unit,
    script:
        "../scripts/plot_tradeoff.py"
