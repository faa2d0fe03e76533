"""Writing and reading a `SearchService` (`SearchService.save` / `SearchService.load`).

A saved service is a directory without pickle:

* `bm25/`: the lexical index (`BM25Index.save`, which also keeps the analyzer);
* `items.parquet`: the catalogue in the canonical item columns, row i = item row i;
* `state.npz`: the popularity of every row;
* `autocomplete.json`: the suggestions with their counts;
* `typo.json`, `typo_keys.npy`, `typo_ids.npy`: the typo index's words with their counts
  and its sorted deletion-variant hashes (`TypoIndex.state`);
* `filters.json`, `filters.npz`: the filter index's labels and row-aligned arrays
  (`FilterIndex.state`);
* `service.json`: the format number, the `SearchConfig`, the synonyms and the components
  (dense retriever, fusion, re-ranker) as `module:qualname` of classes with `save` / `load`,
  each saved into a directory of its name. Only `shelfwise.` classes are loaded back.

Loading is what a one-shot caller (`shelfwise search`) pays on every call, so nothing is
rebuilt that can be read: the typo arrays are memory-mapped, the filter index is read as
arrays, the suggestions file is read but only turned into an `Autocomplete` when
autocomplete or a catalogue change first needs it, and of the items file only the result
columns are read (with pyarrow, no pandas) until the catalogue frame is first needed
(`SearchService.items`: a catalogue change, dense retrieval, a rebuild). A format-1
directory (before the typo and filter files) still loads; its typo and filter indexes are
rebuilt as before.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shelfwise.errors import ConfigError, NotFittedError
from shelfwise.search.autocomplete import Autocomplete
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.config import SearchConfig
from shelfwise.search.filters import FilterIndex
from shelfwise.search.synonyms import Synonyms
from shelfwise.search.typo import TypoIndex

if TYPE_CHECKING:
    import pandas as pd

    from shelfwise.search.service import SearchService

__all__ = ["FORMAT", "READS", "load_service", "save_service"]

FORMAT = 2
"""The layout version in `service.json`; `READS` are the versions `load_service` reads."""
READS = (1, 2)


def save_service(service: SearchService, directory: Path) -> None:
    """Write `service` into `directory` (the caller holds the service's lock)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    service.index.save(directory / "bm25")
    service.items.reset_index(drop=True).to_parquet(directory / "items.parquet", index=False)
    np.savez(directory / "state.npz", popularity=service.popularity)
    (directory / "autocomplete.json").write_text(
        json.dumps(service.suggestions.to_dict(), ensure_ascii=False)
    )
    words, typo_arrays = service.words.state()
    (directory / "typo.json").write_text(json.dumps(words, ensure_ascii=False))
    for name, arr in typo_arrays.items():
        np.save(directory / f"typo_{name}.npy", arr, allow_pickle=False)
    labels, filter_arrays = service.filters.state()
    (directory / "filters.json").write_text(json.dumps(labels, ensure_ascii=False))
    np.savez(directory / "filters.npz", **filter_arrays)  # type: ignore[arg-type]
    components: dict[str, str] = {}
    for name in ("dense", "fusion", "reranker"):
        obj = getattr(service, name)
        if obj is not None and hasattr(obj, "save") and hasattr(type(obj), "load"):
            obj.save(directory / name)
            components[name] = f"{type(obj).__module__}:{type(obj).__qualname__}"
    meta = {
        "format": FORMAT,
        "config": service.config.model_dump(mode="json"),
        "synonyms": service.synonyms.to_dict(),
        "components": components,
    }
    (directory / "service.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))


def load_service(cls: type[SearchService], directory: Path) -> SearchService:
    """A `cls` read from a directory written by `save_service` (components are re-created
    by their class)."""
    directory = Path(directory)
    meta_path = directory / "service.json"
    if not meta_path.exists():
        raise NotFittedError(f"no search service in {directory} (service.json is missing)")
    meta = json.loads(meta_path.read_text())
    version = meta.get("format")
    if version not in READS:
        raise ConfigError(
            f"{meta_path}: format {version} is not one of {', '.join(map(str, READS))}; "
            "rebuild the bundle (`shelfwise build --rebuild`)"
        )
    config = SearchConfig(**meta["config"]).model_copy(update={"synonyms_file": None})
    service = cls(config)
    service.synonyms = Synonyms.from_dict(meta.get("synonyms", {}))
    service.index = BM25Index.load(directory / "bm25")
    service.analyzer = service.index.analyzer
    items_path = directory / "items.parquet"
    if version == 1:
        service.items = _read_items(items_path)
        ids = service.items["item_id"].tolist()
    else:
        # the result fields straight from the file; the frame (pandas) when first needed
        service._view = _read_result_columns(items_path)
        service.defer_items(lambda: _read_items(items_path))
        ids = service._view["item_id"].tolist()
    service.id_to_row = {i: r for r, i in enumerate(ids)}
    with np.load(directory / "state.npz", allow_pickle=False) as state:
        service.popularity = state["popularity"].astype(np.float64)
    if version == 1:
        service.words = TypoIndex(dict(service.index.surface_count))
        service.filters = FilterIndex.build(service.items)
    else:
        service.words = _load_typo(directory)
        service.filters = _load_filters(directory, len(ids))
    raw = (directory / "autocomplete.json").read_bytes()
    service.defer_suggestions(lambda: Autocomplete.from_dict(json.loads(raw)))
    for name, path in meta.get("components", {}).items():
        module, _, qualname = path.partition(":")
        if not module.startswith("shelfwise."):
            raise ConfigError(f"{meta_path}: component {name} comes from {module}")
        cls_obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls_obj = getattr(cls_obj, part)
        setattr(service, name, cls_obj.load(directory / name))
    service._built = True
    return service


THREADED_READ_BYTES = 32 * 2**20
"""Item files above this size are read by pyarrow's thread pool; smaller ones on the calling
thread, which for a 12k-product file (1 MB) costs 0.02 s of CPU instead of 0.17 s (starting
the pool on a busy machine took 1.2 s of wall time: `benchmarks/cli_search.py`)."""


def _read_items(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path, use_threads=path.stat().st_size > THREADED_READ_BYTES)


def _read_result_columns(path: Path) -> dict[str, np.ndarray]:
    """`catalog.result_columns` of the items file, read with pyarrow alone (no pandas):
    the same values and types as from `pd.read_parquet` (a missing text is NaN, as pandas'
    `str` columns give it; a missing `in_stock` False), writable arrays of their own."""
    import pyarrow.parquet as pq

    names = ("item_id", "title", "brand", "category", "price", "in_stock")
    threads = path.stat().st_size > THREADED_READ_BYTES
    # `ParquetFile.read`, not `read_table`: that one imports `pyarrow.dataset`, whose
    # Cython module imports pandas
    with pq.ParquetFile(path) as file:
        table = file.read(columns=list(names), use_threads=threads)
    n = table.num_rows
    out: dict[str, np.ndarray] = {}
    nan = float("nan")
    for name in ("item_id", "title", "brand", "category"):
        values = table.column(name).to_pylist()
        arr = np.empty(n, dtype=object)
        if name == "item_id":
            arr[:] = [str(v) for v in values]
        else:
            arr[:] = [nan if v is None else v for v in values]
        out[name] = arr
    # from Python values: `ChunkedArray.to_numpy` imports pandas
    price = table.column("price").to_pylist()
    out["price"] = np.array([nan if v is None else v for v in price], dtype=np.float64)
    stock = table.column("in_stock").to_pylist()
    out["in_stock"] = np.fromiter((bool(v) for v in stock), dtype=bool, count=n)
    return out


def _load_typo(directory: Path) -> TypoIndex:
    words = json.loads((directory / "typo.json").read_text())
    arrays = {
        name: np.load(directory / f"typo_{name}.npy", mmap_mode="r", allow_pickle=False)
        for name in ("keys", "ids")
    }
    try:
        return TypoIndex.from_state(words, arrays)
    except ValueError as exc:
        raise ConfigError(f"{directory}: {exc}; rebuild the bundle") from exc


def _load_filters(directory: Path, n_rows: int) -> FilterIndex:
    labels = json.loads((directory / "filters.json").read_text())
    with np.load(directory / "filters.npz", allow_pickle=False) as arrays:
        try:
            index = FilterIndex.from_state(labels, arrays)
        except ValueError as exc:
            raise ConfigError(f"{directory}: {exc}; rebuild the bundle") from exc
    if index.n_rows != n_rows:
        raise ConfigError(
            f"{directory}: the filter index has {index.n_rows} rows, the items {n_rows}; "
            "rebuild the bundle"
        )
    return index
