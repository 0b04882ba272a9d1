"""Errors that name the file and the problem in one line."""

from __future__ import annotations

from pathlib import Path


class BenchError(Exception):
    """Base class for every error the benchmark raises on bad input."""


class InputError(BenchError):
    """A file the benchmark reads is missing, malformed, truncated or inconsistent.

    The message is always ``"<path>: <problem>"`` on one line.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


class ChecksumError(InputError):
    """A downloaded or mirrored file does not have the expected sha256."""


class ConfigError(BenchError):
    """The configuration names something unknown or has a value of the wrong type."""
