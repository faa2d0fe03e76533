"""Typo tolerance and prefix completion over a word vocabulary.

`TypoIndex` holds the surface words of the catalog (and, for autocomplete, of past queries)
with their counts, in two structures:

* a sorted word list, so that exact prefix completion is two binary searches;
* a symmetric-delete index (SymSpell, Wolf Garbe 2012) for whole-word lookups: the
  hashes of every word's deletion variants, sorted, in numpy;
* a character trie for fuzzy *prefixes*, searched with the Levenshtein-automaton recursion
  of Steve Hanov ("Fast and Easy Levenshtein distance using a Trie", 2011): one
  dynamic-programming row per trie node, a branch is abandoned as soon as its row's minimum
  exceeds the allowed distance.

The distance is the *optimal string alignment* distance (Damerau-Levenshtein without
repeated edits of a substring), so a swap of two neighbouring letters costs 1.

The allowed distance grows with the length of what the shopper typed, as in Meilisearch and
Typesense: `max_distance(term)` is 0 below 4 characters, 1 from 4, 2 from 8.

`lookup(term)` finds words within that distance; `complete(prefix)` finds words that start
with `prefix`, or with something within the distance of it (`fuzzy=True`), most frequent
first. Words can be added at any time (`add`).

The deletion variants are hashed with CRC-32 (stable across processes, unlike `hash()`), so
the sorted arrays can be written once and read back (`state` / `from_state`, used by
`search.persistence`): loading a saved index costs reading its arrays, not re-hashing every
word. The trie is only built when a fuzzy prefix is first asked for.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["TypoIndex", "max_distance", "osa_distance"]

_END = "\x00"
"""Trie key of the word that ends at a node."""


def max_distance(term: str, one_from: int = 4, two_from: int = 8) -> int:
    """Edits allowed for a typed term: 0 below `one_from` characters, 1, then 2."""
    n = len(term)
    if n >= two_from:
        return 2
    return 1 if n >= one_from else 0


def osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str, depth: int) -> set[str]:
    """`word` and every string made from it by deleting up to `depth` characters."""
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


_INSORT_MAX = 64
"""New words in one `add` up to which the sorted word list is kept sorted in place."""
_DELTA_MIN = 50_000
_DELTA_SHARE = 0.25
"""Variants of words added since the last build held aside before a full rebuild."""


def _key(variant: str) -> int:
    """The stable hash of a deletion variant (CRC-32 of its UTF-8; collisions only add
    candidates, which `osa_distance` then rejects)."""
    return zlib.crc32(variant.encode("utf-8", "surrogatepass"))


def _depth(word: str) -> int:
    """Deletion depth indexed for a word (see `TypoIndex.lookup`)."""
    return 2 if len(word) >= 6 else (1 if len(word) >= 3 else 0)


class TypoIndex:
    """Words with counts, searchable by edit distance and by (fuzzy) prefix."""

    def __init__(self, words: Mapping[str, int] | Iterable[str] = ()) -> None:
        self._root: dict[str, Any] | None = None  # the trie, built on first fuzzy prefix
        self._counts: dict[str, int] = {}
        self._sorted: list[str] = []
        self._dirty = False
        self._by_id: list[str] = []
        self._keys: np.ndarray | None = None
        self._ids: np.ndarray | None = None
        # deletion variants of words added since the sorted arrays were built: a live
        # catalogue adds a few words per write, which must not re-hash every word
        self._delta: dict[int, list[int]] = {}
        self._delta_size = 0
        self.add(words)

    def __len__(self) -> int:
        return len(self._counts)

    def __contains__(self, word: object) -> bool:
        return word in self._counts

    def count(self, word: str) -> int:
        """How often `word` was added (0 if never)."""
        return self._counts.get(word, 0)

    @property
    def counts(self) -> dict[str, int]:
        """Word -> count (a copy)."""
        return dict(self._counts)

    def add(self, words: Mapping[str, int] | Iterable[str], count: int = 1) -> None:
        """Add words (a mapping gives each word's count; an iterable adds `count` each)."""
        items = words.items() if isinstance(words, Mapping) else ((w, count) for w in words)
        new: list[str] = []
        for word, c in items:
            if not word:
                continue
            if word not in self._counts:
                self._counts[word] = 0
                new.append(word)
            self._counts[word] += int(c)
        if not new:
            return
        if self._root is not None:
            for word in new:
                self._insert(self._root, word)
        if self._dirty or len(new) > _INSORT_MAX:
            self._dirty = True  # sorted again on the next prefix lookup
        else:  # a few words (one item's): keep the sorted list sorted
            for word in new:
                bisect.insort(self._sorted, word)

    @staticmethod
    def _insert(root: dict[str, Any], word: str) -> None:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[_END] = word

    def _trie(self) -> dict[str, Any]:
        """The character trie of every word (built on first use)."""
        if self._root is None:
            root: dict[str, Any] = {}
            for word in self._counts:
                self._insert(root, word)
            self._root = root
        return self._root

    def _words(self) -> list[str]:
        if self._dirty:
            self._sorted = sorted(self._counts)
            self._dirty = False
        return self._sorted

    # -- edit distance -------------------------------------------------------------------

    def lookup(self, term: str, distance: int | None = None) -> list[tuple[str, int]]:
        """Words within `distance` edits of `term` (default `max_distance(term)`), as
        (word, distance) sorted by distance, then count (descending), then word.

        Symmetric-delete search (Garbe's SymSpell): every word's deletion variants are
        hashed into one sorted array once; a lookup hashes the term's own variants, finds
        the candidates by binary search and verifies each with `osa_distance`. Words under
        6 characters are indexed up to distance 1 (a term that may have 2 typos has at
        least 8 characters, so it cannot match them anyway).
        """
        limit = max_distance(term) if distance is None else distance
        if limit == 0 or not term:
            return [(term, 0)] if term in self._counts else []
        keys, ids = self._deletion_index()
        hashes = np.fromiter((_key(v) for v in _deletes(term, limit)), np.uint32)
        lo = np.searchsorted(keys, hashes, side="left")
        hi = np.searchsorted(keys, hashes, side="right")
        cand = {int(i) for a, b in zip(lo.tolist(), hi.tolist(), strict=True) for i in ids[a:b]}
        if self._delta:
            for h in hashes.tolist():
                cand.update(self._delta.get(h, ()))
        found: dict[str, int] = {}
        n = len(term)
        for i in cand:
            word = self._by_id[i]
            if abs(len(word) - n) <= limit:
                dist = osa_distance(term, word)
                if dist <= limit:
                    found[word] = dist
        return sorted(found.items(), key=lambda x: (x[1], -self._counts[x[0]], x[0]))

    def prepare(self) -> None:
        """Build the lookup structures now rather than on the first lookup."""
        self._deletion_index()
        self._words()

    def state(self) -> tuple[dict[str, int], dict[str, np.ndarray]]:
        """(word -> count in word-id order, the deletion index's sorted arrays `keys` and
        `ids`): what `from_state` reads back. Words held aside since the last build are
        folded in first."""
        if self._delta or len(self._by_id) < len(self._counts):
            self._keys = None
        keys, ids = self._deletion_index()
        return {w: self._counts[w] for w in self._by_id}, {"keys": keys, "ids": ids}

    @classmethod
    def from_state(cls, words: Mapping[str, int], arrays: Mapping[str, np.ndarray]) -> TypoIndex:
        """The index `state` described (the arrays may be read-only, e.g. memory-mapped:
        they are replaced, never written, when words are added)."""
        keys, ids = arrays["keys"], arrays["ids"]  # a memory map stays one
        if keys.dtype != np.uint32 or ids.shape != keys.shape:
            raise ValueError(
                f"typo index arrays: expected uint32 keys and ids of the same length, got "
                f"{keys.dtype} {keys.shape} and {ids.dtype} {ids.shape}"
            )
        if ids.size and int(ids.max()) >= len(words):
            raise ValueError(f"typo index arrays name word {int(ids.max())} of {len(words)}")
        index = cls()
        index._counts = {str(w): int(c) for w, c in words.items()}
        index._by_id = list(index._counts)
        index._keys, index._ids = keys, ids
        index._dirty = True
        return index

    def _deletion_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted variant hashes, word ids) of the words indexed at the last build; words
        added since go into `_delta` (hash -> word ids) until it outgrows a fraction of
        the sorted arrays, then everything is rebuilt."""
        if self._keys is not None and len(self._by_id) < len(self._counts):
            start = len(self._by_id)
            # dicts keep insertion order: the words added since are the last ones
            for i, word in enumerate(list(self._counts)[start:], start=start):
                self._by_id.append(word)
                for v in _deletes(word, _depth(word)):
                    self._delta.setdefault(_key(v), []).append(i)
                    self._delta_size += 1
            if self._delta_size > max(_DELTA_MIN, _DELTA_SHARE * self._keys.size):
                self._keys = None
        if self._keys is None:
            hashes: list[int] = []
            owners: list[int] = []
            self._by_id = list(self._counts)
            for i, word in enumerate(self._by_id):
                variants = _deletes(word, _depth(word))
                hashes.extend(_key(v) for v in variants)
                owners.extend([i] * len(variants))
            keys = np.asarray(hashes, np.uint32)
            order = np.argsort(keys, kind="stable")
            self._keys, self._ids = keys[order], np.asarray(owners, np.int32)[order]
            self._delta, self._delta_size = {}, 0
        assert self._ids is not None
        return self._keys, self._ids

    def _walk(
        self,
        node: dict[str, Any],
        ch: str,
        prev_ch: str,
        row: list[int],
        prev_row: list[int] | None,
        term: str,
        limit: int,
        found: dict[str, int],
        prefix: bool,
        path: str = "",
    ) -> None:
        path = path + ch
        cur = [row[0] + 1]
        for j in range(1, len(term) + 1):
            v = min(cur[j - 1] + 1, row[j] + 1, row[j - 1] + (term[j - 1] != ch))
            if (
                prev_row is not None
                and j > 1
                and term[j - 1] == prev_ch
                and term[j - 2] == ch
                and prev_row[j - 2] + 1 < v
            ):
                v = prev_row[j - 2] + 1
            cur.append(v)
        if prefix:
            if cur[-1] <= limit:
                best = found.get(path)
                if best is None or cur[-1] < best:
                    found[path] = cur[-1]
                return  # every word below shares this prefix
        elif cur[-1] <= limit and _END in node:
            word = node[_END]
            if word not in found or cur[-1] < found[word]:
                found[word] = cur[-1]
        # a swap can bring the next row back under the limit from this row's parent
        if min(cur) <= limit or min(row) + 1 <= limit:
            for nch, child in node.items():
                if nch != _END:
                    self._walk(child, nch, ch, cur, row, term, limit, found, prefix, path)

    # -- prefixes ------------------------------------------------------------------------

    def _range(self, prefix: str) -> tuple[int, int]:
        words = self._words()
        lo = bisect.bisect_left(words, prefix)
        hi = bisect.bisect_left(words, prefix + "\U0010ffff")
        return lo, hi

    def complete(self, prefix: str, limit: int = 20, fuzzy: bool = False) -> list[tuple[str, int]]:
        """Words starting with `prefix` as (word, distance), most frequent first.

        With `fuzzy`, words starting with anything within `max_distance(prefix)` edits of
        `prefix` count too (distance 1 or 2), after the exact completions.
        """
        if not prefix or limit <= 0:
            return []
        words = self._words()
        found: dict[str, int] = {}
        lo, hi = self._range(prefix)
        for w in words[lo:hi]:
            found[w] = 0
        if fuzzy and max_distance(prefix) > 0:
            stems: dict[str, int] = {}
            first = list(range(len(prefix) + 1))
            for ch, child in self._trie().items():
                if ch != _END:
                    self._walk(
                        child, ch, "", first, None, prefix, max_distance(prefix), stems, True
                    )
            for stem, dist in stems.items():
                s_lo, s_hi = self._range(stem)
                for w in words[s_lo:s_hi]:
                    if w not in found or dist < found[w]:
                        found[w] = dist
        ranked = sorted(found.items(), key=lambda x: (x[1], -self._counts[x[0]], x[0]))
        return ranked[:limit]
