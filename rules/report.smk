# Plot accuracy against scoring latency per model from a merged table (RecBench's trade-off).
rule plot_tradeoff:
    input:
        table="results/tables/{task}.csv",
    output:
        plot=report(
            "results/plots/{task}_tradeoff.png",
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
        metric="NDCG@10",
    script:
        "../scripts/plot_tradeoff.py"
