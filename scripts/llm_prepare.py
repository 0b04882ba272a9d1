"""Rule prepare_llm: one registered LLM -> plain transformers folder + model_manifest.json."""

from llmrecbench.llm.loading import llm_spec, prepare_model
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    spec = llm_spec(smk.wildcards.model, smk.params.spec)
    manifest = prepare_model(spec, smk.output.model)
    log.info("prepared %s from %s (%d parameters)", spec.hf_id, manifest["source"], manifest["n_parameters"])
