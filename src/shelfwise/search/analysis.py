"""Text analysis: Unicode normalisation, lower-casing, tokenising, stop words, stemming.

Numbers and units stay tokens of their own kind: "500ml" is one token and so is "65";
"65 inch" becomes ["65", "inch"]. Stemming is Snowball English (PyStemmer).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

ENGLISH_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
        "without",
    ]
)
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?[a-z]*|[^\W\d_]+", re.UNICODE)


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(language)


class Analyzer:
    """Turns text into index terms; the same analyzer must serve indexing and querying."""

    def __init__(self, stem: bool = True, stop_words: frozenset[str] = ENGLISH_STOP_WORDS):
        self.stem = stem
        self.stop_words = stop_words
        self._cache: dict[str, str] = {}

    def normalise(self, text: str) -> str:
        """NFKC-normalise, lower-case and strip accents."""
        text = unicodedata.normalize("NFKC", text).lower()
        decomposed = unicodedata.normalize("NFD", text)
        return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")

    def tokens(self, text: str) -> list[str]:
        """Raw tokens (normalised, stop words removed, not stemmed)."""
        return [
            t.replace(",", ".")
            for t in _TOKEN.findall(self.normalise(text))
            if t not in self.stop_words
        ]

    def terms(self, text: str) -> list[str]:
        """Index terms: tokens, stemmed."""
        toks = self.tokens(text)
        if not self.stem:
            return toks
        out = []
        stemmer = _stemmer("english")
        for tok in toks:
            stemmed = self._cache.get(tok)
            if stemmed is None:
                stemmed = tok if tok[0].isdigit() else stemmer.stemWord(tok)
                if len(self._cache) < 200_000:
                    self._cache[tok] = stemmed
            out.append(stemmed)
        return out
