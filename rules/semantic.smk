# Encode every item's text with a SentenceBERT encoder into normalised vectors (datasets with item text only).
rule embed_items:
    input:
        item_table=text_items_table,
    output:
        embeddings="results/{dataset}/embeddings/{encoder}.parquet",
        provenance="results/{dataset}/embeddings/{encoder}.provenance.json",
    log:
        "results/logs/{dataset}/embeddings/{encoder}.log",
    benchmark:
        "results/benchmarks/{dataset}/embeddings/{encoder}.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        encoder=encoder_spec,
        cache_dir="resources/models",
    script:
        "../scripts/embed_items.py"


# FAISS kNN sanity report: for a seeded sample of items, the titles of their nearest neighbours.
rule knn_report:
    input:
        embeddings="results/{dataset}/embeddings/{encoder}.parquet",
        item_table="results/{dataset}/data/items.parquet",
    output:
        report="results/{dataset}/embeddings/{encoder}.knn.json",
    log:
        "results/logs/{dataset}/embeddings/{encoder}.knn.log",
    benchmark:
        "results/benchmarks/{dataset}/embeddings/{encoder}.knn.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        sample=20,
        k=5,
        seed=config["splits"]["seed"],
    script:
        "../scripts/knn_report.py"


# Train an RQ-VAE with {levels} x {codebook} codebooks and give every item a unique semantic ID.
rule train_semantic_ids:
    input:
        embeddings="results/{dataset}/embeddings/{encoder}.parquet",
    output:
        codes="results/{dataset}/semantic_ids/{encoder}/{levels}x{codebook}/codes.parquet",
        report="results/{dataset}/semantic_ids/{encoder}/{levels}x{codebook}/report.json",
        model="results/{dataset}/semantic_ids/{encoder}/{levels}x{codebook}/rqvae.pt",
    log:
        "results/logs/{dataset}/semantic_ids/{encoder}/{levels}x{codebook}.log",
    benchmark:
        "results/benchmarks/{dataset}/semantic_ids/{encoder}/{levels}x{codebook}.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        options=config["semantic_ids"]["rqvae"],
    script:
        "../scripts/train_semantic_ids.py"
