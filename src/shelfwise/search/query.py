"""Query understanding: analysis, typo correction, prefix expansion and synonyms.

`QueryParser.parse(text)` turns what the shopper typed into BM25 *groups* (see
`bm25.Group`): one group per query word, holding the alternatives that may match it.

* **Exact**: the word's index term, weight 1.
* **Typos**: a word of 4+ characters that the catalog does not know is looked up in the
  catalog's words within 1 edit (2 from 8 characters); the closest words become
  alternatives (`typo_weights` by distance) and are reported as corrections.
* **Prefix**: the last word, when the query does not end in a space, also matches the
  catalog's words that start with it (the most frequent `prefix_expansions`), at
  `prefix_weight`; "wireless head" finds "headphones".
* **Synonyms**: rules from the synonyms file (`synonyms.Synonyms`), matched on the
  corrected terms; a multi-word phrase becomes one group whose alternatives are the phrase
  and its synonyms.

A document's score for a group is its best alternative, so variants never add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shelfwise.search.analysis import has_cjk
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.synonyms import Synonyms
from shelfwise.search.typo import TypoIndex, max_distance

__all__ = ["ParsedQuery", "QueryOptions", "QueryParser"]


@dataclass(frozen=True)
class QueryOptions:
    """Knobs of query understanding (see `SearchConfig`)."""

    typo: bool = True
    typo_one_from: int = 4
    typo_two_from: int = 8
    typo_weights: tuple[float, float] = (0.7, 0.5)
    typo_candidates: int = 3
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

    def info(self) -> dict[str, Any]:
        """JSON-able summary for `SearchResponse.query_info`."""
        return {
            "query": self.text,
            "tokens": self.tokens,
            "corrected": self.corrected,
            "expanded": self.expanded,
            "synonyms": self.synonyms,
            "unknown": self.unknown,
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
    ) -> tuple[list[list[tuple[int, float]]], str | None]:
        """(alternatives, best term) for one word."""
        o = self.options
        vocab = self.index.vocab
        alts: dict[int, float] = {}
        best: str | None = None
        if term in vocab:
            alts[vocab[term]] = 1.0
            best = term
        wordy = surface.isalpha() and not has_cjk(surface)
        if not alts and o.typo and wordy and self._typo_limit(surface) > 0:
            found = self.words.lookup(surface, self._typo_limit(surface))
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
        if last and o.prefix and wordy and len(surface) >= o.prefix_min_chars:
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
        return [[(t, w)] for t, w in alts.items()], best

    def parse(self, text: str) -> ParsedQuery:
        """Groups and a report of corrections, expansions and synonyms for `text`."""
        analyzer = self.index.analyzer
        parsed = ParsedQuery(text=text)
        pairs = analyzer.pairs(text)
        parsed.tokens = [s for s, _ in pairs]
        typing_last = bool(text) and not text[-1].isspace()
        per_word: list[list[list[tuple[int, float]]]] = []
        best_terms: list[str | None] = []
        for i, (surface, term) in enumerate(pairs):
            last = typing_last and i == len(pairs) - 1
            alts, best = self._alternatives(surface, term, last, parsed)
            per_word.append(alts)
            best_terms.append(best)
            if not alts:
                parsed.unknown.append(surface)
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
        w = self.options.synonym_weight
        for m in matches:
            syn_alts: list[list[tuple[int, float]]] = []
            for phrase in m.alternatives:
                if all(t in vocab for t in phrase):
                    syn_alts.append([(vocab[t], w) for t in phrase])
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
        i = 0
        while i < len(pairs):
            if i in replaced:
                end, group, label = replaced[i]
                parsed.groups.append(group)
                parsed.labels.append(label)
                i = end
                continue
            if per_word[i]:
                parsed.groups.append(per_word[i])
                parsed.labels.append(parsed.tokens[i])
            i += 1
        return parsed
