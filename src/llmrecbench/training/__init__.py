"""Training loop shared by all conventional sequential recommenders."""

from llmrecbench.training.trainer import TrainConfig, fit

__all__ = ["TrainConfig", "fit"]
