"""Config validation with one-line errors (path of the offending key, and what is wrong)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from llmrecbench.errors import ConfigError


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def check_config(config: dict[str, Any], schema_path: str | Path, source: str = "config") -> None:
    """Raise ConfigError ``"<source>: <key.path>: <problem>"`` for the most relevant violation."""
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    raise ConfigError(f"{source}: {where}: {error.message}")


def check_registry_names(config: dict[str, Any], source: str = "config") -> None:
    """Every name under ``run:`` and every dataset's source must exist in its registry."""
    for kind in ("datasets", "seqrec_models"):
        for name in config["run"][kind]:
            if name not in config[kind]:
                known = ", ".join(sorted(config[kind]))
                raise ConfigError(f"{source}: run.{kind}: unknown name {name!r}; known: {known}")
    for name, ds in config["datasets"].items():
        if ds["source"] not in config["sources"]:
            raise ConfigError(f"{source}: datasets.{name}.source: unknown source {ds['source']!r}")
