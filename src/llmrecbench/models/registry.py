"""Name -> class registry of every trainable recommender (all families: sequential, rating, direct);
the workflow picks a class by name and reads its ``family`` to check it fits the task."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch

from llmrecbench.errors import ConfigError

_REGISTRY: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make ``cls`` available as ``name`` and set ``cls.name``."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        cls.name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = cls
        return cls

    return deco


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(available_models())}") from None


def model_family(name: str) -> str:
    """The family of a registered class (``sequential``, ``rating``, ``direct``)."""
    return getattr(get_model_class(name), "family", "sequential")


def create_model(name: str, *args: Any, seed: int | None = None, **hparams: Any):
    """Instantiate model ``name`` with its family's positional arguments (sequential: n_items;
    rating and direct: n_users, n_items); with ``seed`` the weight initialisation is reproducible."""
    cls = get_model_class(name)
    if seed is not None:
        torch.manual_seed(seed)
    return cls(*args, **hparams)
