"""The live catalogue: the bundle's items plus those added since, as immutable snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.data.schemas import CATEGORY_SEPARATOR
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import UnknownIdError


@dataclass(frozen=True)
class Catalog:
    """The live catalogue: the bundle's items plus items added since, as column arrays.

    Immutable: a catalogue change builds a new snapshot (`with_items`, `with_alive`) and the
    engine swaps the reference, so readers on other threads always see a consistent one.
    `revision` grows by one with every change, so a cache keyed by it (the search
    re-ranker's, say) knows when to drop what it holds.
    """

    frame: pd.DataFrame
    vocab: Vocabulary
    alive: np.ndarray  # titled and not deleted: searchable, has a product page
    servable: np.ndarray  # alive and in stock: recommendable
    item_id: np.ndarray
    title: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    revision: int = 0
    category_masks: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    @classmethod
    def build(
        cls, frame: pd.DataFrame, alive: np.ndarray | None = None, revision: int = 0
    ) -> Catalog:
        """A snapshot of `frame` (one row per item); `alive` marks the rows not deleted
        (default: all)."""
        frame = frame.reset_index(drop=True)
        titles = frame["title"].to_numpy(dtype=object)
        live = np.asarray(pd.notna(titles), dtype=bool)
        if alive is not None:
            live &= alive
        ok = live.copy()
        if "in_stock" in frame.columns:
            ok &= frame["in_stock"].fillna(True).to_numpy(dtype=bool)

        def text(column: str) -> np.ndarray:
            values = frame[column].to_numpy(dtype=object) if column in frame else None
            if values is None:
                return np.full(len(frame), "", dtype=object)
            return np.where(pd.isna(values), "", values).astype(object)

        price = (
            pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=np.float64)
            if "price" in frame.columns
            else np.full(len(frame), np.nan)
        )
        return cls(
            frame=frame,
            vocab=Vocabulary(frame["item_id"].astype(str).tolist(), name="item_id"),
            alive=live,
            servable=np.asarray(ok, dtype=bool),
            item_id=frame["item_id"].astype(str).to_numpy(dtype=object),
            title=titles,
            category=text("category"),
            brand=text("brand"),
            price=price,
            revision=revision,
        )

    def __len__(self) -> int:
        return len(self.item_id)

    # -- lookups --------------------------------------------------------------------------------
    def index(self, item_id: str) -> int | None:
        """The index of an item id (alive or not), or None."""
        try:  # one hash lookup; `encode` of a one-id list costs tens of microseconds
            return self.vocab.index(item_id)
        except UnknownIdError:
            return None

    def known_item(self, item_id: str) -> int:
        """The index of an alive item; `UnknownIdError` otherwise."""
        idx = self.index(item_id)
        if idx is None or not self.alive[idx]:
            raise UnknownIdError(f"no item with item_id '{item_id}' in the catalog")
        return idx

    def in_category(self, category: str) -> np.ndarray:
        """Mask of the items in `category` or below it (cached per category; read-only)."""
        mask = self.category_masks.get(category)
        if mask is None:
            index = self.category_masks.get("\x00index")
            if index is None:  # category codes per item, and the codes under each path
                codes, names = pd.factorize(pd.Series(self.category, dtype=object))
                under: dict[str, list[int]] = {}
                for code, name in enumerate(names.tolist()):
                    parts = str(name).split(CATEGORY_SEPARATOR)
                    for depth in range(1, len(parts) + 1):
                        under.setdefault(CATEGORY_SEPARATOR.join(parts[:depth]), []).append(code)
                index = np.asarray(codes, dtype=np.int64)
                self.category_masks["\x00index"] = index
                self.category_masks.update(
                    {f"\x00codes:{k}": np.asarray(v, dtype=np.int64) for k, v in under.items()}
                )
            wanted = self.category_masks.get(f"\x00codes:{category}")
            if wanted is None:
                mask = np.zeros(len(self.category), dtype=bool)
            else:
                mask = np.isin(index, wanted)
            mask.flags.writeable = False
            if len(self.category_masks) < 100_000:
                self.category_masks[category] = mask
        return mask

    def describe(self, idx: int, score: float, source: str) -> dict[str, Any]:
        """One answer row: the item's id, title, category, brand, price, score and the
        fallback step (`source`) that produced it."""
        price = self.price[idx]
        return {
            "item_id": self.item_id[idx],
            "title": self.title[idx],
            "category": self.category[idx] or None,
            "brand": self.brand[idx] or None,
            "price": None if np.isnan(price) else float(price),
            "score": round(float(score), 6),
            "source": source,
        }

    # -- changes: each returns a new snapshot, one revision on ---------------------------------
    def with_alive(self, alive: np.ndarray) -> Catalog:
        """The same rows with another alive mask (items deleted or restored)."""
        return Catalog.build(self.frame, alive, self.revision + 1)

    def with_items(self, items: pd.DataFrame) -> tuple[Catalog, pd.DataFrame]:
        """Upsert catalogue rows: known items get the new fields (and are alive again), new
        ones are appended with the next indices. Returns (the new snapshot, the new rows in
        index order)."""
        frame = items.drop_duplicates("item_id", keep="last").reset_index(drop=True)
        ids = frame["item_id"].astype(str)
        known = self.vocab.encode(ids.tolist(), unknown="minus_one") >= 0
        merged = self.frame.copy()
        alive = self.alive.copy()
        if known.any():
            changed = frame[known].set_index("item_id")
            positions = self.vocab.encode(changed.index.to_numpy(), unknown="minus_one")
            for column in changed.columns.intersection(merged.columns):
                merged.loc[positions, column] = changed[column].to_numpy()
            alive[positions] = True
        new = frame[~known].reset_index(drop=True)
        if len(new):
            merged = pd.concat([merged, new], ignore_index=True)
            alive = np.concatenate([alive, np.ones(len(new), dtype=bool)])
        return Catalog.build(merged, alive, self.revision + 1), new

    def differing(self, stored: pd.DataFrame) -> pd.DataFrame:
        """The rows of `stored` that are new or differ from the alive items."""
        if stored.empty:
            return stored
        columns = [c for c in stored.columns if c != "created_at" and c in self.frame.columns]
        current = self.frame.loc[self.alive, columns]
        merged = stored.merge(
            current, on="item_id", how="left", suffixes=("", "_live"), indicator=True
        )
        differs = (merged["_merge"] == "left_only").to_numpy().copy()
        for column in columns:
            if column == "item_id":
                continue
            a, b = merged[column], merged[f"{column}_live"]
            differs |= np.asarray((a != b) & ~(a.isna() & b.isna()), dtype=bool)
        return stored[differs]
