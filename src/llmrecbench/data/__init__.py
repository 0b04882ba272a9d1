"""Data layer: download, ingest into a canonical schema, k-core, splits, item indexing."""
