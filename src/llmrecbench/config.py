"""Config validation with one-line errors (path of the offending key, and what is wrong)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from llmrecbench.errors import ConfigError


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


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
    """Every name under ``run:`` and every dataset's source must exist in its registry."""
    for kind in ("datasets", "seqrec_models", "llm_models", "llm_settings"):
        for name in config["run"].get(kind, ()):
            if name not in config.get(kind, {}):
                known = ", ".join(sorted(config.get(kind, {})))
                raise ConfigError(f"{source}: run.{kind}: unknown name {name!r}; known: {known}")
    shared = sorted(set(config.get("llm_models", {})) & set(config["seqrec_models"]))
    if shared:  # both registries name the {model} wildcard and the table's model column
        raise ConfigError(f"{source}: llm_models: {shared} also name seqrec_models; use distinct names")
    for name, ds in config["datasets"].items():
        if ds["source"] not in config["sources"]:
            raise ConfigError(f"{source}: datasets.{name}.source: unknown source {ds['source']!r}")
