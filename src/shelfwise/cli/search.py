"""`shelfwise search`: query the catalogue from the command line.

    shelfwise search "wireles headphnes" [--filter brand=Sonic --filter price=..100]
                     [--sort relevance|price_asc|price_desc|popularity|newest]
                     [--page 1] [--per-page 10] [--facets brand,category,price]
                     [--user U-00001] [--json] [--store URL] [--artifacts DIR]

Answers from the persisted search index of the registry's served bundle (`shelfwise build`
writes it), so a call costs start-up plus one query; when the store changed after the
bundle was built it still answers from the bundle and says so on stderr. Only when the
registry serves no bundle does it build a `SearchService` over the store's catalogue and
events in memory (seconds at 12k products). It prints one page of results, the corrections
it made and the facet counts. `--filter` takes the `key=value` syntax of
`shelfwise.search.filters`. `--user` passes the user's recent items to the search (used by a
learned re-ranker when one is set).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shelfwise.search.service import SearchService
    from shelfwise.store import Store

log = logging.getLogger("shelfwise.cli")


def format_response(body: dict[str, Any], facet_limit: int = 5) -> str:
    """A search answer as readable text."""
    info = body["query_info"]
    lines = [
        f"{body['total']} results for {info.get('query', '')!r}"
        f" (page {body['page']}, sort {body['sort']}, {info.get('took_ms', 0):.1f} ms)"
    ]
    for label, key in (
        ("corrected", "corrected"),
        ("expanded", "expanded"),
        ("synonyms", "synonyms"),
        ("dropped", "dropped"),
        ("unknown", "unknown"),
    ):
        value = info.get(key)
        if value:
            lines.append(f"  {label}: {json.dumps(value, ensure_ascii=False)}")
    start = (body["page"] - 1) * body["per_page"]
    for i, item in enumerate(body["items"], start=start + 1):
        price = "" if item["price"] is None else f"{item['price']:.2f}"
        lines.append(
            f"{i:>4}. {item['item_id']:<14} {item['score']:>9.3f} {price:>9}  {item['title']}"
        )
    for name, values in body["facets"].items():
        shown = ", ".join(f"{v['value']} ({v['count']})" for v in values[:facet_limit])
        if shown:
            lines.append(f"  {name}: {shown}")
    return "\n".join(lines)


def served_bundle(artifacts: Path) -> Path | None:
    """The served bundle's folder when it holds a search index, else None (read from the
    registry's files only: nothing of the bundle builder is imported)."""
    from shelfwise.artifacts.registry import current_bundle_dir

    directory = current_bundle_dir(artifacts)
    if directory is not None and (directory / "search").is_dir():
        return directory
    return None


def load_bundle_search(bundle: Path) -> SearchService:
    """The search service persisted in a bundle folder (`search.persistence`)."""
    from shelfwise.search.service import SearchService
    from shelfwise.search.trees import scoring_without_lightgbm

    # one query per process: the re-ranker's trees are walked in numpy rather than paying
    # the LightGBM (and scikit-learn) import for them
    with scoring_without_lightgbm():
        return SearchService.load(bundle / "search")


def _check_fresh(bundle: Path, fingerprint: str | None) -> None:
    """Say on stderr when the bundle was built before the store's latest changes (or when
    the store could not be read to tell)."""
    if fingerprint is None:
        return
    manifest = json.loads((bundle / "manifest.json").read_text())
    if str(manifest.get("fingerprint", "")) != fingerprint:
        print(
            f"note: bundle {bundle.name} was built before the store's latest changes; "
            "run `shelfwise build` to index them",
            file=sys.stderr,
        )


def duckdb_fingerprint(store_url: str) -> str | None:
    """`Store.fingerprint()` of a DuckDB file store read through a read-only connection,
    without opening the store (which imports pandas and creates or migrates its tables):
    the `store_id` and `revision` rows of its `meta` table, as `SqlStore.fingerprint`
    joins them. None when `store_url` is not a DuckDB file or the file cannot be read so
    (missing, held by a writer process, no such rows): the caller opens the store then."""
    text = store_url.strip()
    if text.lower().startswith("duckdb://"):
        path = text[len("duckdb://") :][1:]
    elif "://" not in text and text.lower().endswith(".duckdb"):
        path = text
    else:
        return None
    if not path or path == ":memory:" or not Path(path).expanduser().is_file():
        return None
    import duckdb

    try:
        with duckdb.connect(str(Path(path).expanduser()), read_only=True) as con:
            rows = con.execute(
                "SELECT key, value FROM meta WHERE key IN ('store_id', 'revision')"
            ).fetchall()
    except duckdb.Error:
        return None
    meta = {str(k): str(v) for k, v in rows}
    if set(meta) != {"store_id", "revision"}:
        return None
    return f"{meta['store_id']}-{meta['revision']}"


def _user_history(store: Store, user: str) -> list[str]:
    mine = store.events(user_id=user, limit=200, newest_first=True)
    return [str(i) for i in mine["item_id"].dropna().tolist()]


def _read_store(
    store_url: str, bundle: Path, user: str | None
) -> tuple[list[str] | None, str | None]:
    """(`user`'s history or None, the store's fingerprint or None when the store could not
    be read: a note says the bundle was not checked; with `user` the error is raised)."""
    from shelfwise.errors import StoreError
    from shelfwise.store import open_store

    history: list[str] | None = None
    try:
        with open_store(store_url) as store:
            fingerprint: str | None = store.fingerprint()
            if user:
                history = _user_history(store, user)
    except StoreError as exc:
        if user:
            raise
        fingerprint = None
        print(
            f"note: answered from bundle {bundle.name} without checking that it is "
            f"current (the store could not be read: {exc})",
            file=sys.stderr,
        )
    return history, fingerprint


def cmd_search(args: argparse.Namespace) -> int:
    """Run one query on the served bundle's search index (built from the store if none).

    With a served bundle, the store is only read for its fingerprint (is the bundle
    current?) and for `--user`'s history; a store another process holds (a running
    `shelfwise serve` on DuckDB) does not stop the search: a note says it was not checked.
    """
    facets = [f.strip() for f in args.facets.split(",") if f.strip()]
    if args.artifacts and args.store:
        artifacts, store_url = Path(args.artifacts), str(args.store)
    else:  # the settings only when a default is needed (pydantic-settings costs ~0.2 s)
        from shelfwise.settings import Settings

        settings = Settings()
        artifacts = Path(args.artifacts) if args.artifacts else settings.paths.artifacts
        store_url = str(args.store or settings.store.url)
    history: list[str] | None = None
    bundle = served_bundle(artifacts)
    if bundle is None:
        from shelfwise.search.service import SearchService
        from shelfwise.store import open_store

        log.info("no served bundle in %s: indexing the store's catalogue in memory", artifacts)
        with open_store(store_url) as store:
            service = SearchService.build(store.items(), store.events())
            if args.user:
                history = _user_history(store, args.user)
    else:
        service = load_bundle_search(bundle)
        # a DuckDB file's fingerprint is read without opening the store (pandas, schema)
        fingerprint = None if args.user else duckdb_fingerprint(store_url)
        if fingerprint is None:
            history, fingerprint = _read_store(store_url, bundle, args.user)
        _check_fresh(bundle, fingerprint)
    res = service.search(
        args.query,
        filters=args.filter or None,
        sort=args.sort,
        page=args.page,
        per_page=args.per_page,
        facets=facets,
        user=args.user,
        history_ids=history,
    )
    body = res.to_dict()
    print(json.dumps(body, indent=2, ensure_ascii=False) if args.json else format_response(body))
    return 0


def add_parser(sub: Any) -> None:
    """Register `shelfwise search`."""
    p = sub.add_parser("search", help="search the catalogue (typos, filters, facets)")
    p.add_argument("query", help='what to search for; "" browses by popularity')
    p.add_argument(
        "--filter",
        action="append",
        metavar="KEY=VALUE",
        help="brand=Acme|Bolt, category=Home > Kitchen, price=10..50, in_stock=true, "
        "colour=Blue (repeatable)",
    )
    p.add_argument("--sort", default="relevance", help="relevance, price_asc, price_desc, ...")
    p.add_argument("--page", type=int, default=1)
    p.add_argument("--per-page", type=int, default=10)
    p.add_argument("--facets", default="brand,category,price", help="comma-separated facets")
    p.add_argument("--user", help="personalise for this user id")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    p.add_argument(
        "--store",
        default=None,
        help="store URL (default: $SHELFWISE_STORE or duckdb:///var/shelfwise.duckdb)",
    )
    p.add_argument(
        "--artifacts",
        default=None,
        help="artifacts registry whose served bundle's index answers "
        "(default: $SHELFWISE_PATHS__ARTIFACTS or var/artifacts)",
    )
    p.set_defaults(func=cmd_search)
