"""Conventional text generators of the explanation and review tasks; importing this package
registers them (``item_retrieval``, ``peter``, ``nrt``, ``lead``) in :mod:`llmrecbench.models.registry`."""

from llmrecbench.models.text import lead, nrt, peter, retrieval  # noqa: F401  (registration)
from llmrecbench.models.text.base import TextModel

__all__ = ["TextModel"]
