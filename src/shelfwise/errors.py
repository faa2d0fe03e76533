"""Exception hierarchy. Every error says what was wrong and what to do about it."""

from __future__ import annotations


class ShelfwiseError(Exception):
    """Base class of every error Shelfwise raises on purpose."""


class DataError(ShelfwiseError):
    """Input data is invalid: a bad row, a missing column, an unknown dataset."""


class RowValidationError(DataError):
    """A record failed validation; names the source, the line and the field."""

    def __init__(self, source: str, line: int | None, field: str | None, message: str) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.detail = message
        where = source
        if line is not None:
            where += f", line {line}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class ConfigError(ShelfwiseError):
    """A configuration value is invalid; the message lists the valid choices."""


class StoreError(ShelfwiseError):
    """The store cannot be opened or a store operation failed."""


class NotFittedError(ShelfwiseError):
    """A model was used before `fit` (or `load`)."""


class UnknownIdError(ShelfwiseError, KeyError):
    """An external id is not in the vocabulary."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown id"
