"""Config validation: command-line strings are coerced by schema type, bad values stay one clear line."""

from pathlib import Path

import pytest
import yaml

from llmrecbench.config import check_config, coerce_cli_strings
from llmrecbench.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas/config.schema.yaml"


def test_coerce_follows_schema_types():
    schema = {
        "type": "object",
        "properties": {
            "seeds": {"type": "array", "items": {"type": "integer"}},
            "lr": {"type": "number"},
            "flag": {"type": "boolean"},
            "name": {"type": "string"},
            "models": {"type": "object", "additionalProperties": {"type": "object", "properties": {"epochs": {"type": "integer"}}}},
        },
    }
    got = coerce_cli_strings(
        {"seeds": ["1", "2"], "lr": "0.5", "flag": "True", "name": "42", "models": {"a": {"epochs": "3"}}}, schema
    )
    assert got == {"seeds": [1, 2], "lr": 0.5, "flag": True, "name": "42", "models": {"a": {"epochs": 3}}}
    # unparseable strings are left for the validator to report
    assert coerce_cli_strings({"seeds": ["x"]}, schema) == {"seeds": ["x"]}


def test_command_line_style_config_validates_and_bad_value_is_named():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["run"]["seeds"] = ["7"]  # what `--config 'run={"seeds": [7]}'` delivers
    check_config(cfg, SCHEMA, "config.yaml")
    assert cfg["run"]["seeds"] == [7]
    cfg["run"]["seeds"] = ["seven"]
    with pytest.raises(ConfigError, match=r"^config.yaml: run.seeds.0: 'seven' is not of type 'integer'$"):
        check_config(cfg, SCHEMA, "config.yaml")
