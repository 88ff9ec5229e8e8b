"""The model zoo: importing it registers the seed baselines and the shipped edge models."""

from . import edge, seeds  # noqa: F401  (registration side effect)
from .registry import MODELS, Augment, ModelSpec, TrainConfig, get_model_spec, register

__all__ = ["MODELS", "Augment", "ModelSpec", "TrainConfig", "get_model_spec", "register"]
