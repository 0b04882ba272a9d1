"""Conventional rating predictors (P5 / LLMRec rating task); importing this package registers all
of them (``global_mean``, ``bias``, ``mf``, ``mlp``) in :mod:`llmrecbench.models.registry`."""

from llmrecbench.models.rating import baselines, mf, mlp  # noqa: F401  (registration)
from llmrecbench.models.rating.base import RatingModel
from llmrecbench.models.rating.baselines import BiasBaseline, GlobalMean
from llmrecbench.models.rating.mf import BiasedMF
from llmrecbench.models.rating.mlp import MLPRating

RATING_MODELS = ("global_mean", "bias", "mf", "mlp")

__all__ = ["RATING_MODELS", "BiasBaseline", "BiasedMF", "GlobalMean", "MLPRating", "RatingModel"]
