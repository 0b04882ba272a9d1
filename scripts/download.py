"""Rule download_raw_file: mirror copy or upstream download of one raw file, checksummed."""

from pathlib import Path

from llmrecbench.data.download import fetch_file
from llmrecbench.io import write_json
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    spec = snakemake.params.spec  # noqa: F821
    mirror = snakemake.params.mirror  # noqa: F821
    mirror_file = Path(mirror) / spec["mirror"] if mirror and spec["mirror"] else None
    record = fetch_file(
        Path(snakemake.output.raw),  # noqa: F821
        url=spec["url"],
        sha256=spec["sha256"],
        mirror_file=mirror_file,
    )
    record["expected_sha256"] = spec["sha256"]
    record["url"] = spec["url"]
    log.info("fetched %s from %s (%s bytes, sha256 %s)", snakemake.output.raw, record["origin"], record["bytes"], record["sha256"])  # noqa: F821
    write_json(record, snakemake.output.provenance)  # noqa: F821
