"""The validation metric early stopping follows (light: the Snakefile and the tasks import it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmrecbench.errors import ConfigError


@dataclass(frozen=True)
class Monitor:
    """The validation metric early stopping follows: its name (a key of ``validate``'s dict) and
    whether higher is better (``mode="max"``: NDCG@10, AUC) or lower (``mode="min"``: RMSE, logloss)."""

    name: str
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ConfigError(f"monitor {self.name}: mode must be 'max' or 'min', got {self.mode!r}")

    @property
    def worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    def improved(self, value: float, best: float) -> bool:
        return value > best if self.mode == "max" else value < best
