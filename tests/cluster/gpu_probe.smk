# GPU placement probe for tests/cluster/test_slurm.py: rules named like the workflow's GPU rules,
# so that profiles/slurm's set-resources (keyed by rule name) place them; each job records what
# SLURM gave it. Run with --workflow-profile profiles/slurm on the local cluster.


rule all:
    input:
        expand(
            "probe/{name}.txt",
            name=["finetune_llm", "evaluate_llm", "embed_items", "cpu_rule"],
        ),


# One rule per name; the job writes its CUDA_VISIBLE_DEVICES and SLURM's view of the job.
for _name in ["finetune_llm", "evaluate_llm", "embed_items", "cpu_rule"]:

    rule:
        name:
            _name
        output:
            f"probe/{_name}.txt",
        log:
            f"probe/{_name}.log",
        conda:
            "../../envs/llmrecbench.yaml"
        threads: 1
        shell:
            'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-}}" > {output} 2> {log} && '
            'scontrol show job "$SLURM_JOB_ID" >> {output} 2>> {log}'
