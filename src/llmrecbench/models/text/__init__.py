"""Conventional text generators of the explanation and review tasks; importing this package
registers them (``item_retrieval``, ``peter``, ``lead``) in :mod:`llmrecbench.models.registry`."""

from llmrecbench.models.text import lead, peter, retrieval  # noqa: F401  (registration)
from llmrecbench.models.text.base import TextModel

__all__ = ["TextModel"]
