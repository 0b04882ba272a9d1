"""What the explanation and review tasks share: natural-language targets on P5's 8:1:1 split.

Both read the same seeded 8:1:1 split as rating prediction (never a second split), turned by the
task's data rule into ``results/{dataset}/{task}/data/{train,valid,test}.parquet`` (+ stats.json
with the counts of what was left out, and how many valid/test references occur verbatim in
train: :func:`llmrecbench.data.text_pairs.reference_overlap`): the task declares how (``prepare``), which column is the
reference, which the model's input text (review summarization reads the review) and which the
feature word (explanation). Cells write ``generations.parquet`` (user_id, item_id, reference,
generated, + feature / review_row) so every metric can be recomputed; the metric columns are the
papers' BLEU-4 / ROUGE-1/2/L (``(p5)``) beside sacrebleu, rouge-score and a sentence-encoder
cosine (:func:`llmrecbench.metrics.text_metrics`). Early stopping follows valid ROUGE-L (p5)
(mean of per-pair scores, steadier on a small valid part than corpus BLEU-4).
"""

from __future__ import annotations

from typing import ClassVar

from llmrecbench import paths
from llmrecbench.monitor import Monitor
from llmrecbench.tasks.base import Metric, Task

TEXT_METRICS = (
    "BLEU-4 (p5)", "ROUGE-1 (p5)", "ROUGE-2 (p5)", "ROUGE-L (p5)",
    "BLEU-4 (sacrebleu)", "ROUGE-1 (rouge-score)", "ROUGE-2 (rouge-score)", "ROUGE-L (rouge-score)",
    "cosine (sentence encoder)",
)


class TextGenerationTask(Task):
    split = "ratio_8_1_1"
    requires = ("review_text",)
    metric_columns = tuple(Metric(m) for m in TEXT_METRICS)
    monitor = Monitor("ROUGE-L (p5)", "max")
    rows_file = "generations.parquet"
    own_data = True
    count_column = "n_pairs"
    latency_unit = "test pair"
    # LLM rows: prompt records from the task's own data (llm.task_prompts.text_prompts), one
    # greedy sentence read by llm.readers.read_sentence (llm.text_rows)
    llm = True
    reference_column: ClassVar[str] = ""
    source_column: ClassVar[str | None] = None
    feature_column: ClassVar[str | None] = None

    # --- declarations the workflow reads ----------------------------------------------------
    def prepare_inputs(self, dataset: str) -> dict[str, str]:
        """What the task's data rule reads: the shared 8:1:1 split."""
        return paths.split_files(dataset, self.split)

    def data_inputs(self, dataset: str) -> dict[str, str]:
        """The task's own (input, reference) parts + the entity tables (for the id ranges)."""
        return {
            **{p: paths.fill(paths.TASK_DATA, dataset=dataset, task=self.name, part=p) for p in paths.SPLIT_PARTS},
            "item_table": paths.fill(paths.ITEMS, dataset=dataset),
            "user_table": paths.fill(paths.USERS, dataset=dataset),
        }

    # --- library calls ----------------------------------------------------------------------
    def prepare(self, inputs: dict[str, str], ground_truth: dict) -> tuple[dict, dict]:
        """({part: frame}, stats) of the task's data from the split parts (checked for review text)."""
        import polars as pl

        from llmrecbench.data.text_pairs import check_review_text, reference_overlap

        parts = {p: pl.read_parquet(inputs[p]) for p in paths.SPLIT_PARTS}
        check_review_text(parts, inputs)
        pairs, stats = self.pairs_from_reviews(parts, ground_truth)
        return pairs, {**stats, "reference_overlap": reference_overlap(pairs, self.reference_column)}

    def pairs_from_reviews(self, parts: dict, ground_truth: dict) -> tuple[dict, dict]:
        """The task's (input, reference) parts and stats from the split's review frames."""
        raise NotImplementedError

    def pairs(self, path: str):
        from llmrecbench.data.text_pairs import read_pairs

        return read_pairs(path, self.reference_column, self.source_column, self.feature_column)

    def train(self, spec, inputs, *, seed, checkpoint_root, threads):
        from llmrecbench.pipelines.text import train_text_model

        return train_text_model(self, spec, inputs, seed=seed, checkpoint_root=checkpoint_root, threads=threads)

    def evaluate(self, model_path, spec, inputs, *, identity):
        from llmrecbench.pipelines.text import evaluate_text_model

        return evaluate_text_model(self, model_path, spec, inputs, identity=identity)

    def build_llm_prompts(self, inputs, key, split, dest, prompt_cfg, context):
        from llmrecbench.llm.task_runs import build_text_prompt_file

        return build_text_prompt_file(self, inputs, key, split, dest, prompt_cfg)

    def evaluate_llm(self, inputs, spec, llm_cfg, *, identity):
        from llmrecbench.llm.task_runs import evaluate_text_llm

        return evaluate_text_llm(self, inputs, spec, llm_cfg, self.options, identity=identity)
