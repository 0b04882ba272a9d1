"""Sequential recommendation (P5 / LLMRec Table 4): the next item after the user's history.

Leave-one-out split, full ranking over all items with the input history masked; HR@k, NDCG@k and
MRR; early stopping on valid NDCG@10. Models of the ``sequential`` family; LLM settings through
``llmrecbench.llm``. Training and evaluation live in ``llmrecbench.pipelines.seqrec``.
"""

from __future__ import annotations

from llmrecbench import paths
from llmrecbench.monitor import Monitor
from llmrecbench.tasks.base import Metric, Task


class SeqRec(Task):
    """Next-item recommendation with full ranking (see the module docstring)."""

    name = "seqrec"
    description = "sequential recommendation: the next item after the history, full ranking over all items"
    split = "loo"
    families = ("sequential",)
    metric_columns = tuple(Metric(m) for m in ("HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR"))
    headline = "NDCG@10"
    monitor = Monitor("NDCG@10", "max")
    rows_file = "topk.parquet"
    llm = True
    llm_answers = ("item_list",)

    def data_inputs(self, dataset):
        """The split, its item numberings and its stats (the configured indexing, the leakage probes)."""
        return {
            **super().data_inputs(dataset),
            "item_index": paths.fill(paths.ITEM_INDEX, dataset=dataset, split=self.split),
            "split_stats": paths.fill(paths.SPLIT_STATS, dataset=dataset, split=self.split),
        }

    def train(self, spec, inputs, *, seed, checkpoint_root, threads):
        from llmrecbench.pipelines.seqrec import load_sequences, row_numbering, train_sequential

        data = load_sequences(inputs)
        return train_sequential(
            spec, data, self.options, seed=seed, checkpoint_root=checkpoint_root, threads=threads,
            semantic_codes=inputs.get("semantic_codes"), item_embeddings=inputs.get("item_embeddings"),
            numbering=row_numbering(spec, inputs, data.n_items), item_table=inputs["item_table"],
        )

    def evaluate(self, model_path, spec, inputs, *, identity):
        from llmrecbench.models.base import SequentialRecommender
        from llmrecbench.pipelines.seqrec import evaluate_cell, leakage_probe_of, load_sequences

        data = load_sequences(inputs)
        model = SequentialRecommender.load(model_path)
        scheme = model.item_numbering.scheme if model.item_numbering is not None else None
        return evaluate_cell(
            model, data, dataset=identity["dataset"], model_name=identity["model"], spec=spec,
            seed=identity["seed"], evaluation=self.options,
            leakage_probe=leakage_probe_of(inputs, scheme) if scheme else None,
        )

    def llm_prompt_inputs(self, dataset, prompt_split):
        return {k: v for k, v in self.data_inputs(dataset).items() if k != "user_table"}

    def llm_eval_inputs(self, dataset):
        # the prompt file carries the histories and targets; items and codes come with the model;
        # numbered rows read the numbering their prompts were written in, and its leakage probe
        return {"item_index": paths.fill(paths.ITEM_INDEX, dataset=dataset, split=self.split),
                "split_stats": paths.fill(paths.SPLIT_STATS, dataset=dataset, split=self.split)}

    def build_llm_prompts(self, inputs, key, split, dest, prompt_cfg, context):
        from llmrecbench.llm.prompt_files import build_prompt_file
        from llmrecbench.llm.prompts import prompt_key_indexing
        from llmrecbench.pipelines.common import count_rows
        from llmrecbench.pipelines.seqrec import row_numbering

        # numbered items follow the numbering the key names (a setting's indexing:), else splits.indexing
        numbering = row_numbering({"indexing": prompt_key_indexing(key)}, inputs, count_rows(inputs["item_table"]))
        return build_prompt_file(
            {part: inputs[part] for part in ("train", "valid", "test")}, inputs["item_table"], key=key, split=split,
            dest=dest, prompt_cfg=prompt_cfg, codes_path=inputs.get("codes"), numbering=numbering,
        )

    def evaluate_llm(self, inputs, spec, llm_cfg, *, identity):
        from llmrecbench.llm.recommend import run_evaluate
        from llmrecbench.pipelines.seqrec import leakage_probe_of

        cell, topk, timing = run_evaluate(
            inputs["model"], inputs["prompts"], inputs["item_table"], spec, llm_cfg,
            dataset=identity["dataset"], model_name=identity["model"], setting=identity["setting"],
            seed=identity["seed"], evaluation=self.options,
            adapter_dir=inputs.get("adapter"), codes_path=inputs.get("codes"), item_index=inputs.get("item_index"),
        )
        probe = leakage_probe_of(inputs, cell["protocol"]["indexing"]) if inputs.get("split_stats") else None
        if probe is not None:  # share of test items numbered max(history) + 1 in the numbering the prompts used
            cell["protocol"]["leakage_probe"] = round(probe, 6)
        return cell, topk, timing
