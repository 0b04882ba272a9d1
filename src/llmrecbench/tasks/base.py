"""The one interface every recommendation task implements (RecBole's separation of dataset, model
and evaluator).

A :class:`Task` declares everything the workflow, the scripts and the tables need to know about
it, so none of them branches on a task's name:

* ``split`` – which split of the dataset it reads (``loo`` or ``ratio_8_1_1``);
* ``requires`` – dataset fields it needs (``datasets.<name>.provides``), e.g. ``rating``;
* ``candidates`` – ``none`` (full ranking / pointwise) or ``sampled_negatives`` (a cached
  candidate list per user and stage under ``results/{dataset}/{task}/candidates/``);
* ``families`` – model families that may serve it (``sequential``, ``rating``, ``direct``);
* ``metric_columns`` – its table columns, each with its direction; ``headline`` and ``monitor``
  (the metric early stopping follows and whether higher is better);
* ``rows_file`` – the per-row output beside each cell (top-k lists, predictions or generations),
  from which anyone can recompute the cell's metrics; ``count_column`` – what the table counts
  (``n_users``, or ``n_pairs`` for the text tasks);
* ``prepare_inputs`` / ``prepare`` – tasks with data of their own (the text tasks' ground truth
  under ``results/{dataset}/{task}/data/``) declare what their data rule reads and how it builds it;
* ``llm`` – whether the task has an LLM prompt builder and answer reader (LLM settings are refused
  on tasks without one); ``llm_answers`` – the answer kinds of the prompt templates it reads
  (``llmrecbench.llm.prompts.Template.answer``): a setting whose template is another task's is
  refused;
* ``train`` / ``evaluate`` – the library calls behind the generic rules, given the files
  Snakemake declared (never a directory to look into).

This module stays light (no torch import) so the Snakefile can read the declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmrecbench import paths
from llmrecbench.monitor import Monitor


@dataclass(frozen=True)
class Metric:
    """One metric column of a task's table and whether a higher value is better."""

    name: str
    higher_is_better: bool = True


# Where a model family is trained: a sequential model trained for seqrec is the same model
# when the direct task scores it on candidates, so its weights live under the seqrec folder.
FAMILY_HOME = {"sequential": "seqrec", "rating": "rating", "direct": "direct", "explanation": "explanation", "summarization": "review", "ctr": "ctr"}


@dataclass(frozen=True)
class Task:
    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    split: ClassVar[str] = "loo"
    requires: ClassVar[tuple[str, ...]] = ()
    candidates: ClassVar[str] = "none"
    families: ClassVar[tuple[str, ...]] = ()
    metric_columns: ClassVar[tuple[Metric, ...]] = ()
    headline: ClassVar[str] = ""
    monitor: ClassVar[Monitor] = Monitor("NDCG@10", "max")
    rows_file: ClassVar[str] = "topk.parquet"
    own_data: ClassVar[bool] = False  # True: a data rule builds results/{dataset}/{task}/data/ (prepare)
    count_column: ClassVar[str] = "n_users"  # what the table counts per row (test users, or test pairs)
    latency_unit: ClassVar[str] = "test user"  # what the latency column is per (the trade-off plot's x label)
    llm: ClassVar[bool] = False
    llm_answers: ClassVar[tuple[str, ...]] = ()
    options: dict = field(default_factory=dict)  # the task's `evaluation:` block of the config

    # --- declarations the workflow reads ----------------------------------------------------
    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metric_columns)

    def unavailable_reason(self, dataset: str, provides: list[str]) -> str | None:
        """Why this task cannot run on ``dataset`` (a field it needs is missing), else None."""
        missing = [f for f in self.requires if f not in provides]
        if missing:
            return (
                f"N/A: dataset {dataset} provides no {', '.join(missing)}, which task {self.name} needs "
                f"(datasets.{dataset}.provides: {provides or 'nothing'})"
            )
        return None

    def data_inputs(self, dataset: str) -> dict[str, str]:
        """Split files and entity tables every train/evaluate job of this task reads."""
        return {
            **paths.split_files(dataset, self.split),
            "item_table": paths.fill(paths.ITEMS, dataset=dataset),
            "user_table": paths.fill(paths.USERS, dataset=dataset),
        }

    def candidate_inputs(self, dataset: str, stages: tuple[str, ...]) -> dict[str, str]:
        if self.candidates == "none":
            return {}
        return {f"{s}_candidates": paths.fill(paths.CANDIDATES, dataset=dataset, task=self.name, stage=s) for s in stages}

    def llm_prompt_inputs(self, dataset: str, prompt_split: str) -> dict[str, str]:
        """What one prompt file of ``prompt_split`` reads: the task's data (+ that stage's candidates)."""
        stages = (prompt_split,) if prompt_split in ("valid", "test") else ()
        return {**self.data_inputs(dataset), **self.candidate_inputs(dataset, stages)}

    def llm_eval_inputs(self, dataset: str) -> dict[str, str]:
        """Data an LLM cell reads besides its prompts and model (e.g. the training mean's split, candidates)."""
        return self.eval_inputs(dataset)

    def train_inputs(self, dataset: str) -> dict[str, str]:
        return {**self.data_inputs(dataset), **self.candidate_inputs(dataset, ("valid",))}

    def eval_inputs(self, dataset: str) -> dict[str, str]:
        return {**self.data_inputs(dataset), **self.candidate_inputs(dataset, ("test",))}

    # --- library calls (implemented per task) -------------------------------------------
    def train(self, spec: dict, inputs: dict[str, str], *, seed: int, checkpoint_root: str, threads: int | None) -> tuple[Any, dict]:
        raise NotImplementedError(f"task {self.name} trains no models of its own")

    def evaluate(self, model_path: str, spec: dict, inputs: dict[str, str], *, identity: dict) -> tuple[dict, Any, dict]:
        """(cell fields, per-row frame for ``rows_file``, timing record) of one trained model."""
        raise NotImplementedError

    def build_llm_prompts(self, inputs: dict[str, str], key: str, split: str, dest: str, prompt_cfg: dict, context: dict) -> int:
        """Write one prompt file (template-repr ``key``, ``split``) to ``dest``; return its record count.
        ``context`` holds dataset facts a template may show (``category``)."""
        raise NotImplementedError(f"task {self.name} has no LLM prompt builder")

    def evaluate_llm(self, inputs: dict[str, str], spec: dict, llm_cfg: dict, *, identity: dict) -> tuple[dict, Any, dict]:
        """(cell, per-row frame for ``rows_file``, timing) of one LLM setting on the test prompts."""
        raise NotImplementedError(f"task {self.name} has no LLM answer reader")

    def prepare_inputs(self, dataset: str) -> dict[str, str]:
        """Files the task's data rule reads (tasks without data of their own have no such rule)."""
        raise NotImplementedError(f"task {self.name} has no data of its own")

    def prepare(self, inputs: dict[str, str], ground_truth: dict) -> tuple[dict, dict]:
        """({part: frame}, stats) of the task's own data, from ``prepare_inputs``' files."""
        raise NotImplementedError(f"task {self.name} has no data of its own")

    def sample_candidates(self, inputs: dict[str, str], stage: str) -> Any:
        raise NotImplementedError(f"task {self.name} has no sampled candidates")
