"""CTR prediction (RecBench's pair-wise scenario; its Tables 3-4): P(click) of labelled user-item
pairs, AUC / GAUC / log loss.

Data: the task's own pairs, ``results/{dataset}/ctr/data/{train,valid,test}.parquet`` (user_id,
item_id, label, history), built from the dataset's interactions by
:mod:`llmrecbench.data.ctr_pairs` (ratings >= 4 click, <= 2 no click; positive-only sequences get
seeded uniform non-clicks); users, not pairs, are split, so test users are never trained on.
Models of the ``ctr`` family (:mod:`llmrecbench.models.ctr`: DNN, DeepFM, DCN, DCNv2, AutoInt,
PNN, GDCN, FinalMLP, MaskNet over ID, title-token or sentence-encoder item vectors). Columns:
AUC (scikit-learn), GAUC in RecBench's form (unweighted user mean) and FuxiCTR's (weighted by
pairs), logloss (:mod:`llmrecbench.metrics.ctr`). Early stopping follows valid AUC.
"""

from __future__ import annotations

from llmrecbench import paths
from llmrecbench.monitor import Monitor
from llmrecbench.tasks.base import Metric, Task


class CTRPrediction(Task):
    name = "ctr"
    description = "CTR prediction: P(click) of held-out labelled pairs of users unseen in training (RecBench)"
    split = "user_disjoint"
    families = ("ctr",)
    metric_columns = (Metric("AUC"), Metric("GAUC (RecBench)"), Metric("GAUC (FuxiCTR)"), Metric("logloss", higher_is_better=False))
    headline = "AUC"
    monitor = Monitor("AUC", "max")
    rows_file = "predictions.parquet"
    own_data = True
    count_column = "n_pairs"
    latency_unit = "test pair"
    # LLM rows: RecBench's prompt per pair (llm.task_prompts.ctr_prompts), scored by P(YES)
    # (llm.ctr_rows); LoRA trains on the same pairs with BCE on P(YES) (finetune objective yes_no_bce)
    llm = True
    llm_answers = ("click",)

    def prepare_inputs(self, dataset: str) -> dict[str, str]:
        """What the pair builder reads: the dataset's interactions and items (for the id range)."""
        return {"interactions": paths.fill(paths.INTERACTIONS, dataset=dataset), "item_table": paths.fill(paths.ITEMS, dataset=dataset)}

    def data_inputs(self, dataset: str) -> dict[str, str]:
        return {
            **{p: paths.fill(paths.TASK_DATA, dataset=dataset, task=self.name, part=p) for p in paths.SPLIT_PARTS},
            "item_table": paths.fill(paths.ITEMS, dataset=dataset),
            "user_table": paths.fill(paths.USERS, dataset=dataset),
        }

    def prepare(self, inputs, ground_truth):
        import polars as pl

        from llmrecbench.data.ctr_pairs import build_ctr_pairs
        from llmrecbench.pipelines.common import count_rows

        interactions = pl.read_parquet(inputs["interactions"])
        return build_ctr_pairs(interactions, count_rows(inputs["item_table"]), ground_truth, where=inputs["interactions"])

    def train(self, spec, inputs, *, seed, checkpoint_root, threads):
        from llmrecbench.pipelines.ctr import train_ctr_model

        return train_ctr_model(spec, inputs, self.options, seed=seed, checkpoint_root=checkpoint_root, threads=threads)

    def evaluate(self, model_path, spec, inputs, *, identity):
        from llmrecbench.pipelines.ctr import evaluate_ctr_model

        return evaluate_ctr_model(model_path, spec, inputs, self.options, identity=identity)

    def build_llm_prompts(self, inputs, key, split, dest, prompt_cfg, context):
        from llmrecbench.llm.task_runs import build_ctr_prompt_file

        return build_ctr_prompt_file(inputs, key, split, dest, prompt_cfg)

    def evaluate_llm(self, inputs, spec, llm_cfg, *, identity):
        from llmrecbench.llm.task_runs import evaluate_ctr_llm

        return evaluate_ctr_llm(inputs, spec, llm_cfg, self.options, identity=identity)
