"""The catalogue as text: the one home for search documents, attribute text and the item
texts that are embedded.

* `item_documents(items)`: the BM25F fields per row (`SEARCH_FIELDS`: title, brand,
  category, description, attributes), what `SearchService` indexes and the re-ranker's
  lexical features read;
* `attribute_dict(value)`: an item's attributes (JSON text, a dict or nothing) as a dict,
  tolerant of bad JSON (filters and numeric features read it);
* `attribute_text(value)`: the searchable words of the attributes, the string values only
  (numbers are features and filters, not words);
* `item_texts(items)`: one text per row for the sentence encoder (title and brand).

Row `i` of every list is row `i` of `items`. Nothing here imports faiss or torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "SEARCH_FIELDS",
    "attribute_dict",
    "attribute_text",
    "item_documents",
    "item_texts",
]

SEARCH_FIELDS: tuple[str, ...] = ("title", "brand", "category", "description", "attributes")
"""The fields of a search document, in index order."""


def attribute_dict(value: Any) -> dict[str, Any]:
    """Attributes as stored (JSON object text, a mapping, None/NaN) -> a dict; anything
    else (bad JSON, a JSON list, a number) -> {}."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def attribute_text(value: Any) -> str:
    """The searchable words of an item's attributes: the string values of a JSON object
    (or mapping), space-separated; text that is not JSON is taken as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return value
    if not isinstance(value, Mapping):
        return ""
    return " ".join(str(v) for v in value.values() if isinstance(v, str))


def _column(items: pd.DataFrame, name: str) -> list[str]:
    if name not in items:
        return [""] * len(items)
    return ["" if v is None or v != v else str(v) for v in items[name].tolist()]


def item_documents(items: pd.DataFrame) -> dict[str, list[str]]:
    """The text of each search field per row (see `SEARCH_FIELDS`); missing values are ""."""
    docs = {name: _column(items, name) for name in SEARCH_FIELDS if name != "attributes"}
    attrs = items["attributes"].tolist() if "attributes" in items else [None] * len(items)
    docs["attributes"] = [attribute_text(v) for v in attrs]
    return docs


def item_texts(items: pd.DataFrame) -> list[str]:
    """One text per catalogue row for embedding: the title and the brand, joined by a space.

    Chosen by measurement (`benchmarks/search_relevance.py`, beauty-search-dev): MiniLM over
    title + brand scores nDCG@10 0.762 where title, `by brand`, the category path and the
    start of the description scored 0.672; the category path and the description dilute
    the title, which says what the product is."""
    return [
        " ".join(p for p in (title, brand) if p)
        for title, brand in zip(_column(items, "title"), _column(items, "brand"), strict=True)
    ]
