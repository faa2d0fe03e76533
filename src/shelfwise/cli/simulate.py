"""`shelfwise simulate`: an offline A/B test of policies with simulated shoppers.

    shelfwise simulate --policy pop=popularity --policy knn=itemknn --days 14 --json out.json
    shelfwise simulate --store http://127.0.0.1:8000 --policy a=default --policy b=tfidf

The shoppers live in the demo store of `--seed/--demo-items/--demo-users/--demo-days`
(what `shelfwise generate-demo` writes with the same flags). Without `--store` every arm is
answered in-process (a registry model fitted on the store's generated events, `random`, or
`default`: the bundle's default personalisation model); with `--store http(s)://...` the
shoppers ask that running server for their lists and post their events back to it; with a
store URL (duckdb:///..., postgresql://...) an in-process `Engine` over that store and its
bundle in --artifacts answers (an empty store is filled with the demo store first), and the
simulated events are appended to the store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from shelfwise.errors import ConfigError

log = logging.getLogger("shelfwise.cli")

_ARM = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_policies(pairs: list[str] | None) -> dict[str, str]:
    """`["a=popularity", "b=itemknn"]` -> `{"a": "popularity", "b": "itemknn"}`; a
    malformed or repeated NAME is a `ConfigError` naming the flag."""
    from shelfwise.experiments.simulate.policies import DEFAULT, policy_names

    if not pairs or len(pairs) < 2:
        raise ConfigError(
            "--policy: give at least two, e.g. --policy pop=popularity --policy knn=itemknn"
        )
    valid = [DEFAULT, *policy_names()]
    out: dict[str, str] = {}
    for raw in pairs:
        name, sep, config = (part.strip() for part in raw.partition("="))
        if not sep or not _ARM.match(name) or not config:
            raise ConfigError(
                f"--policy {raw!r}: expected NAME=CONFIG with NAME of letters, digits, . _ - "
                f"(e.g. --policy knn=itemknn); CONFIG: {', '.join(valid)}"
            )
        if name in out:
            raise ConfigError(f"--policy {raw!r}: the name {name!r} is given twice")
        if config not in valid:
            raise ConfigError(f"--policy {raw!r}: unknown CONFIG {config!r}; use one of "
                              f"{', '.join(valid)}")  # fmt: skip
        out[name] = config
    return out


def parse_shopper(pairs: list[str] | None) -> dict[str, Any]:
    """`["fatigue=0.8"]` -> `{"fatigue": 0.8}` (values parsed like `--set`)."""
    from shelfwise.config_params import parse_value

    out: dict[str, Any] = {}
    for raw in pairs or []:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--shopper {raw!r}: expected PARAM=VALUE (e.g. fatigue=0.8)")
        out[key.strip()] = parse_value(value.strip())
    return out


def _table(result: dict[str, Any]) -> str:
    metrics = ("ctr", "conversion_rate", "revenue_per_user", "return_rate_7d")
    lines = [f"{'policy':<14}" + "".join(f"{m:>26}" for m in metrics)]
    for name, row in result["policies"].items():
        cells = []
        for m in metrics:
            value, (lo, hi) = row[m], row["ci95"][m]
            cells.append(
                f"{value:.4g} [{lo:.4g}, {hi:.4g}]".rjust(26) if None not in (value, lo, hi)
                else "n/a".rjust(26)
            )  # fmt: skip
        lines.append(f"{name:<14}" + "".join(cells))
    lines.append("")
    for c in result["comparisons"]:
        if c.get("p_value") is None:
            continue
        lo, hi = c.get("lift_ci95") or [None, None]
        interval = f"[{lo:+.1%}, {hi:+.1%}]" if None not in (lo, hi) else ""
        lift = f"{c['lift']:+.1%}" if c.get("lift") is not None else "n/a"
        lines.append(
            f"{c['b']} vs {c['a']} {c['metric']}: lift {lift} {interval} p={c['p_value']:.3g}"
        )
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Build the world, run the test through the chosen driver, print and write the report."""
    from shelfwise.config_params import parse_set
    from shelfwise.data.demo import DemoConfig
    from shelfwise.experiments.simulate.report import report
    from shelfwise.experiments.simulate.run import Driver, library_driver, simulate
    from shelfwise.experiments.simulate.world import ShopperModel, World

    arms = parse_policies(args.policy)
    if args.days < 1:
        raise ConfigError(f"--days must be >= 1, got {args.days}")
    if args.history_half_life is not None and args.history_half_life < 0:
        raise ConfigError(f"--history-half-life must be >= 0 days, got {args.history_half_life}")
    if args.users is not None and args.users < 2:
        raise ConfigError(f"--users must be >= 2, got {args.users}")
    remote = bool(args.store) and str(args.store).startswith(("http://", "https://"))
    local_store = bool(args.store) and not remote
    shopper = ShopperModel.make(**parse_shopper(args.shopper))
    demo = DemoConfig(
        seed=args.seed, n_items=args.demo_items, n_users=args.demo_users, days=args.demo_days
    )
    if args.users is not None and args.users > demo.n_users:
        raise ConfigError(f"--users {args.users}: the demo store has {demo.n_users} shoppers "
                          "(raise --demo-users)")  # fmt: skip
    t0 = time.perf_counter()
    world = World.generate(demo, shopper, progress=True)
    driver: Driver
    store = None
    if local_store:
        from shelfwise.artifacts import ensure_bundle
        from shelfwise.experiments.simulate.engine import EngineDriver
        from shelfwise.serving import Engine
        from shelfwise.store import open_store

        store = open_store(str(args.store))
        if store.counts()["items"] == 0:
            log.info("ingesting the demo store into %s", args.store)
            w = world.store
            store.ingest(items=w.items, users=w.users, events=w.events)
        missing = [i for i in world.item_ids[:: max(1, world.n_items // 5)] if
                   store.items([str(i)]).empty]  # fmt: skip
        if missing:
            store.close()
            raise ConfigError(
                f"--store {args.store}: it has no item {missing[0]}; give an empty store or "
                "one made from `shelfwise generate-demo` with the simulation's --seed ..."
            )
        bundle, _ = ensure_bundle(store, Path(args.artifacts))
        driver = EngineDriver(world, arms, Engine(store, bundle))
    elif remote:
        from shelfwise.experiments.simulate.http import HttpDriver

        key = args.api_key or os.environ.get("SHELFWISE_API_KEY")
        http = HttpDriver.connect(
            world, arms, str(args.store), key, concurrency=args.concurrency, clock=args.clock
        )
        http.check()
        driver = http
    else:
        half_life: float | str | None = "server"
        if args.history_half_life is not None:
            half_life = args.history_half_life or None  # 0: no decay
        driver = library_driver(world, arms, parse_set(args.set or []), half_life)
    try:
        result = simulate(
            world, driver, list(arms), days=args.days, users=args.users, seed=args.sim_seed,
            salt=args.salt, progress=True,
        )  # fmt: skip
    finally:
        if remote:
            http.close()
        if store is not None:
            store.close()
    out = report(result)
    out["settings"].update(
        policies=arms, store=args.store or "in-process", demo=_demo_dict(demo),
        seconds=round(time.perf_counter() - t0, 2),
    )  # fmt: skip
    if remote:
        out["settings"]["http"] = {
            "requests": http.requests, "events_posted": http.posted,
            "request_ids": http.request_ids_seen, "unknown_items": http.unknown_items,
        }  # fmt: skip
    print(_table(out))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


def _demo_dict(demo: Any) -> dict[str, Any]:
    return {"seed": demo.seed, "items": demo.n_items, "users": demo.n_users, "days": demo.days}


def add_parser(sub: Any) -> None:
    """Register `shelfwise simulate`."""
    p = sub.add_parser(
        "simulate",
        help="an offline A/B test of policies with simulated shoppers (in-process or over HTTP)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="a running server (http://HOST:PORT) serving the demo store of --seed ..., or a "
        "store URL for an in-process Engine (the simulated events are appended to it); "
        "default: in-process models",
    )
    p.add_argument(
        "--policy",
        action="append",
        metavar="NAME=CONFIG",
        help="an arm (repeat, at least two): CONFIG is default, random or a registry model",
    )
    p.add_argument("--days", type=int, default=14, help="days the test runs (default 14)")
    p.add_argument(
        "--users", type=int, default=None, help="shoppers in the test (default: all of them)"
    )
    p.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON")
    p.add_argument("--seed", type=int, default=42, help="the demo store's seed (default 42)")
    p.add_argument("--demo-items", type=int, default=5000)
    p.add_argument("--demo-users", type=int, default=2000)
    p.add_argument("--demo-days", type=int, default=90)
    p.add_argument("--sim-seed", type=int, default=0, help="the simulation's random seed")
    p.add_argument("--salt", default="simulate", help="assignment salt (hash of salt + user id)")
    p.add_argument(
        "--set",
        action="append",
        metavar="MODEL.PARAM=VALUE",
        help="a model parameter for in-process arms (repeatable)",
    )
    p.add_argument(
        "--shopper",
        action="append",
        metavar="PARAM=VALUE",
        help="a shopper model parameter, e.g. fatigue=0.8 (see the simulator guide)",
    )
    p.add_argument(
        "--history-half-life",
        type=float,
        default=None,
        metavar="DAYS",
        help="in-process: weigh each shopper's history by recency like the server (an event "
        "this many days older than their newest counts half); 0: no decay (default: the "
        "server's, engine.history_half_life_days)",
    )
    p.add_argument(
        "--artifacts",
        default="var/simulate-artifacts",
        help="with a store URL: the bundle registry of the Engine (built when missing)",
    )
    p.add_argument("--api-key", default=None, help="API key (default: $SHELFWISE_API_KEY)")
    p.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    p.add_argument(
        "--clock",
        choices=("simulated", "now"),
        default="simulated",
        help="event timestamps over HTTP: the simulated days, or the real time of posting "
        "(what a live experiment started now counts)",
    )
    p.set_defaults(func=cmd_simulate)
