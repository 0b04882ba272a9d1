"""Config validation with one-line errors (path of the offending key, and what is wrong)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from llmrecbench.errors import ConfigError


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


REPO_ROOT = SCHEMA_PATH.parents[1]


def configured_mirror(config_path: str | Path = REPO_ROOT / "config.yaml") -> Path:
    """The ``mirror:`` directory of the project's config.yaml, a relative path taken from the
    repository root (benchmark scripts default to it; ``--mirror`` overrides)."""
    cfg = yaml.safe_load(Path(config_path).read_text())
    if not cfg.get("mirror"):
        raise ConfigError(f"{config_path}: sets no mirror; pass the mirror directory explicitly")
    return (REPO_ROOT / cfg["mirror"]).resolve()


def schema_defaults(block: str) -> dict[str, Any]:
    """Defaults of one named block of the config schema, the one place they are written.

    ``"train"``: the ``train:`` block of a ``models:`` entry (``TrainConfig``'s defaults);
    ``"attributes"``: its ``attributes:`` block (item attributes from titles, S3-Rec).
    """
    where = {"train": ("models", "*", "train"), "attributes": ("models", "*", "attributes")}[block]
    node = load_schema()
    for key in where:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return {k: v["default"] for k, v in node["properties"].items() if "default" in v}


_SCALAR_PARSERS = {
    "integer": lambda s: int(s),
    "number": lambda s: float(s),
    "boolean": lambda s: {"true": True, "false": False}[s.lower()],
}


def coerce_cli_strings(value: Any, schema: dict) -> Any:
    """Turn string scalars into the schema's integer/number/boolean type where they parse.

    ``snakemake --config 'run={"seeds": [1]}'`` reads nested values with YAML's BaseLoader,
    so every nested scalar arrives as a string; config files are unaffected. A string that
    does not parse is left alone and the validator reports it.
    """
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: coerce_cli_strings(v, props.get(k, extra if isinstance(extra, dict) else {}))
            for k, v in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items")
        return [coerce_cli_strings(v, items if isinstance(items, dict) else {}) for v in value]
    if isinstance(value, str):
        types = schema.get("type", [])
        for t in [types] if isinstance(types, str) else types:
            if t in _SCALAR_PARSERS:
                try:
                    return _SCALAR_PARSERS[t](value)
                except (ValueError, KeyError):
                    pass
    return value


def check_config(config: dict[str, Any], schema_path: str | Path, source: str = "config") -> None:
    """Raise ConfigError ``"<source>: <key.path>: <problem>"`` for the most relevant violation.

    Command-line strings are first coerced to the schema's scalar types, in place.
    """
    schema = load_schema(schema_path)
    coerced = coerce_cli_strings(config, schema)
    config.clear()
    config.update(coerced)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    raise ConfigError(f"{source}: {where}: {error.message}")


def check_registry_names(config: dict[str, Any], source: str = "config") -> None:
    """Every task under ``tasks:`` is registered; every name a task lists exists in its registry
    and fits the task (model family, LLM prompt builder, dataset fields); sources exist."""
    from llmrecbench.tasks import get_task, known_task_names

    known_tasks = known_task_names()
    for task_name, block in config.get("tasks", {}).items():
        if task_name not in known_tasks:
            raise ConfigError(f"{source}: tasks: unknown task {task_name!r}; known: {', '.join(known_tasks)}")
        task = get_task(task_name)
        for kind, registry in (("datasets", "datasets"), ("models", "models"), ("llm_models", "llm_models"), ("llm_settings", "llm_settings")):
            for name in block.get(kind, ()):
                if name not in config.get(registry, {}):
                    known = ", ".join(sorted(config.get(registry, {})))
                    raise ConfigError(f"{source}: tasks.{task_name}.{kind}: unknown name {name!r}; known: {known}")
        for name in block.get("models", ()):
            family = config["models"][name]["family"]
            if family not in task.families:
                raise ConfigError(
                    f"{source}: tasks.{task_name}.models: {name!r} is a {family} model; task {task_name} takes "
                    f"{', '.join(task.families)} models"
                )
        if (block.get("llm_settings") or block.get("llm_models")) and not task.llm:
            raise ConfigError(f"{source}: tasks.{task_name}: task {task_name} has no LLM prompt builder and answer reader; leave llm_models and llm_settings empty")
        for name in block.get("llm_settings", ()):
            check_setting_task(name, config["llm_settings"][name], task, source)
        for dataset in block.get("datasets", ()):
            reason = task.unavailable_reason(dataset, config["datasets"][dataset].get("provides", []))
            if reason and block.get("models"):
                raise ConfigError(f"{source}: tasks.{task_name}.datasets: {reason.removeprefix('N/A: ')}")
    shared = sorted(set(config.get("llm_models", {})) & set(config["models"]))
    if shared:  # both registries name the {model} wildcard and the table's model column
        raise ConfigError(f"{source}: llm_models: {shared} also name models; use distinct names")
    for name, ds in config["datasets"].items():
        if ds["source"] not in config["sources"]:
            raise ConfigError(f"{source}: datasets.{name}.source: unknown source {ds['source']!r}")


def check_setting_task(name: str, block: dict, task, source: str = "config") -> None:
    """An LLM setting listed under a task must use that task's prompt templates (training and test)."""
    from llmrecbench.llm.prompts import get_template
    from llmrecbench.llm.settings import setting_spec

    try:
        spec = setting_spec(name, block, task.name)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for tid in [*spec["train_templates"], spec["eval_template"]]:
        tpl = get_template(tid)
        if tpl.task != task.name or tpl.answer not in task.llm_answers:
            raise ConfigError(
                f"{source}: tasks.{task.name}.llm_settings: {name!r} uses template {tid!r}, a {tpl.task} template; "
                f"task {task.name} reads {', '.join(task.llm_answers)} answers"
            )
