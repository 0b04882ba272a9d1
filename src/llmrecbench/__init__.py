"""LLMRecBench: large language models as recommenders, benchmarked beside conventional ones."""

__version__ = "0.1.0"
