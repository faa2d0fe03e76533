"""Autocomplete: suggestions from past queries, categories and titles, by popularity.

Every suggestion is a phrase with a kind (`query`, `category`, `title`) and a weight:

* past queries: how often shoppers searched them (search events, plus `add_queries` live);
* categories: the summed popularity of their items (every level of the tree);
* titles: the item's popularity.

Weights are scaled to [0, 1] within each kind, then multiplied by the kind's prior
(`KIND_PRIORS`: a phrase people typed beats a category name, which beats a title).

Matching works on words (lower-cased, NFKC, accents stripped, not stemmed): every complete
word typed must be a word of the suggestion (or within the typo distance of one:
1 edit from 4 characters, 2 from 8), and the last, unfinished word must start a word of the
suggestion, possibly with a typo (`TypoIndex.complete(fuzzy=True)`). A suggestion that
starts with exactly what was typed ranks first; typo matches are discounted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shelfwise.search.typo import TypoIndex

__all__ = ["KIND_PRIORS", "Autocomplete", "Suggestion", "normalise_phrase"]

KIND_PRIORS: dict[str, float] = {"query": 1.0, "category": 0.8, "title": 0.6}
_WORD = re.compile(r"\w+", re.UNICODE)
_TYPO_DISCOUNT = 0.5
_STARTS_BONUS = 2.0
_COMPLETIONS = 50


def normalise_phrase(text: str) -> str:
    """Lower-case, NFKC, accents stripped, whitespace collapsed."""
    if text.isascii():  # NFKC leaves ASCII as it is, and casefold is lower there
        return " ".join(text.lower().split())
    text = unicodedata.normalize("NFKC", text).casefold()
    if not text.isascii():
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
        )
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Suggestion:
    """One autocomplete suggestion."""

    text: str
    kind: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"text": self.text, "kind": self.kind, "score": round(self.score, 6)}


class Autocomplete:
    """Phrases with kinds and popularity, searchable by (fuzzy) word prefixes."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.kinds: list[str] = []
        self.raw: list[float] = []
        self.norms: list[str] = []
        self._removed: set[int] = set()
        self._norm_array: np.ndarray | None = None
        self._by_key: dict[tuple[str, str], int] = {}
        self._postings: dict[str, list[int]] = {}
        self._words = TypoIndex()
        self._scores: np.ndarray | None = None
        self._arrays: dict[str, np.ndarray] = {}
        self._batch_words: set[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def build(
        cls,
        titles: Sequence[str | None] = (),
        title_weights: Sequence[float] | np.ndarray | None = None,
        categories: Mapping[str, float] | None = None,
        queries: Mapping[str, float] | None = None,
    ) -> Autocomplete:
        """Suggestions from titles (with item popularity), categories (path -> weight; every
        level is added) and past queries (text -> count)."""
        ac = cls()
        weights = np.ones(len(titles)) if title_weights is None else np.asarray(title_weights)
        for title, w in zip(titles, weights.tolist(), strict=True):
            if title:
                ac.add(title, "title", float(w))
        for path, w in (categories or {}).items():
            parts = [p.strip() for p in path.split(">") if p.strip()]
            for depth in range(1, len(parts) + 1):
                ac.add(" > ".join(parts[:depth]), "category", float(w))
        for text, w in (queries or {}).items():
            ac.add(text, "query", float(w))
        return ac

    def add(self, text: str, kind: str, weight: float = 1.0) -> None:
        """Add a phrase, or add `weight` to it if it is already there with this kind."""
        if kind not in KIND_PRIORS:
            raise ValueError(f"kind must be one of {', '.join(KIND_PRIORS)}, got '{kind}'")
        norm = normalise_phrase(text)
        if not norm:
            return
        key = (kind, norm)
        idx = self._by_key.get(key)
        if idx is not None:
            self.raw[idx] += weight
            self._removed.discard(idx)
        else:
            idx = len(self.texts)
            self._by_key[key] = idx
            self.texts.append(text.strip() if kind != "query" else norm)
            self.kinds.append(kind)
            self.raw.append(weight)
            self.norms.append(norm)
            self._norm_array = None
            words = set(_WORD.findall(norm))
            for w in words:
                self._postings.setdefault(w, []).append(idx)
            if self._batch_words is not None:  # loading: indexed once at the end
                self._batch_words |= words
            else:
                self._words.add(words)
        self._scores = None

    def remove(self, text: str, kind: str) -> bool:
        """Stop suggesting a phrase (e.g. the title of a deleted item); True if it was there."""
        idx = self._by_key.get((kind, normalise_phrase(text)))
        if idx is None or idx in self._removed:
            return False
        self._removed.add(idx)
        return True

    def add_queries(self, queries: Iterable[str]) -> None:
        """Count searches as they happen (each adds 1 to its query's popularity)."""
        for q in queries:
            self.add(q, "query", 1.0)

    def _score_array(self) -> np.ndarray:
        if self._scores is None:
            raw = np.asarray(self.raw, dtype=np.float64)
            kinds = np.asarray(self.kinds, dtype=object)
            scores = np.zeros_like(raw)
            for kind, prior in KIND_PRIORS.items():
                sel = kinds == kind
                if sel.any():
                    top = raw[sel].max()
                    scores[sel] = prior * (raw[sel] / top if top > 0 else 0.0)
            self._scores = scores
            self._arrays = {}
        return self._scores

    def _entries(self, word: str) -> np.ndarray:
        arr = self._arrays.get(word)
        if arr is None:
            arr = np.asarray(self._postings.get(word, []), dtype=np.int64)
            self._arrays[word] = arr
        return arr

    def _matching(self, matches: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Entries containing any of the words, with the smallest typo distance each."""
        if not matches:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        ids = np.concatenate([self._entries(w) for w, _ in matches])
        dist = np.concatenate([np.full(self._entries(w).size, d) for w, d in matches])
        order = np.lexsort((dist, ids))
        ids, dist = ids[order], dist[order]
        first = np.ones(ids.size, dtype=bool)
        first[1:] = ids[1:] != ids[:-1]
        return ids[first], dist[first]

    def suggest(self, prefix: str, k: int = 10) -> list[Suggestion]:
        """The best `k` suggestions for what was typed so far."""
        if k <= 0:
            return []
        norm = normalise_phrase(prefix)
        words = _WORD.findall(norm)
        if not words or not self.texts:
            return []
        scores = self._score_array()
        typing_last = not prefix[-1:].isspace()
        ids: np.ndarray | None = None
        typos: np.ndarray | None = None
        for i, word in enumerate(words):
            last = i == len(words) - 1
            if last and typing_last:
                matches = self._words.complete(word, limit=_COMPLETIONS, fuzzy=True)
            else:
                matches = self._words.lookup(word)
            found, dist = self._matching(matches)
            if ids is None or typos is None:
                ids, typos = found, dist
            else:
                common, ia, ib = np.intersect1d(ids, found, return_indices=True)
                ids, typos = common, typos[ia] + dist[ib]
            if ids.size == 0:
                return []
        assert ids is not None and typos is not None
        if self._removed:
            live = ~np.isin(ids, np.fromiter(self._removed, np.int64))
            ids, typos = ids[live], typos[live]
        value = scores[ids] * np.where(typos > 0, _TYPO_DISCOUNT, 1.0)
        if self._norm_array is None:
            self._norm_array = np.array(self.norms, dtype=np.dtypes.StringDType())
        starts = np.strings.startswith(self._norm_array[ids], norm)
        value = value + _STARTS_BONUS * starts
        order = np.lexsort((ids, -value))
        out: list[Suggestion] = []
        seen: set[str] = set()
        for j in order.tolist():
            i = int(ids[j])
            key = self.norms[i]
            if key in seen:
                continue
            seen.add(key)
            out.append(Suggestion(self.texts[i], self.kinds[i], float(value[j])))
            if len(out) == k:
                break
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        live = [i for i in range(len(self.texts)) if i not in self._removed]
        return {
            "texts": [self.texts[i] for i in live],
            "kinds": [self.kinds[i] for i in live],
            "weights": [self.raw[i] for i in live],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Autocomplete:
        """The suggestions `to_dict` wrote (their words indexed for typos in one batch)."""
        ac = cls()
        ac._batch_words = set()
        try:
            for text, kind, w in zip(data["texts"], data["kinds"], data["weights"], strict=True):
                ac.add(str(text), str(kind), float(w))
            ac._words.add(ac._batch_words)
        finally:
            ac._batch_words = None
        return ac
