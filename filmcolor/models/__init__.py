"""Generator networks that predict chroma (Lab a/b) from luminance, behind one registry."""

# Importing the architecture modules registers them (the registry lists them sorted by name,
# so the order of these imports does not matter).
from filmcolor.models import deoldify as _deoldify  # noqa: F401  (third-party weights, #5)
from filmcolor.models import effunet as _effunet  # noqa: F401
from filmcolor.models import tiny as _tiny  # noqa: F401
from filmcolor.models import zhang as _zhang  # noqa: F401  (third-party weights, #5)
from filmcolor.models.base import ChromaModel, ModelCfg
from filmcolor.models.registry import create_model, get_model_cfg, list_models, register_model

__all__ = [
    "ChromaModel",
    "ModelCfg",
    "create_model",
    "get_model_cfg",
    "list_models",
    "register_model",
]
