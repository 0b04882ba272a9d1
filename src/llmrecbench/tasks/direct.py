"""Direct recommendation (P5 / LLMRec Table 5; RecSysLLM Table 7): pick the user's next item from a
short candidate list.

Protocol (P5): the positive is the user's leave-one-out test item; 99 negatives are drawn
uniformly, seeded, from the items the user never interacted with in the whole sequence, giving
100 candidates, one cached file shared by every row (``results/{dataset}/direct/candidates/``,
its sha256 in every cell). Validation uses an independent draw around the valid item. HR@1/5/10,
NDCG@5/10 and MRR over the 100; score ties are broken by a seeded shuffle, not by item id. Models
of the ``direct`` family (BPR-MF, BPR-MLP, SimpleX) and of the ``sequential`` family (trained for
seqrec, here scored on the candidates: Pop, SASRec, ...). Each cell writes ``topk.parquet`` with
every user's ranked candidates. Training and evaluation live in ``llmrecbench.pipelines.direct``;
the LLM rows (P5 yes/no P(yes), candidate-trie beam search, LLMRec zero-shot list) in
``llmrecbench.llm.direct_rows``.
"""

from __future__ import annotations

from llmrecbench.monitor import Monitor
from llmrecbench.tasks.base import Metric, Task


class DirectRecommendation(Task):
    name = "direct"
    description = "direct recommendation: the test item among 99 sampled negatives (P5 protocol)"
    split = "loo"
    candidates = "sampled_negatives"
    families = ("direct", "sequential")
    metric_columns = tuple(Metric(m) for m in ("HR@1", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "MRR"))
    headline = "HR@10"
    monitor = Monitor("NDCG@10", "max")
    rows_file = "topk.parquet"
    llm = True
    llm_answers = ("candidate_item", "candidate_list", "yes_no")

    def sample_candidates(self, inputs, stage):
        from llmrecbench.pipelines.direct import sample_stage_candidates

        return sample_stage_candidates(inputs, stage, self.options)

    def train(self, spec, inputs, *, seed, checkpoint_root, threads):
        from llmrecbench.pipelines.direct import train_direct_model

        return train_direct_model(spec, inputs, self.options, seed=seed, checkpoint_root=checkpoint_root, threads=threads)

    def evaluate(self, model_path, spec, inputs, *, identity):
        from llmrecbench.pipelines.direct import evaluate_direct_cell

        return evaluate_direct_cell(model_path, spec, inputs, self.options, identity=identity)

    def build_llm_prompts(self, inputs, key, split, dest, prompt_cfg, context):
        from llmrecbench.llm.task_runs import build_direct_prompt_file

        return build_direct_prompt_file(inputs, key, split, dest, prompt_cfg, self.options)

    def evaluate_llm(self, inputs, spec, llm_cfg, *, identity):
        from llmrecbench.llm.task_runs import evaluate_direct_llm

        return evaluate_direct_llm(inputs, spec, llm_cfg, self.options, identity=identity)
