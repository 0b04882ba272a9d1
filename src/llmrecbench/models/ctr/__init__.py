"""Deep CTR models (RecBench Groups A-C): one module per model over the shared feature encoder
(:mod:`llmrecbench.models.ctr.features`); importing the package registers them."""

from llmrecbench.models.ctr import autoint, dcn, deepfm, dnn, finalmlp, gdcn, masknet, pnn  # noqa: F401
from llmrecbench.models.ctr.base import CTRModel

__all__ = ["CTRModel"]
