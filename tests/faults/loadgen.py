"""A bounded beacon load for the fault tests, and the tally of what the gateway answered.

`LoadGen` runs an asyncio loop in a thread: at `rate` requests a second it posts
to `/v1/events` single events and batches of fresh, unique event_ids (every
(event, ad type) pair of the track document), plus re-sends of event_ids already
accepted, which must come back as duplicates. It stops after `duration` seconds
or `max_requests` requests, whichever is first, or when `stop()` is called.

With several targets, a request goes to the next one in turn; with `fan_out`
the same body goes to every target at once (two instances behind one Redis
must accept it once between them).

The tally is per event_id, from the answers alone: an id is *accepted* once the
answers to its request(s) counted it (`accepted` adds up to the events sent);
*unknown* when no answer (connection refused, reset, timeout) or a partial one
cannot say. Only accepted ids are owed upstream; unknown ones may arrive, once.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.traffic import beacon_body
from tests.support.factories import ALL_PAIRS, event, event_id

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) ian-gateway-faults/1"
BATCH_SIZES = (2, 8)  # a batch holds 2 to 8 events
MAX_IN_FLIGHT = 32  # requests the generator keeps open at once


@dataclass
class Tally:
    """What the gateway(s) said about every event_id the load sent."""

    sent: set[str] = field(default_factory=set)  # every fresh event_id sent
    accepted: dict[str, float] = field(default_factory=dict)  # id -> monotonic time of its 202
    unknown: set[str] = field(default_factory=set)  # sent, no answer that counts it
    resent: int = 0  # re-sends of accepted ids that got a 202
    resent_duplicates: int = 0  # ...answered as duplicates, as they must all be
    accepted_twice: list[str] = field(default_factory=list)  # re-sends accepted again: a bug
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # "202", "503", "ConnectError", ...
    rejected: list[Any] = field(default_factory=list)  # events the gateway refused: a test bug

    def accepted_before(self, moment: float) -> set[str]:
        return {key for key, at in self.accepted.items() if at < moment}

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "events_sent": len(self.sent),
                "accepted": len(self.accepted), "unknown": len(self.unknown),
                "resent": self.resent, "resent_duplicates": self.resent_duplicates,
                "accepted_twice": len(self.accepted_twice), "statuses": dict(self.statuses)}


@dataclass
class Answer:
    status: str
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Any] = field(default_factory=list)


class LoadGen:
    def __init__(
        self,
        targets: list[str],
        *,
        rate: float = 20.0,
        duration: float = 40.0,
        max_requests: int = 5000,
        batch_share: float = 0.25,
        resend_share: float = 0.1,
        fan_out: bool = False,
        timeout: float = 5.0,
        seed: int | None = None,
    ) -> None:
        self.targets = [f"{url}/v1/events" for url in targets]
        self.rate = rate
        self.duration = duration
        self.max_requests = max_requests
        self.batch_share = batch_share
        self.resend_share = resend_share
        self.fan_out = fan_out
        self.timeout = timeout
        self.seed = random.randrange(2**32) if seed is None else seed
        self.random = random.Random(self.seed)
        self.tally = Tally()
        self.started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="loadgen", daemon=True)
        self._error: BaseException | None = None
        self._turn = 0
        self._originals: dict[str, dict[str, Any]] = {}  # accepted id -> its event, to re-send

    # -- control, from the test's thread --------------------------------------

    def start(self) -> LoadGen:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> Tally:
        """Wait for the load to end (its own duration, or `stop()`); re-raise its failure."""
        self._thread.join(self.duration + self.timeout + 10 if timeout is None else timeout)
        if self._thread.is_alive():
            raise TimeoutError("the load generator did not stop")
        if self._error is not None:
            raise self._error
        return self.tally

    def __enter__(self) -> LoadGen:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._thread.join(self.timeout + 10)

    # -- the load, in its own thread and loop -------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # handed to join(), in the test's thread
            self._error = exc

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT * len(self.targets))
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            for index in range(self.max_requests):
                due = self.started + index / self.rate
                if self._stop.is_set() or due - self.started > self.duration:
                    break
                await asyncio.sleep(max(due - time.monotonic(), 0.0))
                await slots.acquire()
                task = asyncio.create_task(self._one(client, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient, slots: asyncio.Semaphore) -> None:
        try:
            if self._originals and self.random.random() < self.resend_share:
                await self._resend(client)
            else:
                await self._fresh(client)
        finally:
            slots.release()

    def _events(self) -> list[dict[str, Any]]:
        count = 1
        if self.random.random() < self.batch_share:
            count = self.random.randint(*BATCH_SIZES)
        return [event(*self.random.choice(ALL_PAIRS)) for _ in range(count)]

    async def _fresh(self, client: httpx.AsyncClient) -> None:
        events = self._events()
        ids = [event_id(evt) for evt in events]
        self.tally.sent.update(ids)
        answers = await self._post_all(client, events)
        accepted = sum(answer.accepted for answer in answers)
        if accepted == len(ids):
            now = time.monotonic()
            self.tally.accepted.update((key, now) for key in ids)
            self._originals.update(zip(ids, events, strict=True))
        elif accepted > len(ids):  # two instances both took the same event
            self.tally.accepted_twice.extend(ids)
        else:
            self.tally.unknown.update(ids)

    async def _resend(self, client: httpx.AsyncClient) -> None:
        # A re-send is the event exactly as first sent (a beacon fired twice).
        ids = self.random.sample(list(self._originals), 1)
        events = [self._originals[key] for key in ids]
        answers = await self._post_all(client, events)
        if any(answer.status == "202" for answer in answers):
            self.tally.resent += len(ids)
        if any(answer.accepted for answer in answers):
            self.tally.accepted_twice.extend(ids)
        if any(answer.duplicates for answer in answers):
            self.tally.resent_duplicates += len(ids)

    async def _post_all(self, client: httpx.AsyncClient, events: list[Any]) -> list[Answer]:
        body = beacon_body(events)
        targets = list(self.targets) if self.fan_out else [self._next_target()]
        self.random.shuffle(targets)  # fan-out: which instance sees it first varies
        return list(await asyncio.gather(*(self._post(client, url, body) for url in targets)))

    def _next_target(self) -> str:
        self._turn += 1
        return self.targets[self._turn % len(self.targets)]

    async def _post(self, client: httpx.AsyncClient, url: str, body: bytes) -> Answer:
        content_type = self.random.choice(("text/plain", "application/json"))
        self.tally.requests += 1
        try:
            response = await client.post(url, content=body, headers={
                "Content-Type": content_type, "User-Agent": USER_AGENT})
        except httpx.HTTPError as exc:
            self.tally.statuses[type(exc).__name__] += 1
            return Answer(type(exc).__name__)
        self.tally.statuses[str(response.status_code)] += 1
        if response.status_code != 202:
            return Answer(str(response.status_code))
        payload = response.json()
        if payload["rejected"]:
            self.tally.rejected.append(payload["rejected"])
        return Answer("202", payload["accepted"], payload["duplicates"], payload["rejected"])
