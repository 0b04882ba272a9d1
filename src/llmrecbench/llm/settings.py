"""Validation of ``llm_settings`` blocks (light: no torch import, so the Snakefile can call it).

A setting fixes how an LLM recommends: ``method`` (zeroshot | lora | prefix), ``item_repr``
(text | unique_id | number_text | semantic_id), the training ``template`` (one seen template or a
list of them), the test ``eval_template`` and, for numbered items, the item numbering
``indexing`` the prompts use (default ``splits.indexing``; P5's leaky ``p5_sequential`` for the
index-leak rows).
A setting with ``adapter_from: <setting>`` trains nothing: it evaluates that setting's adapter
(same model and seed), typically on an unseen ``eval_template`` (RecSysLLM's zero-shot transfer).
"""

from __future__ import annotations

from llmrecbench.errors import ConfigError


EVAL_KEYWORDS = ("seen", "unseen")  # a multitask setting's test template, per task


def resolve_eval_template(eval_template: str, task: str | None) -> str:
    """``seen`` / ``unseen``: the task's first seen / unseen template (its evaluation template
    under the multitask protocol); any other value is a template id. Without a task the keyword
    stays (the setting is validated for every task it is listed under)."""
    from llmrecbench.llm.prompts import seen_templates, unseen_templates

    if eval_template not in EVAL_KEYWORDS or task is None:
        return eval_template
    ids = seen_templates(task) if eval_template == "seen" else unseen_templates(task)
    if not ids:
        raise ConfigError(f"task {task} declares no {eval_template} template")
    return ids[0]


def seen_or_unseen(template_id: str) -> str:
    """``seen`` when the template is one fine-tuning trains on, else ``unseen`` (P5's split)."""
    from llmrecbench.llm.prompts import get_template

    return "seen" if get_template(template_id).seen else "unseen"


def multitask_templates(tasks) -> list[str]:
    """Training templates of a multitask setting: every seen template of each task, task by task."""
    from llmrecbench.llm.prompts import seen_templates

    return [t for task in tasks for t in seen_templates(task)]


def setting_spec(name: str, block: dict, task: str | None = None) -> dict:
    """Validate one ``llm_settings`` block (method, item_repr, template, finetune, decoding);
    ``task`` resolves a multitask setting's ``eval_template: seen | unseen``."""
    from llmrecbench.llm.prompts import ITEM_REPRS, get_template

    method = block.get("method")
    if method not in ("zeroshot", "lora", "prefix"):
        raise ConfigError(f"llm_settings.{name}.method: {method!r} is not zeroshot, lora or prefix")
    item_repr = block.get("item_repr", "text")
    if item_repr not in ITEM_REPRS:
        raise ConfigError(f"llm_settings.{name}.item_repr: {item_repr!r} is not one of {ITEM_REPRS}")
    _check_indexing(name, block, item_repr)
    if block.get("multitask"):
        return _multitask_spec(name, block, method, item_repr, task)
    train_templates = template_list(name, block.get("template", "llmrec" if method == "zeroshot" else "seq1"))
    tpls = [get_template(t) for t in train_templates]
    if method == "zeroshot" and (item_repr != "text" or len(tpls) != 1 or not tpls[0].zero_shot):
        raise ConfigError(f"llm_settings.{name}: zero-shot needs item_repr text and one zero-shot template (llmrec)")
    unseen = [t.id for t in tpls if not t.seen]
    if method != "zeroshot" and unseen:
        raise ConfigError(f"llm_settings.{name}.template: {', '.join(unseen)} unseen; fine-tuning trains on seen templates")
    if method == "prefix" and item_repr != "text":
        raise ConfigError(f"llm_settings.{name}: prefix tuning trains no embeddings; use item_repr text")
    template = "+".join(train_templates)
    eval_template = block.get("eval_template", train_templates[0])
    get_template(eval_template)
    source = block.get("adapter_from")
    if source is not None and method == "zeroshot":
        raise ConfigError(f"llm_settings.{name}.adapter_from: a zero-shot setting has no adapter to borrow")
    return {
        **block,
        "method": method,
        "item_repr": item_repr,
        "template": template,  # label: the training templates joined by "+"
        "train_templates": train_templates,
        "eval_template": eval_template,
        "setting": block.get("setting", name),
        # the setting whose finetune_llm job trains the adapter this one evaluates (None: zero-shot)
        "adapter_setting": None if method == "zeroshot" else source or name,
        "multitask": False,
    }


def _check_indexing(name: str, block: dict, item_repr: str) -> None:
    """``indexing:`` names an item numbering (llmrecbench.data.indexing.SCHEMES) of a numbered representation."""
    from llmrecbench.data.indexing import SCHEMES
    from llmrecbench.llm.prompts import NUMBERED_REPRS

    indexing = block.get("indexing")
    if indexing is None:
        return
    if indexing not in SCHEMES:
        raise ConfigError(f"llm_settings.{name}.indexing: {indexing!r} is not one of {SCHEMES}")
    if item_repr not in NUMBERED_REPRS:
        raise ConfigError(f"llm_settings.{name}.indexing: item_repr {item_repr} shows no item numbers (only {'/'.join(NUMBERED_REPRS)})")


def prompt_key_of(spec: dict, template_id: str) -> str:
    """The ``{template}`` wildcard of a validated setting's prompt file for ``template_id``."""
    from llmrecbench.llm.prompts import prompt_key

    return prompt_key(template_id, spec["item_repr"], spec.get("indexing"))


def _multitask_spec(name: str, block: dict, method: str, item_repr: str, task: str | None) -> dict:
    """A multitask setting: one LoRA adapter per dataset on the seen templates of every task
    family the setting is listed under (the workflow pools them), tested per task on its first
    seen or first unseen template (``eval_template: seen | unseen``)."""
    from llmrecbench.llm.prompts import get_template

    if method != "lora":
        raise ConfigError(f"llm_settings.{name}: multitask training is LoRA (method lora), not {method!r}")
    if "template" in block:
        raise ConfigError(f"llm_settings.{name}.template: a multitask setting trains on every seen template of its tasks; drop the key")
    eval_template = resolve_eval_template(block.get("eval_template", "seen"), task)
    if eval_template not in EVAL_KEYWORDS:
        get_template(eval_template)
    return {
        **block,
        "method": method,
        "item_repr": item_repr,
        "template": "multitask",  # label: the pooled seen templates of the setting's tasks
        "train_templates": [],
        "eval_template": eval_template,
        "setting": block.get("setting", name),
        "adapter_setting": block.get("adapter_from") or name,
        "multitask": True,
    }


def template_list(name: str, template: str | list[str]) -> list[str]:
    """Training templates of a setting: one id, a list of ids (P5 / RecSysLLM train on the whole
    seen family), or the ``"seq1+seq2"`` label form of such a list."""
    ids = template.split("+") if isinstance(template, str) else list(template)
    if not ids or len(set(ids)) != len(ids) or not all(isinstance(t, str) and t for t in ids):
        raise ConfigError(f"llm_settings.{name}.template: {template!r} is not a template id or a list of distinct ids")
    return ids


def check_adapter_source(name: str, settings: dict) -> None:
    """An ``adapter_from`` setting must name a fine-tuned setting trained the same way.

    The source must exist, train its own adapter (no chains), and share ``method``,
    ``item_repr`` and the training ``template``; otherwise the row would mislabel what it
    evaluates. ``finetune`` options of the borrowing setting would be silently unused, so they
    are an error. Call it on the config as written (before schema defaults fill ``finetune``).
    """
    spec = setting_spec(name, settings[name])
    source = spec.get("adapter_from")
    if source is None:
        return
    if settings[name].get("finetune"):
        raise ConfigError(
            f"llm_settings.{name}: finetune options belong to {source!r}, whose adapter it evaluates (adapter_from)"
        )
    if source not in settings:
        raise ConfigError(f"llm_settings.{name}.adapter_from: unknown setting {source!r}; known: {', '.join(sorted(settings))}")
    src = setting_spec(source, settings[source])
    if src["method"] == "zeroshot" or src.get("adapter_from"):
        raise ConfigError(f"llm_settings.{name}.adapter_from: {source!r} does not train an adapter of its own")
    for key in ("method", "item_repr", "template", "multitask", "indexing"):
        if src.get(key) != spec.get(key):
            raise ConfigError(
                f"llm_settings.{name}.{key}: {spec[key]!r} differs from {src[key]!r} of {source!r}, whose adapter it evaluates"
            )


TEXT_REPRS = ("text", "semantic_id")  # titles in prompts, or semantic IDs built from item text


def unavailable_reason(dataset: str, provides: list[str], name: str, block: dict, task: str | None = None) -> str | None:
    """Why setting ``name`` cannot run on ``dataset`` (None when it can).

    Title prompts and semantic IDs need item text (unless no template of the setting shows an
    item, as review summarization's); a dataset whose config does not list ``item_text`` under
    ``provides`` gets an N/A cell that says so instead of a silent gap.
    """
    from llmrecbench.llm.prompts import get_template

    item_repr = block.get("item_repr", "text")
    spec = setting_spec(name, block, task)
    tids = [t for t in (*spec["train_templates"], spec["eval_template"]) if t not in EVAL_KEYWORDS]
    shows_items = spec["multitask"] or any(get_template(t).shows_items for t in tids)
    if item_repr in TEXT_REPRS and shows_items and "item_text" not in provides:
        return f"N/A: dataset {dataset} has no item text, which item_repr {item_repr} needs (datasets.{dataset}.provides)"
    return None


def unavailable_cell(dataset: str, model: str, name: str, block: dict, seed: int, reason: str, task: str = "seqrec") -> dict:
    """A table cell of ``task`` that states why it has no metrics (status ``n/a``)."""
    from llmrecbench.tables.cells import na_cell
    from llmrecbench.tasks import get_task

    spec = setting_spec(name, block, task)
    return na_cell(
        dataset=dataset, task=task, model=model, model_class="llm", item_repr=spec["item_repr"],
        setting=spec["setting"], seed=seed,
        protocol={"split": get_task(task).split, "template": spec["eval_template"]},
        reason=reason, setting_key=name,
    )
