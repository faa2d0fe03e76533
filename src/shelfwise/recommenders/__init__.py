"""Recommendation models: one module per algorithm, one shared interface, a lazy registry.

Importing this package imports no model: `available()` lists them from the registry table
(`MODELS`), `create(name)` and `load_model(directory)` import the one asked for, and a class
imported by name (`from shelfwise.recommenders import SASRec`) is looked up the same way, so
only the torch models import torch, and only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shelfwise.recommenders.base import (
    MODELS,
    ModelConfig,
    ModelEntry,
    Recommender,
    available,
    create,
    load_model,
    model_class,
    needs_torch,
    register,
)

if TYPE_CHECKING:  # the real classes for type checkers; at run time __getattr__ imports them
    from shelfwise.recommenders.als import ALS
    from shelfwise.recommenders.bpr import BPR
    from shelfwise.recommenders.bprmf import BPRMF
    from shelfwise.recommenders.caser import Caser
    from shelfwise.recommenders.content import Embedding, Lda, Lsa, Tfidf
    from shelfwise.recommenders.ease import EASE
    from shelfwise.recommenders.gru4rec import GRU4Rec
    from shelfwise.recommenders.hybrid import Hybrid
    from shelfwise.recommenders.itemknn import ItemKNN
    from shelfwise.recommenders.popularity import Popularity
    from shelfwise.recommenders.sasrec import SASRec
    from shelfwise.recommenders.svd import PureSVD
    from shelfwise.recommenders.trending import Trending
    from shelfwise.recommenders.userknn import UserKNN

_BY_CLASS = {entry.class_name: name for name, entry in MODELS.items()}


def __getattr__(attr: str) -> Any:
    """A built-in model class by its class name, imported on first access."""
    name = _BY_CLASS.get(attr)
    if name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    cls = model_class(name)
    globals()[attr] = cls  # later lookups skip __getattr__
    return cls


def __dir__() -> list[str]:
    return sorted({*globals(), *_BY_CLASS})


__all__ = [
    "ALS",
    "BPR",
    "BPRMF",
    "EASE",
    "MODELS",
    "Caser",
    "Embedding",
    "GRU4Rec",
    "Hybrid",
    "ItemKNN",
    "Lda",
    "Lsa",
    "ModelConfig",
    "ModelEntry",
    "Popularity",
    "PureSVD",
    "Recommender",
    "SASRec",
    "Tfidf",
    "Trending",
    "UserKNN",
    "available",
    "create",
    "load_model",
    "model_class",
    "needs_torch",
    "register",
]
