"""Several models behind one server: what is served (`specs`) and when it is loaded (`pool`)."""

from localtools.registry.pool import (
    FAILED,
    LOADED,
    LOADING,
    UNLOADED,
    UNLOADING,
    Lease,
    ModelLoadFailed,
    ModelPool,
    ServedModel,
    UnknownModel,
    close_runtime,
)
from localtools.registry.specs import LoadOptions, ModelsFileError, read_models_file, served_models, served_name

__all__ = [
    "FAILED",
    "LOADED",
    "LOADING",
    "UNLOADED",
    "UNLOADING",
    "Lease",
    "LoadOptions",
    "ModelLoadFailed",
    "ModelPool",
    "ModelsFileError",
    "ServedModel",
    "UnknownModel",
    "close_runtime",
    "read_models_file",
    "served_models",
    "served_name",
]
