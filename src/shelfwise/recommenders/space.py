"""Search spaces as data: what a model's tuner may try, declared beside its config.

A model's `Config.SEARCH_SPACE` maps parameter names to `IntRange`, `FloatRange` or `Choice`,
in the order a trial asks for them (the order matters: a seeded sampler draws its values in
that order). A parameter is a config field of the same name unless the config's
`from_search` says otherwise (tfidf's `ngram_max` sets `ngram_range`, EASE rounds `l2`).

Conditional spaces are a condition table: a parameter with `when=When("weighting",
("bm25",))` is asked only if the earlier parameter `weighting` took one of those values, and
keeps its config default otherwise. That covers every conditional space of the built-in
models (itemknn's `bm25_b`, trending's `category_boost`, hybrid's two methods, the torch
models' warm-up epochs), so no space needs to be code; and being data, the tuner reads
bounds, grids and whether a default lies inside without running the space on fake trials.

These are plain dataclasses, not Optuna distributions: importing Optuna would add a tenth
to `import shelfwise.recommenders`; `shelfwise.tuning.space` converts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class When:
    """A condition on an earlier parameter: `param` took one of `values`."""

    param: str
    values: tuple[Any, ...]

    def holds(self, drawn: Mapping[str, Any]) -> bool:
        """True if `drawn` (the values so far) satisfies the condition."""
        return self.param in drawn and drawn[self.param] in self.values


@dataclass(frozen=True)
class Param:
    """One searched parameter; `when` makes it conditional (see the module doc)."""

    when: When | None = field(default=None, kw_only=True)

    def active(self, drawn: Mapping[str, Any]) -> bool:
        """True if a trial with the values `drawn` so far asks for this parameter."""
        return self.when is None or self.when.holds(drawn)

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask `trial` (Optuna's interface) for a value named `name`."""
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        """True if `value` is a point of this parameter's range."""
        raise NotImplementedError


@dataclass(frozen=True)
class IntRange(Param):
    """Integers in [low, high] (log-uniform with `log`), every `step`."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)

    def suggest(self, trial: Any, name: str) -> int:
        """`trial.suggest_int(name, low, high, log=..., [step=...])`."""
        extra: dict[str, Any] = {} if self.step == 1 else {"step": self.step}
        return int(trial.suggest_int(name, self.low, self.high, log=self.log, **extra))

    def contains(self, value: Any) -> bool:
        """In the range (steps are not checked)."""
        return _in_range(value, self.low, self.high, self.log)


@dataclass(frozen=True)
class FloatRange(Param):
    """Floats in [low, high] (log-uniform with `log`), on a grid of `step` if given."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)

    def suggest(self, trial: Any, name: str) -> float:
        """`trial.suggest_float(name, low, high, log=..., [step=...])`."""
        extra: dict[str, Any] = {} if self.step is None else {"step": self.step}
        return float(trial.suggest_float(name, self.low, self.high, log=self.log, **extra))

    def contains(self, value: Any) -> bool:
        """In the range (steps are not checked)."""
        return _in_range(value, self.low, self.high, self.log)


@dataclass(frozen=True)
class Choice(Param):
    """One of `choices` (categorical)."""

    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError("a Choice needs at least one option")

    def suggest(self, trial: Any, name: str) -> Any:
        """`trial.suggest_categorical(name, [choices])`."""
        return trial.suggest_categorical(name, list(self.choices))

    def contains(self, value: Any) -> bool:
        """One of the choices."""
        return value in self.choices


SearchSpace = dict[str, Param]
"""Parameter name -> what to search, in the order a trial asks for them."""


def when(param: str, *values: Any) -> When:
    """`When(param, values)`: ask a parameter only if `param` took one of `values`."""
    return When(param, tuple(values))


def draw(space: Mapping[str, Param], trial: Any) -> dict[str, Any]:
    """The values `trial` gives the active parameters of `space`, asked in order."""
    drawn: dict[str, Any] = {}
    for name, param in space.items():
        if param.active(drawn):
            drawn[name] = param.suggest(trial, name)
    return drawn


def check_space(space: Mapping[str, Param]) -> None:
    """`ValueError` if a condition names a parameter that is not asked before it."""
    seen: list[str] = []
    for name, param in space.items():
        if param.when is not None and param.when.param not in seen:
            raise ValueError(
                f"search space: {name!r} depends on {param.when.param!r}, which must be an "
                f"earlier parameter (one of {seen})"
            )
        seen.append(name)


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"range [{low}, {high}]: low is above high")
    if log and low <= 0:
        raise ValueError(f"log range [{low}, {high}] must start above 0")


def _in_range(value: Any, low: float, high: float, log: bool) -> bool:
    return isinstance(value, int | float) and low <= value <= high and not (log and value <= 0)
