"""Query understanding: analysis, typo correction, prefix expansion and synonyms.

`QueryParser.parse(text)` turns what the shopper typed into BM25 *groups* (see
`bm25.Group`): one group per query word, holding the alternatives that may match it.

* **Exact**: the word's index term, weight 1.
* **Typos**: only a word the catalog does not know is corrected: from 5 characters it is
  looked up in the catalog's words within 1 edit (2 from 9 characters); the closest words
  become alternatives (`typo_weights` by distance) and are reported as corrections, unless
  another word is unknown too and no word is known as typed: then the corrections are only
  suggested (`suggested`), as "air fryer" is no "dryer" in a shop without air fryers. A known
  word is never replaced; a *rare* known word (seen at most `rare_word_count` times) also
  matches a neighbour 1 edit away that is `rare_word_ratio` times more frequent and shares
  products with the rest of the query (reported in `also_matched`; the word as typed keeps
  weight 1).
* **Prefix**: the last word, when the query does not end in a space and the word is not a
  complete catalog word, also matches the catalog's words that start with it (the most
  frequent `prefix_expansions`), at `prefix_weight` (below an exact match); "wireless
  headph" finds "headphones", "shampoo" does not match "shampoo12".
* **Split and joined forms**: two neighbouring words whose concatenation is a catalog word
  become one group that also matches the joined word at `split_join_weight` ("eye liner"
  finds "eyeliner", reported in `joined`); a word that splits into two catalog words of
  `split_min_chars`+ characters also matches products whose title holds the two parts as
  neighbours ("lipstick" finds "lip stick", reported in `split`), each part at half the
  weight so that the split form scores below the word as typed.
* **Synonyms**: rules from the synonyms file (`synonyms.Synonyms`), matched on the
  corrected terms; a multi-word phrase becomes one group whose alternatives are the phrase
  and its synonyms.

A document's score for a group is its best alternative, so variants never add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shelfwise.search.analysis import has_cjk
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.synonyms import Synonyms
from shelfwise.search.typo import TypoIndex, max_distance

__all__ = ["ParsedQuery", "QueryOptions", "QueryParser"]


@dataclass(frozen=True)
class QueryOptions:
    """Knobs of query understanding (see `SearchConfig`)."""

    typo: bool = True
    typo_one_from: int = 5
    typo_two_from: int = 9
    typo_weights: tuple[float, float] = (0.7, 0.5)
    typo_candidates: int = 3
    rare_word_count: int = 2
    rare_word_ratio: float = 20.0
    split_join: bool = True
    split_join_weight: float = 0.9
    split_min_chars: int = 3
    prefix: bool = True
    prefix_min_chars: int = 2
    prefix_expansions: int = 20
    prefix_weight: float = 0.8
    synonym_weight: float = 1.0


@dataclass
class ParsedQuery:
    """A parsed query: the groups to score and what was done to the words."""

    text: str
    tokens: list[str] = field(default_factory=list)
    groups: list[list[list[tuple[int, float]]]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    """A readable label per group (the word, or the phrase a synonym matched)."""
    corrected: dict[str, str] = field(default_factory=dict)
    expanded: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    also_matched: dict[str, str] = field(default_factory=dict)
    """Rare known words -> the more frequent neighbour they also match."""
    suggested: dict[str, str] = field(default_factory=dict)
    """Corrections not applied (see `QueryParser.parse`), offered as suggestions."""
    joined: dict[str, str] = field(default_factory=dict)
    """Neighbouring words ("eye liner") -> the joined catalog word they also match."""
    split: dict[str, str] = field(default_factory=dict)
    """A word ("lipstick") -> the two catalog words ("lip stick") it also matches."""
    split_groups: list[tuple[int, int, int]] = field(default_factory=list)
    """(group index, first part's term id, second part's term id) of every split form: a
    product matched only through one must hold the parts as neighbours in its title."""

    def info(self) -> dict[str, Any]:
        """JSON-able summary for `SearchResponse.query_info`."""
        return {
            "query": self.text,
            "tokens": self.tokens,
            "corrected": self.corrected,
            "expanded": self.expanded,
            "synonyms": self.synonyms,
            "unknown": self.unknown,
            "also_matched": self.also_matched,
            "suggested": self.suggested,
            "joined": self.joined,
            "split": self.split,
        }


class QueryParser:
    """Parses queries against one BM25 index, its word list and the synonym rules."""

    def __init__(
        self,
        index: BM25Index,
        words: TypoIndex,
        synonyms: Synonyms | None = None,
        options: QueryOptions | None = None,
    ) -> None:
        self.index = index
        self.words = words
        self.synonyms = synonyms or Synonyms()
        self.options = options or QueryOptions()

    def _typo_limit(self, token: str) -> int:
        o = self.options
        return max_distance(token, o.typo_one_from, o.typo_two_from)

    def _alternatives(
        self, surface: str, term: str, last: bool, parsed: ParsedQuery
    ) -> tuple[list[list[tuple[int, float]]], str | None, str | None]:
        """(alternatives, best term, a rare word's frequent neighbour) for one word."""
        o = self.options
        vocab = self.index.vocab
        alts: dict[int, float] = {}
        best: str | None = None
        neighbour: str | None = None
        if term in vocab:
            alts[vocab[term]] = 1.0
            best = term
        wordy = surface.isalpha() and not has_cjk(surface)
        limit = self._typo_limit(surface)
        if not alts and o.typo and wordy and limit > 0:
            found = self.words.lookup(surface, limit)
            found = [(w, d) for w, d in found if d > 0][: o.typo_candidates]
            if found:
                nearest = found[0][1]
                for w, d in found:
                    t = self.index.surface_term.get(w, w)
                    if t in vocab and d <= nearest:
                        weight = o.typo_weights[min(d, 2) - 1]
                        alts[vocab[t]] = max(alts.get(vocab[t], 0.0), weight)
                        if best is None:
                            best = t
                            parsed.corrected[surface] = w
        elif alts and o.typo and wordy and limit > 0 and o.rare_word_count > 0:
            seen = self.words.count(surface)
            if 0 < seen <= o.rare_word_count:
                for w, d in self.words.lookup(surface, 1):
                    t = self.index.surface_term.get(w, w)
                    if d == 1 and t != term and t in vocab:
                        if self.words.count(w) >= o.rare_word_ratio * seen:
                            neighbour = w
                        break  # most frequent first: only the nearest, commonest one
        # a complete catalog word is not a prefix ("shampoo" does not match "shampoo12")
        complete_word = surface in self.words
        if last and o.prefix and wordy and len(surface) >= o.prefix_min_chars and not complete_word:
            completions = self.words.complete(surface, limit=o.prefix_expansions + 1)
            added = []
            for w, _ in completions:
                if w == surface:
                    continue
                t = self.index.surface_term.get(w, w)
                if t in vocab and vocab[t] not in alts:
                    alts[vocab[t]] = o.prefix_weight
                    added.append(w)
                    if best is None:
                        best = t
            if added:
                parsed.expanded[surface] = added[: o.prefix_expansions]
        return [[(t, w)] for t, w in alts.items()], best, neighbour

    def _fits(self, term: str, others: list[str | None]) -> bool:
        """Whether some product holds `term` and every one of the other query terms."""
        vocab = self.index.vocab
        rows = np.unique(self.index.postings(vocab[term])[0])
        for other in others:
            if rows.size == 0:
                break
            if other is not None and other in vocab:
                rows = np.intersect1d(rows, self.index.postings(vocab[other])[0])
        return bool(rows.size)

    def _split(self, surface: str) -> tuple[str, str] | None:
        """The best split of `surface` into two catalog words (both parts as frequent as
        possible), or None."""
        m = self.options.split_min_chars
        best: tuple[int, str, str] | None = None
        for k in range(m, len(surface) - m + 1):
            a, b = surface[:k], surface[k:]
            seen = min(self.words.count(a), self.words.count(b))
            if seen > 0 and (best is None or seen > best[0]):
                best = (seen, a, b)
        return None if best is None else (best[1], best[2])

    def near_words(self, surface: str, k: int = 3) -> list[str]:
        """Catalog words close to `surface` (at least 1 edit even for short words), most
        frequent first: what to suggest for a word nothing matches."""
        limit = max(1, self._typo_limit(surface))
        return [w for w, d in self.words.lookup(surface, limit) if d > 0][:k]

    def parse(self, text: str) -> ParsedQuery:
        """Groups and a report of corrections, expansions and synonyms for `text`."""
        analyzer = self.index.analyzer
        o = self.options
        vocab = self.index.vocab
        parsed = ParsedQuery(text=text)
        pairs = analyzer.pairs(text)
        parsed.tokens = [s for s, _ in pairs]
        typing_last = bool(text) and not text[-1].isspace()
        per_word: list[list[list[tuple[int, float]]]] = []
        best_terms: list[str | None] = []
        neighbours: dict[int, str] = {}
        for i, (surface, term) in enumerate(pairs):
            last = typing_last and i == len(pairs) - 1
            alts, best, neighbour = self._alternatives(surface, term, last, parsed)
            per_word.append(alts)
            best_terms.append(best)
            if neighbour is not None:
                neighbours[i] = neighbour
            if not alts:
                parsed.unknown.append(surface)
        known_as_typed = [t in vocab for _, t in pairs]
        if parsed.unknown and parsed.corrected and not any(known_as_typed):
            # a word nothing matches and no word known as typed: the query is about
            # something the catalog lacks, so corrections alone do not answer it
            # ("air fryer" is not "dryer"); they are offered as suggestions instead
            for i, surface in enumerate(parsed.tokens):
                if surface in parsed.corrected:
                    parsed.suggested[surface] = parsed.corrected.pop(surface)
                    per_word[i] = []
                    parsed.unknown.append(surface)
            parsed.expanded.clear()
        for i, w in neighbours.items():
            t = self.index.surface_term.get(w, w)
            if self._fits(t, best_terms[:i] + best_terms[i + 1 :]):
                per_word[i].append([(vocab[t], o.typo_weights[0])])
                parsed.also_matched[parsed.tokens[i]] = w
        # synonyms: on the terms as typed, then on the corrected terms where nothing matched
        raw_terms = [t for _, t in pairs]
        matches = self.synonyms.match(raw_terms, analyzer)
        covered = {i for m in matches for i in range(m.start, m.end)}
        for m in self.synonyms.match([t or "" for t in best_terms], analyzer):
            if not covered.intersection(range(m.start, m.end)):
                matches.append(m)
        for m in matches:
            if m.end - m.start == 1 and raw_terms[m.start] == m.phrase[0]:
                i = m.start
                if raw_terms[i] not in self.index.vocab and per_word[i]:
                    # a synonym rule knows the word: typo guesses would only add noise
                    per_word[i] = []
                    parsed.corrected.pop(parsed.tokens[i], None)
        replaced: dict[int, tuple[int, list[list[tuple[int, float]]], str]] = {}
        vocab = self.index.vocab
        syn_w = self.options.synonym_weight
        for m in matches:
            syn_alts: list[list[tuple[int, float]]] = []
            for phrase in m.alternatives:
                if all(t in vocab for t in phrase):
                    syn_alts.append([(vocab[t], syn_w) for t in phrase])
            if not syn_alts:
                continue
            label = " ".join(parsed.tokens[m.start : m.end])
            parsed.synonyms[label] = [" ".join(p) for p in m.alternatives]
            if m.end - m.start == 1:
                group = list(per_word[m.start])
                known = {alt[0][0] for alt in group if len(alt) == 1}
                group += [a for a in syn_alts if not (len(a) == 1 and a[0][0] in known)]
            else:
                exact = [(vocab[t], 1.0) for t in m.phrase if t in vocab]
                group = ([exact] if exact else []) + syn_alts
            replaced[m.start] = (m.end, group, label)
        if o.split_join:
            self._split_join(pairs, per_word, best_terms, replaced, parsed)
        i = 0
        while i < len(pairs):
            if i in replaced:
                end, group, label = replaced[i]
                parsed.groups.append(group)
                parsed.labels.append(label)
                i = end
                continue
            if per_word[i]:
                for alt in per_word[i]:
                    if len(alt) == 2 and parsed.tokens[i] in parsed.split:
                        parsed.split_groups.append((len(parsed.groups), alt[0][0], alt[1][0]))
                parsed.groups.append(per_word[i])
                parsed.labels.append(parsed.tokens[i])
            i += 1
        return parsed

    def _split_join(
        self,
        pairs: list[tuple[str, str]],
        per_word: list[list[list[tuple[int, float]]]],
        best_terms: list[str | None],
        replaced: dict[int, tuple[int, list[list[tuple[int, float]]], str]],
        parsed: ParsedQuery,
    ) -> None:
        """Add joined forms of neighbouring words and split forms of single words (in
        place), where no synonym rule already covers the words."""
        vocab = self.index.vocab
        sw = self.options.split_join_weight
        covered = {j for st, (en, _, _) in replaced.items() for j in range(st, en)}
        tokens = parsed.tokens
        wordy = [s.isalpha() and not has_cjk(s) for s in tokens]
        i = 0
        while i < len(pairs):
            if i in covered or not wordy[i]:
                i += 1
                continue
            nxt = i + 1
            if nxt < len(pairs) and nxt not in covered and wordy[nxt]:
                joined = tokens[i] + tokens[nxt]
                jt = self.index.surface_term.get(joined)
                a, b = best_terms[i], best_terms[nxt]
                if joined in self.words and jt in vocab and a in vocab and b in vocab:
                    assert jt is not None and a is not None and b is not None
                    # the words as typed first, the joined word just below
                    group = [[(vocab[a], 1.0), (vocab[b], 1.0)], [(vocab[jt], sw)]]
                    label = f"{tokens[i]} {tokens[nxt]}"
                    replaced[i] = (nxt + 1, group, label)
                    parsed.joined[label] = joined
                    i = nxt + 1
                    continue
            parts = self._split(tokens[i])
            if parts is not None:
                ta = self.index.surface_term.get(parts[0])
                tb = self.index.surface_term.get(parts[1])
                if ta in vocab and tb in vocab and ta != tb:
                    assert ta is not None and tb is not None
                    # both parts must be there; together they score about as one word
                    per_word[i].append([(vocab[ta], sw / 2.0), (vocab[tb], sw / 2.0)])
                    parsed.split[tokens[i]] = f"{parts[0]} {parts[1]}"
                    if tokens[i] in parsed.unknown:
                        parsed.unknown.remove(tokens[i])
            i += 1
