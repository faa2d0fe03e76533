"""`shelfwise search`: query the catalogue from the command line.

    shelfwise search "wireles headphnes" [--filter brand=Sonic --filter price=..100]
                     [--sort relevance|price_asc|price_desc|popularity|newest]
                     [--page 1] [--per-page 10] [--facets brand,category,price]
                     [--user U-00001] [--json] [--store URL]

Builds a `SearchService` over the store's catalogue and events (so it always sees the
current catalogue) and prints one page of results, the corrections it made and the facet
counts. `--filter` takes the `key=value` syntax of `shelfwise.search.filters`. `--user`
passes the user's recent items to the search (used by a learned re-ranker when one is set).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from shelfwise.settings import Settings


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


def cmd_search(args: argparse.Namespace) -> int:
    """Build the search service from the store and run one query."""
    from shelfwise.search.service import SearchService
    from shelfwise.store import open_store

    facets = [f.strip() for f in args.facets.split(",") if f.strip()]
    with open_store(str(args.store or Settings().store.url)) as store:
        items = store.items()
        events = store.events()
        history: list[str] | None = None
        if args.user:
            mine = store.events(user_id=args.user, limit=200, newest_first=True)
            history = [str(i) for i in mine["item_id"].dropna().tolist()]
    service = SearchService.build(items, events)
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
    p.set_defaults(func=cmd_search)
