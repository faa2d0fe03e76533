"""Model parameters from the command line (`--set MODEL.PARAM=VALUE`) and TOML files.

`--set ease.l2=300 --set als.factors=64` and a `--config` file such as::

    [ease]
    l2 = 300

    [itemknn]
    neighbors = 50

both become `{"ease": {"l2": 300}, "itemknn": {"neighbors": 50}}`; `--set` wins over the
file. VALUE is read as a TOML value (ints, floats, booleans, quoted strings, lists such as
`[1, 2]`); anything that is not valid TOML is taken as a plain string, so
`--set tfidf.analyzer=word` works without quotes. `validate_params` checks every model and
parameter against the registry and the model's pydantic config.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shelfwise.errors import ConfigError
from shelfwise.recommenders.base import available, create

Params = dict[str, dict[str, Any]]


def parse_value(text: str) -> Any:
    """A TOML scalar or list (`300`, `0.5`, `true`, `"x"`, `[1, 2]`); else the raw string."""
    stripped = text.strip()
    try:
        return tomllib.loads(f"v = {stripped}")["v"]
    except tomllib.TOMLDecodeError:
        return stripped


def _known_models(models: Iterable[str] | None) -> list[str]:
    return sorted(models) if models is not None else available()


def parse_set(assignments: Sequence[str], models: Iterable[str] | None = None) -> Params:
    """`["ease.l2=300", ...]` -> `{"ease": {"l2": 300}}`.

    `models` are the valid model names (default: the registry); an unknown model or a
    malformed assignment raises `ConfigError` naming the flag.
    """
    valid = _known_models(models)
    out: Params = {}
    for raw in assignments:
        left, sep, value = raw.partition("=")
        model, dot, param = left.strip().partition(".")
        if not sep or not dot or not model or not param or not value.strip():
            raise ConfigError(
                f"--set {raw!r}: expected MODEL.PARAM=VALUE (e.g. --set ease.l2=300); "
                f"models: {', '.join(valid)}"
            )
        if model not in valid:
            raise ConfigError(
                f"--set {raw!r}: unknown model {model!r}; valid models: {', '.join(valid)}"
            )
        out.setdefault(model, {})[param.strip()] = parse_value(value)
    return out


def load_config(path: Path, models: Iterable[str] | None = None) -> Params:
    """A TOML file of `[model]` tables -> `{model: {param: value}}`."""
    valid = _known_models(models)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"--config {path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: invalid TOML: {exc}") from exc
    out: Params = {}
    for model, table in data.items():
        if model not in valid:
            raise ConfigError(
                f"--config {path}: unknown model [{model}]; valid models: {', '.join(valid)}"
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"--config {path}: {model} must be a table ([{model}] with param = value lines)"
            )
        out[model] = dict(table)
    return out


def merge(*sources: Mapping[str, Mapping[str, Any]]) -> Params:
    """Merge parameter sets; later sources win per (model, param)."""
    out: Params = {}
    for source in sources:
        for model, params in source.items():
            out.setdefault(model, {}).update(params)
    return out


def validate_params(params: Mapping[str, Mapping[str, Any]]) -> None:
    """Build each model's config once; an unknown or invalid parameter raises `ConfigError`
    naming the model and the parameter (with the model's valid parameters)."""
    for model, values in params.items():
        if model not in available():
            raise ConfigError(f"unknown model {model!r}; valid models: {', '.join(available())}")
        try:
            create(model, **dict(values))
        except ConfigError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            fields = sorted(create(model).config.__class__.model_fields)
            problems = []
            for err in cause.errors():
                name = ".".join(str(p) for p in err["loc"]) or "?"
                if err["type"] == "extra_forbidden":
                    problems.append(f"unknown parameter {name!r}")
                else:
                    problems.append(f"parameter {name!r}: {err['msg']}")
            raise ConfigError(
                f"model {model!r}: {'; '.join(problems)}; valid parameters: "
                f"{', '.join(fields) or '(none)'}"
            ) from exc
