"""Search spaces: the models' own `Config.SEARCH_SPACE` (data, see
`shelfwise.recommenders.space`), namespaced, replayed and enumerated, without knowing any
model.

- `PrefixedTrial` prefixes every parameter name (`als.factors`), so one study can search
  over model types (`--model auto`) without two models' `factors` colliding.
- `config_from_params` replays a search space on fixed values (a finished trial's params)
  to rebuild the exact config.
- `default_params` reads from the space which parameters a model's default config sets
  and whether each lies inside its range (then the default is queued as a first trial).
- `grid_points` enumerates every *effective* point of a search space: each categorical
  choice is a branch, each numeric range becomes a few evenly spaced values (log-spaced for
  log ranges). A conditional parameter (itemknn's `bm25_b` unless weighting is bm25) is
  not multiplied in where its condition fails, so no two points are the same
  configuration. `enumerate_space` does the same for a space written as a define-by-run
  function (a config that overrides `search_space(trial)` instead of declaring data).
- `distribution` gives the Optuna distribution a parameter is sampled from.
- `PointListSampler` evaluates such a list of points, one per trial, indexed by trial
  number: trial numbers are assigned atomically by the storage, so workers sharing a study
  never evaluate the same point twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from shelfwise.errors import ConfigError
from shelfwise.recommenders.base import ModelConfig, available, create, model_class
from shelfwise.recommenders.space import Choice, FloatRange, IntRange, Param, SearchSpace

MAX_GRID = 20_000
_POINT_ATTR = "shelfwise_point"
EXHAUSTED_ATTR = "shelfwise_grid_exhausted"


def config_class(model: str) -> type[ModelConfig]:
    """The pydantic Config class of a registered model."""
    return model_class(model).Config


def declared_space(model: str) -> SearchSpace | None:
    """The model's `Config.SEARCH_SPACE` (None: no space, or one written as a function)."""
    return config_class(model).SEARCH_SPACE


def has_search_space(model: str) -> bool:
    """True if the model's Config declares a search space (`search_space(trial)` exists)."""
    return callable(getattr(config_class(model), "search_space", None))


def search_space(model: str) -> Callable[[Any], ModelConfig]:
    """The model's `Config.search_space`; `ConfigError` if it has none (nothing to tune)."""
    fn = getattr(config_class(model), "search_space", None)
    if not callable(fn):
        tunable = [m for m in available() if has_search_space(m)]
        raise ConfigError(
            f"model {model!r} declares no search space (nothing to tune); tunable models: "
            f"{', '.join(tunable)}"
        )
    return fn  # type: ignore[no-any-return,unused-ignore]


class PrefixedTrial:
    """A trial whose `suggest_*` names get a prefix; everything else passes through.

    `pinned` maps unprefixed parameter names to fixed values (`shelfwise tune --set`):
    those are answered without asking the sampler, so the study never searches them.
    """

    def __init__(self, trial: Any, prefix: str, pinned: Mapping[str, Any] | None = None) -> None:
        self._trial = trial
        self._prefix = prefix
        self._pinned = dict(pinned or {})

    def suggest_int(self, name: str, low: int, high: int, **kwargs: Any) -> int:
        """`trial.suggest_int(prefix + name, ...)`."""
        if name in self._pinned:
            return int(self._pinned[name])
        return int(self._trial.suggest_int(self._prefix + name, low, high, **kwargs))

    def suggest_float(self, name: str, low: float, high: float, **kwargs: Any) -> float:
        """`trial.suggest_float(prefix + name, ...)`."""
        if name in self._pinned:
            return float(self._pinned[name])
        return float(self._trial.suggest_float(self._prefix + name, low, high, **kwargs))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """`trial.suggest_categorical(prefix + name, choices)`."""
        if name in self._pinned:
            return self._pinned[name]
        return self._trial.suggest_categorical(self._prefix + name, choices)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._trial, attr)


def pinned_config(model: str, config: ModelConfig, pinned: Mapping[str, Any]) -> ModelConfig:
    """`config` with the `pinned` fields set (validated; `ConfigError` naming a bad one)."""
    if not pinned:
        return config
    try:
        return type(config)(**{**config.model_dump(), **pinned})
    except ValueError as exc:
        raise ConfigError(f"--set {model}: {exc}") from exc


def split_params(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The params under `prefix`, without it."""
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def config_from_params(model: str, params: Mapping[str, Any], prefix: str = "") -> ModelConfig:
    """Replay `model`'s search space on fixed `params` (names with `prefix`)."""
    trial: Any = optuna.trial.FixedTrial(dict(params))
    if prefix:
        trial = PrefixedTrial(trial, prefix)
    try:
        return search_space(model)(trial)
    except ValueError as exc:
        raise ConfigError(
            f"{model}: parameters {dict(params)} do not fit its space: {exc}"
        ) from exc


def distribution(param: Param) -> BaseDistribution:
    """The Optuna distribution `param` is sampled from (what a trial records)."""
    if isinstance(param, Choice):
        return optuna.distributions.CategoricalDistribution(list(param.choices))
    if isinstance(param, IntRange):
        return optuna.distributions.IntDistribution(
            param.low, param.high, log=param.log, step=param.step
        )
    if isinstance(param, FloatRange):
        return optuna.distributions.FloatDistribution(
            param.low, param.high, log=param.log, step=param.step
        )
    raise TypeError(f"not a search-space parameter: {param!r}")


def default_params(
    model: str, prefix: str = "", pinned: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The search-space parameters that reproduce the model's default config (with the
    `pinned` fields set, which are not parameters), or None when a parameter has no config
    field of the same name or its default lies outside the searched range (then the
    default cannot be queued as a trial), or the space is not data."""
    pins = dict(pinned or {})
    config = create(model, **pins).config
    space = declared_space(model)
    if space is None:
        return None
    fields = type(config).model_fields
    drawn: dict[str, Any] = {}  # what a trial would see, pinned values included
    params: dict[str, Any] = {}
    for name, param in space.items():
        if name in pins:
            drawn[name] = pins[name]
            continue
        if not param.active(drawn):
            continue
        value = getattr(config, name) if name in fields else None
        if name not in fields or not param.contains(value):
            return None
        drawn[name] = value
        params[prefix + name] = value
    try:
        type(config).from_search(drawn)
    except ValueError:
        return None
    return params


# -- grid enumeration ----------------------------------------------------------------------
def _round(value: float) -> float:
    return float(f"{value:.4g}")


def numeric_points(
    low: float, high: float, n: int, log: bool, step: float | None, integer: bool
) -> list[Any]:
    """Up to `n` evenly (or log-evenly) spaced values covering [low, high], ends included."""
    if integer or step:
        unit = step or 1
        count = math.floor((high - low) / unit + 1e-9) + 1
        if count <= n:
            values = [low + i * unit for i in range(count)]
            return [int(v) for v in values] if integer else [_round(v) for v in values]
    raw = np.geomspace(low, high, n) if log and low > 0 else np.linspace(low, high, n)
    if integer or step:
        unit = step or 1
        snapped = [low + round((v - low) / unit) * unit for v in raw]
        out = sorted({int(v) if integer else _round(v) for v in snapped})
        return [min(max(v, low), high) for v in out]
    values = sorted({_round(float(v)) for v in raw})
    return [min(max(v, low), high) for v in values]


class _Probe:
    """A trial that answers each suggestion with the option chosen by `path` (0 beyond it)
    and records how many options each decision had."""

    def __init__(self, path: list[int], n_numeric: int) -> None:
        self.path = path
        self.n_numeric = n_numeric
        self.widths: list[int] = []
        self.chosen: list[int] = []
        self.params: dict[str, Any] = {}
        self.number = 0

    def _choose(self, name: str, options: list[Any]) -> Any:
        depth = len(self.chosen)
        index = self.path[depth] if depth < len(self.path) else 0
        self.widths.append(len(options))
        self.chosen.append(index)
        self.params[name] = options[index]
        return options[index]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._choose(name, list(choices))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self._choose(name, numeric_points(low, high, self.n_numeric, log, step, True)))

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        return float(
            self._choose(name, numeric_points(low, high, self.n_numeric, log, step, False))
        )

    def report(self, value: float, step: int) -> None:
        return None

    def should_prune(self) -> bool:
        return False

    def set_user_attr(self, key: str, value: Any) -> None:
        return None


def enumerate_space(
    space: Callable[[Any], Any], n_numeric: int = 4, limit: int = MAX_GRID
) -> list[dict[str, Any]]:
    """Every effective point of a define-by-run space (see the module doc), in DFS order."""
    if n_numeric < 1:
        raise ConfigError(f"grid points per numeric parameter must be >= 1, got {n_numeric}")
    points: list[dict[str, Any]] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    path: list[int] = []
    while True:
        probe = _Probe(path, n_numeric)
        space(probe)
        key = tuple(sorted((k, repr(v)) for k, v in probe.params.items()))
        if key not in seen:
            seen.add(key)
            points.append(dict(probe.params))
            if len(points) > limit:
                raise ConfigError(
                    f"the grid has more than {limit:,} points; lower --grid-points or use "
                    "another sampler (tpe, random)"
                )
        # next path: advance the deepest decision that has options left
        chosen, widths = probe.chosen, probe.widths
        depth = len(chosen) - 1
        while depth >= 0 and chosen[depth] + 1 >= widths[depth]:
            depth -= 1
        if depth < 0:
            return points
        path = [*chosen[:depth], chosen[depth] + 1]


def _options(param: Param, n_numeric: int) -> list[Any]:
    """The grid values of one parameter."""
    if isinstance(param, Choice):
        return list(param.choices)
    if isinstance(param, IntRange):
        return numeric_points(param.low, param.high, n_numeric, param.log, param.step, True)
    if isinstance(param, FloatRange):
        return numeric_points(param.low, param.high, n_numeric, param.log, param.step, False)
    raise TypeError(f"not a search-space parameter: {param!r}")


def space_points(
    space: SearchSpace,
    n_numeric: int = 4,
    prefix: str = "",
    pinned: Mapping[str, Any] | None = None,
    limit: int = MAX_GRID,
) -> list[dict[str, Any]]:
    """Every effective point of a search space (see the module doc), parameters with
    `prefix`, the `pinned` ones left out; the first parameter varies slowest, as in the
    depth-first walk of `enumerate_space`."""
    if n_numeric < 1:
        raise ConfigError(f"grid points per numeric parameter must be >= 1, got {n_numeric}")
    pins = dict(pinned or {})
    items = list(space.items())
    points: list[dict[str, Any]] = []

    def walk(i: int, drawn: dict[str, Any], point: dict[str, Any]) -> None:
        while i < len(items) and (items[i][0] in pins or not items[i][1].active(drawn)):
            name = items[i][0]
            if name in pins:
                drawn = {**drawn, name: pins[name]}
            i += 1
        if i == len(items):
            points.append(point)
            if len(points) > limit:
                raise ConfigError(
                    f"the grid has more than {limit:,} points; lower --grid-points or use "
                    "another sampler (tpe, random)"
                )
            return
        name, param = items[i]
        for value in _options(param, n_numeric):
            walk(i + 1, {**drawn, name: value}, {**point, prefix + name: value})

    walk(0, {}, {})
    return points


def grid_points(
    model: str, n_numeric: int = 4, prefix: str = "", pinned: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The grid of a model's search space (parameter names with `prefix`; the `pinned`
    parameters are not enumerated)."""
    fn = search_space(model)
    space = declared_space(model)
    if space is not None:
        return space_points(space, n_numeric, prefix, pinned)

    def walk(trial: Any) -> Any:  # a define-by-run space: walk its tree
        return fn(PrefixedTrial(trial, prefix, pinned) if prefix or pinned else trial)

    return enumerate_space(walk, n_numeric)


class PointListSampler(optuna.samplers.BaseSampler):
    """Evaluates a fixed list of points: trial number n takes point n.

    A trial numbered past the list (after failed trials) takes the first point that no
    complete, pruned or running trial holds; if there is none (workers racing for the last
    point) the trial is flagged `EXHAUSTED_ATTR` and must not be evaluated. Parameters
    outside the points (there should be none) are sampled at random.
    """

    def __init__(self, points: Sequence[Mapping[str, Any]], seed: int | None = None) -> None:
        self.points = [dict(p) for p in points]
        self.exhausted: set[int] = set()
        """Numbers of this process's trials that found every point taken."""
        self._fallback = optuna.samplers.RandomSampler(seed=seed)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        return {}

    def unvisited(self, study: optuna.Study) -> list[int]:
        """Point indices that no complete, pruned or running trial holds."""
        taken = set()
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        for t in study.get_trials(deepcopy=False, states=states):
            if _POINT_ATTR in t.system_attrs:
                taken.add(int(t.system_attrs[_POINT_ATTR]))
        return [i for i in range(len(self.points)) if i not in taken]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if _POINT_ATTR in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        if trial.number < len(self.points):
            index = trial.number
        else:
            free = self.unvisited(study)
            if not free:  # another worker took the last point meanwhile: flag, do not repeat
                study._storage.set_trial_system_attr(trial._trial_id, EXHAUSTED_ATTR, True)
                self.exhausted.add(trial.number)
                return
            index = free[0]
        study._storage.set_trial_system_attr(trial._trial_id, _POINT_ATTR, index)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        index = trial.system_attrs.get(_POINT_ATTR)
        if index is not None:
            point = self.points[int(index)]
            if param_name in point:
                return point[param_name]
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)
