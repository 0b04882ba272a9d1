"""The one training loop of every trainable recommender; validation and monitor come from the task."""

from llmrecbench.training.trainer import Monitor, TrainConfig, fit

__all__ = ["Monitor", "TrainConfig", "fit"]
