"""Models scored in the live catalogue's index space, whatever catalogue they were trained on."""

from __future__ import annotations

import numpy as np

from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError
from shelfwise.recommenders import Recommender
from shelfwise.recommenders.capabilities import personalises


def normalised(scores: np.ndarray) -> np.ndarray:
    """Scores divided by their maximum (unchanged when none is positive)."""
    top = float(np.max(scores)) if scores.size else 0.0
    return scores / top if top > 0 else scores


class AlignedModel:
    """A recommender scored in the live catalog's index space.

    A bundle model shares the bundle's item indices (`items=None`): catalog items past its
    `n_items` (added after training) are unknown to it. A model trained elsewhere (a tuned
    version from the registry) brings its own item vocabulary; its indices are mapped
    to the catalog's by id, and catalog items it never saw are unknown to it.
    """

    def __init__(
        self,
        model: Recommender,
        items: Vocabulary | None = None,
        catalog: Vocabulary | None = None,
        label: str | None = None,
    ) -> None:
        self.model = model
        self.name = model.name
        self.label = label or model.name
        self.sequential = bool(getattr(model, "sequential", False))
        self.personalised = personalises(model)
        self.to_model: np.ndarray | None = None
        if items is not None:
            if catalog is None:
                raise ValueError("a model with its own item vocabulary needs the catalog's")
            if len(items) != model.n_items:
                raise ConfigError(
                    f"{self.label}: the saved item vocabulary has {len(items):,} ids but the "
                    f"model {model.n_items:,} items"
                )
            self.to_model = np.asarray(items.encode(catalog.ids, unknown="minus_one"))
            if not (self.to_model >= 0).any():
                raise ConfigError(
                    f"{self.label} shares no item with the served catalog; train it on this "
                    "store's data"
                )

    def known(self, n: int) -> np.ndarray:
        """Mask over the first n catalog items: those the model can score."""
        mask = np.zeros(n, dtype=bool)
        if self.to_model is None:
            mask[: min(n, self.model.n_items)] = True
        else:
            m = min(n, len(self.to_model))
            mask[:m] = self.to_model[:m] >= 0
        return mask

    def _to_model(self, idx: np.ndarray) -> np.ndarray:
        if self.to_model is None:
            return np.where(idx < self.model.n_items, idx, -1)
        inside = idx < len(self.to_model)
        out = np.full(idx.shape, -1, dtype=np.int64)
        out[inside] = self.to_model[idx[inside]]
        return out

    def scores(
        self, history: np.ndarray, weights: np.ndarray, sequence: np.ndarray, n: int
    ) -> np.ndarray:
        """Scores over the first n catalog items, scaled to 0..1 (0 where unknown)."""
        model = self.model
        if self.sequential:
            seq = self._to_model(sequence)
            seq = seq[seq >= 0]
            if not seq.size:
                return np.zeros(n)
            logits = np.asarray(model.score_sequences([seq])[0], dtype=np.float64)
            raw = np.zeros_like(logits)
            finite = np.isfinite(logits)
            if finite.any():  # softmax-like: positive, the best scoring 1
                raw[finite] = np.exp(logits[finite] - logits[finite].max())
        else:
            hist = self._to_model(history)
            keep = hist >= 0
            if not keep.any() or not self.personalised:
                return np.zeros(n)
            row = model.history_matrix(hist[keep], weights[keep])
            raw = normalised(np.maximum(np.asarray(model.score(row)[0], np.float64), 0))
        out = np.zeros(n)
        if self.to_model is None:
            m = min(n, len(raw))
            out[:m] = raw[:m]
        else:
            m = min(n, len(self.to_model))
            mapped = self.to_model[:m]
            ok = mapped >= 0
            out[:m][ok] = raw[mapped[ok]]
        return out
