# Fetch one raw file: copied from the mirror when configured and present, else downloaded; sha256-checked.
rule download_raw_file:
    output:
        raw="resources/raw/{source}/{filename}",
        provenance="resources/raw/{source}/{filename}.provenance.json",
    log:
        "results/logs/raw/{source}/{filename}.log",
    benchmark:
        "results/benchmarks/raw/{source}/{filename}.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        spec=raw_file_spec,
        mirror=mirror_dir(),
    script:
        "../scripts/download.py"
