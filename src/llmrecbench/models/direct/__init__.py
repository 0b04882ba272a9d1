"""Conventional direct recommenders (rank a user's candidate list: P5 / LLMRec Table 5); importing
this package registers all of them in the shared model registry."""

from llmrecbench.models.direct import bpr, simplex  # noqa: F401  (registration)
from llmrecbench.models.direct.base import CandidateRanker
from llmrecbench.models.direct.bpr import BPRMF, BPRMLP
from llmrecbench.models.direct.simplex import SimpleX

DIRECT_MODELS = ("bpr_mf", "bpr_mlp", "simplex")

__all__ = ["BPRMF", "BPRMLP", "CandidateRanker", "DIRECT_MODELS", "SimpleX"]
