"""The gateway with a spool that stores nothing: intake's ceiling once durability is free.

Everything but the spool is the gateway's own, built as `serve` builds it: the
request id, the intake (parse, enrich, validate, dedupe, answer), its metrics,
the GC threshold. `put` answers every record new and keeps none. The bench
measures it next to the gateway, for information: it is not a target's
baseline, it shows how much of the intake target the spool could ever explain.
Run: `uvicorn intake_without_spool:app --app-dir loadtests --loop uvloop --http httptools`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway.app import Gateway, build_parts, tune_gc
from gateway.settings import Settings
from gateway.spool import Record
from gateway.spool.memory import MemorySpool


class StoresNothing(MemorySpool):
    async def put(self, records: Sequence[Record]) -> list[bool]:
        return [True] * len(records)


def create(settings: Settings) -> Gateway:
    """`serve`'s own parts (`build_parts`), the spool swapped for one that stores nothing."""
    parts = build_parts(settings.with_(spool="memory:"))
    spool = StoresNothing(settings.spool_max, settings.dedupe_ttl)
    return Gateway(dataclasses.replace(parts, spool=spool))


tune_gc()
app = create(Settings(forwarder=False))  # as the bench runs the gateway: no rate limit
