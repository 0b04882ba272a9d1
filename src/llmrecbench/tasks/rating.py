"""Rating prediction (P5 / LLMRec Tables 3 and 6; RecSysLLM Table 2): the star rating a user gives
an item.

P5's seeded 8:1:1 split by review (every user and every item keeps a training review); models of
the ``rating`` family trained with MSE and early stopping on valid RMSE; RMSE and MAE of the test
predictions clipped to the rating range (1-5), lower is better. Each cell writes
``predictions.parquet`` (user_id, item_id, rating, prediction) so its metrics can be recomputed.
Datasets must provide ``rating``. Training and evaluation live in ``llmrecbench.pipelines.rating``;
the LLM rows (LLMRec's zero-shot rating prompt, P5 templates, answer reader, N/A policy) in
``llmrecbench.llm.rating_rows``.
"""

from __future__ import annotations

from llmrecbench.monitor import Monitor
from llmrecbench.tasks.base import Metric, Task


class RatingPrediction(Task):
    name = "rating"
    description = "rating prediction: RMSE / MAE of the predicted star rating on P5's 8:1:1 split"
    split = "ratio_8_1_1"
    requires = ("rating",)
    families = ("rating",)
    metric_columns = (Metric("RMSE", higher_is_better=False), Metric("MAE", higher_is_better=False))
    headline = "RMSE"
    monitor = Monitor("RMSE", "min")
    rows_file = "predictions.parquet"
    latency_unit = "test pair"
    llm = True
    llm_answers = ("rating",)

    def train(self, spec, inputs, *, seed, checkpoint_root, threads):
        from llmrecbench.pipelines.rating import train_rating_model

        return train_rating_model(spec, inputs, self.options, seed=seed, checkpoint_root=checkpoint_root, threads=threads)

    def evaluate(self, model_path, spec, inputs, *, identity):
        from llmrecbench.pipelines.rating import evaluate_rating_model

        return evaluate_rating_model(model_path, spec, inputs, self.options, identity=identity)

    def build_llm_prompts(self, inputs, key, split, dest, prompt_cfg, context):
        from llmrecbench.llm.task_runs import build_rating_prompt_file

        return build_rating_prompt_file(inputs, key, split, dest, category=context.get("category"))

    def evaluate_llm(self, inputs, spec, llm_cfg, *, identity):
        from llmrecbench.llm.task_runs import evaluate_rating_llm

        return evaluate_rating_llm(inputs, spec, llm_cfg, self.options, identity=identity)
