"""Samplers, pruners and study storage by name.

Samplers (`SAMPLERS`): `tpe` (multivariate, grouped TPE with a constant liar, so parallel
workers do not pile onto one point), `random`, `grid` (every effective point of the
model's search space, see `shelfwise.tuning.space.grid_points`), `cmaes` (CMA-ES over the
numeric parameters; categorical ones fall back to random sampling).

Pruners (`PRUNERS`): `none`, `median` (from epoch 3 on, after 3 finished trials, stop a
trial whose best value so far is below the median of the finished trials' values at that
epoch), `hyperband`, `successive_halving`.

Storage: a local Optuna journal file by default (append-only, so a study that was
interrupted resumes where it stopped); `sqlite:///file.db`; or `postgresql://...` (any
SQLAlchemy URL) to share one study between processes on one machine or many.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna

from shelfwise.errors import ConfigError
from shelfwise.tuning.names import PRUNERS, SAMPLERS


def make_sampler(
    name: str, seed: int | None = 42, grid: Sequence[Mapping[str, Any]] | None = None
) -> optuna.samplers.BaseSampler:
    """A sampler by name; `grid` (the points) is required for `grid`."""
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                group=True,
                constant_liar=True,
                n_startup_trials=5,
            )
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError as exc:  # pragma: no cover - pinned dependency
                raise ConfigError(
                    "the cmaes sampler needs the 'cmaes' package: pip install cmaes"
                ) from exc
            return optuna.samplers.CmaEsSampler(
                seed=seed,
                n_startup_trials=4,
                warn_independent_sampling=False,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            )
    from shelfwise.tuning.space import PointListSampler

    if not grid:
        raise ConfigError("the grid sampler needs the grid points of the search space")
    return PointListSampler(grid)


def make_pruner(name: str, n_startup_trials: int = 3) -> optuna.pruners.BasePruner:
    """A pruner by name. Steps are epochs (iterative models) or folds (cross-validation)."""
    if name not in PRUNERS:
        raise ConfigError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        # no pruning before epoch 3 (Optuna prunes from step == n_warmup_steps): the first
        # epochs of factor models rank configurations badly
        return optuna.pruners.MedianPruner(
            n_startup_trials=n_startup_trials, n_warmup_steps=3, interval_steps=1
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


def redact(url: str) -> str:
    """A storage URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def is_shared_url(url: str) -> bool:
    """True for storages that several processes may share safely (database URLs)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme.startswith(("postgresql", "postgres", "mysql"))


def _sqlalchemy_url(url: str) -> str:
    """`postgresql://` -> `postgresql+psycopg://` (psycopg 3 is the installed driver)."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def open_storage(target: str | os.PathLike[str]) -> optuna.storages.BaseStorage:
    """Open a study storage: a database URL, `sqlite:///path`, or a journal file path.

    A path (or `journal:///path`) is an append-only journal file, created with its folder.
    Database storages send heartbeats, so trials of a worker that died are marked failed.
    """
    text = os.fspath(target)
    if "://" in text and not text.startswith(("journal://", "file://")):
        scheme = text.split("://", 1)[0].lower()
        if not scheme.startswith(("postgresql", "postgres", "sqlite", "mysql")):
            raise ConfigError(
                f"--storage {text!r}: expected postgresql://..., sqlite:///FILE or a file path"
            )
        heartbeat: dict[str, Any] = {}
        if is_shared_url(text):
            heartbeat = {"heartbeat_interval": 30, "grace_period": 120}
        # Workers started together on a fresh database race to create Optuna's tables; the
        # loser's insert fails once the winner's are there, and a retry then finds them.
        for attempt in range(4):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(
                        _sqlalchemy_url(text), engine_kwargs={"pool_pre_ping": True}, **heartbeat
                    )
            except Exception as exc:
                if attempt == 3:
                    raise ConfigError(f"--storage: cannot open {redact(text)}: {exc}") from exc
                time.sleep(0.5 * (attempt + 1))
    path = Path(text.split("://", 1)[1] if "://" in text else text)
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(path)))
