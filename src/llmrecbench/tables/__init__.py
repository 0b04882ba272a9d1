"""Merging per-cell result JSONs into task tables."""

from llmrecbench.tables.merge import METRIC_COLUMNS, merge_cells, read_cells, to_markdown

__all__ = ["METRIC_COLUMNS", "merge_cells", "read_cells", "to_markdown"]
