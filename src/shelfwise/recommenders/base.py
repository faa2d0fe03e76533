"""The Recommender interface shared by every model, and the lazy registry of model names.

Models see dense item indices and CSR matrices only. Scoring is history-based: a user is
the row of their (weighted) interactions, so a user who arrived after training, or whose
newest events are not in the training matrix, is scored from what they did just now.

Registry: `MODELS` names every built-in model's class as `"module:Class"` and whether it
needs torch, so `available()` lists the models and `create(name)` / `load_model(dir)` /
`model_class(name)` import only the module of the model asked for (the classic models
never import torch). `register` adds a class under its `name` (a plugin, a test double).
"""

from __future__ import annotations

import importlib
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from shelfwise.errors import ConfigError, NotFittedError
from shelfwise.recommenders.space import SearchSpace, check_space, draw
from shelfwise.types import Results, top_k, top_k_rows

if TYPE_CHECKING:  # annotations only: pandas costs a third of this package's import time
    import pandas as pd


C = TypeVar("C", bound="ModelConfig")


class _SearchSpaceFunction:
    """`Config.search_space(trial)`: the config a trial draws from `SEARCH_SPACE`.

    Present only on configs that declare a space, so `getattr(Config, "search_space",
    None)` tells whether a model can be tuned; a config may override it with its own
    define-by-run classmethod for a space that a condition table cannot express.
    """

    def __get__(self, instance: object, owner: type[C]) -> Callable[[Any], C]:
        space = owner.SEARCH_SPACE
        if space is None:
            raise AttributeError(f"{owner.__name__} declares no search space")

        def search_space(trial: Any) -> C:
            """A config drawn from an Optuna trial (or anything with its `suggest_*`)."""
            return owner.from_search(draw(space, trial))

        return search_space


class ModelConfig(BaseModel):
    """Base of every model's configuration: frozen, unknown keys rejected.

    `SEARCH_SPACE` (None: nothing to tune) is what the tuner searches, as data (see
    `shelfwise.recommenders.space`); `search_space(trial)` draws a config from it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    SEARCH_SPACE: ClassVar[SearchSpace | None] = None
    search_space: ClassVar[_SearchSpaceFunction] = _SearchSpaceFunction()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.SEARCH_SPACE is not None:
            check_space(cls.SEARCH_SPACE)  # a broken condition fails at import, not mid-study

    @classmethod
    def from_search(cls, params: Mapping[str, Any]) -> Self:
        """The config of a point of `SEARCH_SPACE` (parameter name -> value; parameters
        not given keep their defaults). Override when a parameter is not a field of the
        same name or its value is transformed."""
        return cls(**params)


def as_csr(data: Any) -> sp.csr_matrix:
    """Accept an `Interactions` (anything with `.matrix`) or a sparse/dense matrix."""
    matrix = getattr(data, "matrix", data)
    return sp.csr_matrix(matrix, dtype=np.float32)


class Recommender(ABC):
    """fit -> recommend / recommend_batch / similar_items -> save / load."""

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]]
    # True for models that read the order of a history (GRU4Rec, Caser, SASRec): they are
    # scored through `score_sequences`, and `recommend(history)` takes history oldest first.
    sequential: ClassVar[bool] = False
    # False for models that score every user alike (popularity): serving does not use them
    # to personalise a list (see `capabilities.personalises`).
    personalised: ClassVar[bool] = True

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError("pass either a config object or keyword parameters, not both")
        try:
            self.config = config if config is not None else self.Config(**params)
        except ValueError as exc:
            raise ConfigError(f"{self.name}: {exc}") from exc
        self.n_items = 0

    # -- to implement --------------------------------------------------------------------
    @abstractmethod
    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> Recommender:
        """Learn from a users x items matrix (or `Interactions`).

        `items` is the catalog in the canonical item layout, one row per matrix column in
        the same order; content-based models need it, others ignore it.
        """

    @abstractmethod
    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """Dense scores (n_rows x n_items) for users given as rows of interactions.

        `users` optionally gives each row's training user index (-1 for a user unknown at
        training time); models with learned user factors use them, others ignore them.
        """

    def score_sequences(
        self, sequences: Sequence[np.ndarray], users: np.ndarray | None = None
    ) -> np.ndarray:
        """Dense scores (n x n_items) for users given as ordered histories (oldest first).

        Order-blind models score the sequences' items as a history row each (repeats
        summed); sequential models override this and read the order.
        """
        self._check_fitted()
        n = len(sequences)
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        cols = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
            if n
            else np.zeros(0, np.int64)
        )
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        rows = sp.csr_matrix(
            (np.ones(cols.size, np.float32), cols, indptr), shape=(n, self.n_items)
        )
        rows.sum_duplicates()
        return self.score(rows, users)

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The learned state as named arrays (for save)."""

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the learned state from `_arrays()` output (for load)."""

    # -- shared behaviour ------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """True after fit or load."""
        return self.n_items > 0

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{self.name}: call fit() or load() first")

    def history_matrix(
        self,
        history: Sequence[int] | np.ndarray,
        weights: Sequence[float] | np.ndarray | None = None,
    ) -> sp.csr_matrix:
        """One user's history (item indices, optional weights) as a 1 x n_items row."""
        idx = np.asarray(history, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_items):
            raise ValueError(f"history has item indices outside 0..{self.n_items - 1}")
        vals = np.ones(idx.size, np.float32) if weights is None else np.asarray(weights, np.float32)
        row = sp.csr_matrix((vals, (np.zeros(idx.size, np.int64), idx)), shape=(1, self.n_items))
        row.sum_duplicates()
        return row

    def recommend(
        self,
        history: Sequence[int] | np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[int] | np.ndarray | None = None,
        weights: Sequence[float] | np.ndarray | None = None,
        exclude: Sequence[int] | np.ndarray | None = None,
        user: int | None = None,
    ) -> Results:
        """Top-k items for one user given their history of item indices.

        `user` is the user's training index when known (see `score`). A sequential model
        reads `history` as the user's events oldest first (repeats allowed) and ignores
        `weights`.
        """
        self._check_fitted()
        row = self.history_matrix(history, weights)
        users = None if user is None else np.array([user], dtype=np.int64)
        if self.sequential:
            sequence = np.asarray(history, dtype=np.int64).reshape(-1)
            scores = self.score_sequences([sequence], users)[0].astype(np.float32, copy=True)
        else:
            scores = self.score(row, users)[0].astype(np.float32, copy=True)
        if exclude_seen and row.nnz:
            scores[row.indices] = -np.inf
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        if candidates is not None:
            mask = np.full(self.n_items, -np.inf, dtype=np.float32)
            cand = np.asarray(candidates, dtype=np.int64)
            mask[cand] = scores[cand]
            scores = mask
        return top_k(scores, k)

    def recommend_batch(
        self,
        histories: sp.csr_matrix,
        k: int = 10,
        exclude_seen: bool = True,
        users: np.ndarray | None = None,
        chunk: int = 1024,
        sequences: Sequence[np.ndarray] | None = None,
    ) -> Results:
        """Top-k for many users at once (rows of `histories`); missing slots have id -1.

        `users` optionally gives each row's training user index (see `score`).
        `sequences` optionally gives each row's history in time order (oldest first);
        sequential models score from it, the others ignore it. Seen items are always
        taken from `histories`.
        """
        self._check_fitted()
        histories = sp.csr_matrix(histories, dtype=np.float32)
        if sequences is not None and len(sequences) != histories.shape[0]:
            raise ValueError(f"{len(sequences)} sequences for {histories.shape[0]} history rows")
        ids, scores = [], []
        for start in range(0, histories.shape[0], chunk):
            block = histories[start : start + chunk]
            block_users = None if users is None else np.asarray(users)[start : start + chunk]
            if self.sequential and sequences is not None:
                block_seqs = sequences[start : start + chunk]
                s = self.score_sequences(block_seqs, block_users).astype(np.float32, copy=True)
            else:
                s = self.score(block, block_users).astype(np.float32, copy=True)
            if exclude_seen:
                rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
                s[rows, block.indices] = -np.inf
            res = top_k_rows(s, k)
            ids.append(res.ids)
            scores.append(res.scores)
        if not ids:
            return Results(np.empty((0, k), np.int64), np.empty((0, k), np.float32))
        return Results(np.vstack(ids), np.vstack(scores))

    def similar_items(self, item: int, k: int = 10) -> Results:
        """Items most similar to `item` (itself excluded)."""
        self._check_fitted()
        if not 0 <= item < self.n_items:
            raise ValueError(f"item index {item} outside 0..{self.n_items - 1}")
        return self.recommend([item], k=k, exclude_seen=True)

    def save(self, directory: Path) -> None:
        """Write config.json and arrays.npz (no pickle)."""
        self._check_fitted()
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.name, "config": self.config.model_dump(), "n_items": self.n_items}
        (directory / "config.json").write_text(json.dumps(meta, indent=2))
        np.savez(directory / "arrays.npz", allow_pickle=False, **self._arrays())

    @classmethod
    def load(cls, directory: Path) -> Recommender:
        """Read a model written by `save`."""
        meta = json.loads((directory / "config.json").read_text())
        model = cls(cls.Config(**meta["config"]))
        with np.load(directory / "arrays.npz", allow_pickle=False) as data:
            model._restore({k: data[k] for k in data.files})
        model.n_items = int(meta["n_items"])
        return model


@dataclass(frozen=True)
class ModelEntry:
    """Where a built-in model lives (`"module:Class"`) and whether it needs torch, read
    without importing the module: the classic models never import torch, and listing or
    creating them must not either."""

    target: str
    torch: bool = False

    @property
    def module(self) -> str:
        """The module that defines (and registers) the class."""
        return self.target.partition(":")[0]

    @property
    def class_name(self) -> str:
        """The class's name in its module."""
        return self.target.partition(":")[2]


MODELS: dict[str, ModelEntry] = {
    "als": ModelEntry("shelfwise.recommenders.als:ALS"),
    "bpr": ModelEntry("shelfwise.recommenders.bpr:BPR"),
    "bprmf": ModelEntry("shelfwise.recommenders.bprmf:BPRMF", torch=True),
    "caser": ModelEntry("shelfwise.recommenders.caser:Caser", torch=True),
    "ease": ModelEntry("shelfwise.recommenders.ease:EASE"),
    # the sentence encoder runs on torch (sentence-transformers) when the model is fitted
    "embedding": ModelEntry("shelfwise.recommenders.content:Embedding", torch=True),
    "gru4rec": ModelEntry("shelfwise.recommenders.gru4rec:GRU4Rec", torch=True),
    # a hybrid needs torch only through its components, whose own entries say so
    "hybrid": ModelEntry("shelfwise.recommenders.hybrid:Hybrid"),
    "itemknn": ModelEntry("shelfwise.recommenders.itemknn:ItemKNN"),
    "lda": ModelEntry("shelfwise.recommenders.content:Lda"),
    "lsa": ModelEntry("shelfwise.recommenders.content:Lsa"),
    "popularity": ModelEntry("shelfwise.recommenders.popularity:Popularity"),
    "sasrec": ModelEntry("shelfwise.recommenders.sasrec:SASRec", torch=True),
    "svd": ModelEntry("shelfwise.recommenders.svd:PureSVD"),
    "tfidf": ModelEntry("shelfwise.recommenders.content:Tfidf"),
    "trending": ModelEntry("shelfwise.recommenders.trending:Trending"),
    "userknn": ModelEntry("shelfwise.recommenders.userknn:UserKNN"),
}
"""The built-in models by registry name; their modules are imported on first use."""

M = TypeVar("M", bound=type[Recommender])
_REGISTRY: dict[str, type[Recommender]] = {}
"""Classes imported so far: built-ins register themselves when their module is imported,
other models (plugins, tests) by calling `register`."""


def register(cls: M) -> M:
    """Class decorator: make a model available by its `name`."""
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> type[Recommender] | None:
    """Forget the class registered under `name` (a plugin's, or an imported built-in, which
    `model_class` then imports again); returns it, or None if none was registered."""
    return _REGISTRY.pop(name, None)


def available() -> list[str]:
    """Model names: the built-ins and every registered class (nothing is imported)."""
    return sorted(set(MODELS) | set(_REGISTRY))


def model_class(name: str) -> type[Recommender]:
    """The class of a model name, importing its module on first use."""
    cls = _REGISTRY.get(name)
    if cls is not None:
        return cls
    entry = MODELS.get(name)
    if entry is None:
        raise ConfigError(f"unknown model '{name}'; choose one of {', '.join(available())}")
    found = getattr(importlib.import_module(entry.module), entry.class_name)
    if not (isinstance(found, type) and issubclass(found, Recommender) and found.name == name):
        raise ConfigError(f"MODELS['{name}'] = {entry.target!r} is not the '{name}' Recommender")
    _REGISTRY.setdefault(name, found)
    return found


def needs_torch(name: str) -> bool:
    """True if the model needs torch to be fitted or scored; a built-in is answered from
    `MODELS` without importing anything."""
    entry = MODELS.get(name)
    cls = _REGISTRY.get(name)
    if entry is not None and (cls is None or cls.__module__ == entry.module):
        return entry.torch
    cls = model_class(name)
    # a class from elsewhere: a torch model's module has imported torch_base, so while that
    # is not loaded the class cannot be one
    torch_base = sys.modules.get("shelfwise.recommenders.torch_base")
    return torch_base is not None and issubclass(cls, torch_base.TorchRecommender)


def create(name: str, **params: Any) -> Recommender:
    """A new model by registry name with keyword parameters."""
    return model_class(name)(**params)


def load_model(directory: Path) -> Recommender:
    """Load any saved model; its class is read from config.json."""
    name = json.loads((directory / "config.json").read_text())["model"]
    if name not in available():
        raise ConfigError(f"{directory}: unknown model '{name}'")
    return model_class(name).load(directory)


Factory = Callable[..., Recommender]
