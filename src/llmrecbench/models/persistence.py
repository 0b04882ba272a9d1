"""Saving and loading user-item models (the rating and direct families): weights, persistent
buffers and constructor arguments in one file, the class found again through the registry."""

from __future__ import annotations

from pathlib import Path

import torch

from llmrecbench.errors import ConfigError
from llmrecbench.io import atomic_path


def save_user_item_model(model: torch.nn.Module, path: str | Path) -> None:
    """Write {name, family, n_users, n_items, hparams, state_dict} atomically."""
    payload = {
        "name": model.name,
        "family": model.family,
        "n_users": model.n_users,
        "n_items": model.n_items,
        "hparams": model.hparams,
        "state_dict": model.state_dict(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_user_item_model(cls: type, base: type, path: str | Path):
    """The model saved at ``path``; it must be a ``base`` (family base class) and, when ``cls`` is a
    subclass of it, a ``cls``. Returned in eval mode."""
    from llmrecbench.models.registry import get_model_class

    payload = torch.load(path, map_location="cpu", weights_only=True)
    model_cls = get_model_class(payload["name"])
    if not (isinstance(model_cls, type) and issubclass(model_cls, base)):
        raise ConfigError(f"{path}: holds a {payload['name']!r} model, which is not a {base.family} model")
    if cls is not base and not issubclass(model_cls, cls):
        raise ConfigError(f"{path}: holds a {payload['name']!r} model, not {cls.name!r}")
    model = model_cls(payload["n_users"], payload["n_items"], **payload["hparams"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model
