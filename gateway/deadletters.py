"""`ian-gateway deadletters list|show|replay|purge`: inspect and replay what the upstream refused.

Dead letters live in the spool named by `IAN_SPOOL`, so this works against the
same file or Redis the gateway uses, while the gateway runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime

import orjson

from gateway.settings import Settings
from gateway.spool import DeadLetter, Spool, open_spool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="one line per dead letter")
    listing.add_argument("--limit", type=int, default=100,
                         help="show at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = sub.add_parser("show", help="a dead letter's body and the upstream's answer")
    show.add_argument("id")
    for name, verb in (("replay", "queue again for forwarding"), ("purge", "delete")):
        action = sub.add_parser(name, help=f"{verb} dead letters")
        action.add_argument("ids", nargs="*", help="ids to act on")
        action.add_argument("--all", action="store_true", help=f"{verb} every dead letter")


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    if args.action in ("replay", "purge") and not args.ids and not args.all:
        print(f"ian-gateway: {args.action} needs ids or --all", file=sys.stderr)
        return 2
    spool = open_spool(settings.spool, settings.spool_max, settings.dedupe_ttl,
                       settings.spool_lease)
    return asyncio.run(act(spool, args))


async def act(spool: Spool, args: argparse.Namespace) -> int:
    await spool.start()
    try:
        if args.action == "list":
            return print_list(await spool.dead_letters(args.limit), args.json)
        if args.action == "show":
            return print_one(await spool.dead_letters(limit=1_000_000), args.id)
        ids = None if args.all else list(args.ids)
        count = await (spool.replay(ids) if args.action == "replay" else spool.purge(ids))
        print(f"{args.action}: {count} dead letter(s)")
        return 0
    finally:
        await spool.close()


def as_json(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id, "kind": letter.record.kind, "key": letter.record.key,
        "status": letter.status, "answer": letter.answer, "attempts": letter.attempts,
        "failed_at": datetime.fromtimestamp(letter.failed_at, UTC).isoformat(),
        "body": orjson.loads(letter.record.body),
    }


def print_list(letters: list[DeadLetter], json_lines: bool) -> int:
    for letter in letters:
        if json_lines:
            print(orjson.dumps(as_json(letter)).decode())
        else:
            failed = datetime.fromtimestamp(letter.failed_at, UTC).isoformat(timespec="seconds")
            print(f"{letter.id}\t{letter.record.kind}\t{letter.record.key}\t{letter.status}\t"
                  f"{failed}\t{letter.answer[:80]}")
    if not json_lines:
        print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


def print_one(letters: list[DeadLetter], letter_id: str) -> int:
    for letter in letters:
        if letter.id == letter_id:
            print(orjson.dumps(as_json(letter), option=orjson.OPT_INDENT_2).decode())
            return 0
    print(f"ian-gateway: no dead letter {letter_id}", file=sys.stderr)
    return 1
