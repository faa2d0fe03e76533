"""`shelfwise keys`: create, list and revoke API keys (stored hashed in the store)."""

from __future__ import annotations

import argparse
import json

from shelfwise.errors import ShelfwiseError


def _store_url(args: argparse.Namespace) -> str:
    from shelfwise.settings import Settings

    return str(args.store or Settings().store.url)


def cmd_create(args: argparse.Namespace) -> int:
    """Create a key and print it once: it cannot be shown again."""
    from shelfwise.serve.security import create_key
    from shelfwise.store import open_store

    with open_store(_store_url(args)) as store:
        key, record = create_key(store, args.scopes, args.name or "")
    if args.json:
        print(json.dumps({"key": key, "key_id": record.key_id, "scopes": list(record.scopes)}))
    else:
        print(key)
        print(
            f"key_id {record.key_id}, scopes {','.join(record.scopes)}: store the key now, "
            "it is not shown again"
        )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List keys (ids, names, scopes, dates; never the keys)."""
    from shelfwise.store import open_store

    with open_store(_store_url(args)) as store:
        records = store.api_keys()
    rows = [
        {
            "key_id": r.key_id,
            "name": r.name,
            "scopes": ",".join(r.scopes),
            "created_at": r.created_at.isoformat(timespec="seconds"),
            "revoked_at": r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else None,
        }
        for r in records
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no API keys (create one with: shelfwise keys create --scopes read,write)")
        return 0
    print(f"{'key_id':<14}{'scopes':<18}{'created':<27}{'state':<9}name")
    for row in rows:
        state = "revoked" if row["revoked_at"] else "active"
        print(
            f"{row['key_id']:<14}{row['scopes']:<18}{row['created_at']:<27}{state:<9}{row['name']}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke a key by id."""
    from shelfwise.store import open_store

    with open_store(_store_url(args)) as store:
        if not store.revoke_api_key(args.key_id):
            raise ShelfwiseError(f"no active API key with key_id '{args.key_id}'")
    print(f"revoked {args.key_id} (running servers stop accepting it within 10 s)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `shelfwise keys {create,list,revoke}`."""
    p = sub.add_parser("keys", help="create, list and revoke API keys")
    keys = p.add_subparsers(dest="keys_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--store", default=None, help="store URL (default: $SHELFWISE_STORE or the local file)"
        )
        q.add_argument("--json", action="store_true", help="print JSON")

    q = keys.add_parser("create", help="create a key and print it (once)")
    q.add_argument("--scopes", required=True, help="comma-separated: read, write, admin")
    q.add_argument("--name", default="", help="a label, e.g. the client's name")
    common(q)
    q.set_defaults(func=cmd_create)

    q = keys.add_parser("list", help="list keys (never the keys themselves)")
    common(q)
    q.set_defaults(func=cmd_list)

    q = keys.add_parser("revoke", help="revoke a key by its key_id")
    q.add_argument("key_id", help="the key_id shown by `shelfwise keys list`")
    common(q)
    q.set_defaults(func=cmd_revoke)
