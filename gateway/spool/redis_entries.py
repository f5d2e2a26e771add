"""How the Redis spool keeps a record, and the Lua scripts that move one atomically.

A waiting or leased record is an entry of the queue stream with the fields `r` the record
(a JSON header `[kind, key, user_agent]`, a newline, the body), `n` upstream attempts so far,
`e` enqueued at (unix ms). A delayed one (a retry) is the sorted-set member
`<32 hex token><n>:<e>:<r>`, scored by its due time; a dead letter an entry of the dead stream
with `r`, `n`, `s` the upstream's status, `a` its answer, `t` failed at (unix ms). Moves between
them are Lua scripts, which Redis runs atomically (redis.io, "Scripting with Lua":
https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from gateway.spool import Claimed, DeadLetter, Record

TOKEN_LEN: Final = 32  # the delayed member's unique head, so equal records stay two members

# KEYS: delayed, stream. ARGV: now (ms), most to move.
PROMOTE: Final = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local n, e, r = string.match(member, '^(%d+):(%d+):(.*)$', 33)
  redis.call('XADD', KEYS[2], '*', 'r', r, 'n', n, 'e', e)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# Shared head of RETRY and BURY: the entry, only while pending for this consumer
# (a consumer whose lease ran out and was taken over settles nothing).
# KEYS[1]: stream. ARGV[1]: group, ARGV[2]: id, ARGV[3]: consumer.
_OWNED_ENTRY = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if #entries == 0 then return 0 end
local f = {}
local flat = entries[1][2]
for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
"""

# KEYS: stream, delayed. ARGV: group, id, consumer, due (ms), token.
RETRY: Final = _OWNED_ENTRY + """
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5] .. (tonumber(f.n) + 1) .. ':' .. f.e .. ':' .. f.r)
return 1
"""

# KEYS: stream, dead. ARGV: group, id, consumer, status, answer, failed at (ms).
BURY: Final = _OWNED_ENTRY + """
redis.call('XADD', KEYS[2], '*', 'r', f.r, 'n', tonumber(f.n) + 1, 's', ARGV[4], 'a', ARGV[5],
           't', ARGV[6])
return 1
"""

# KEYS: dead, stream. ARGV: dead letter id, now (ms).
REPLAY: Final = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entries == 0 then return 0 end
local flat = entries[1][2]
for i = 1, #flat, 2 do
  if flat[i] == 'r' then
    redis.call('XADD', KEYS[2], '*', 'r', flat[i + 1], 'n', 0, 'e', ARGV[2])
  end
end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


def pack(record: Record) -> bytes:
    return orjson.dumps([record.kind, record.key, record.user_agent]) + b"\n" + record.body


def unpack(blob: bytes) -> Record:
    header, _, body = blob.partition(b"\n")
    kind, key, user_agent = orjson.loads(header)
    return Record(kind=kind, key=key, body=body, user_agent=user_agent)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stream_entries(answer: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Entries of XRANGE, XREADGROUP or XAUTOCLAIM; Redis < 7 gives deleted ones nil fields."""
    return [(entry_id, fields) for entry_id, fields in answer or () if fields]


def claimed_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Claimed:
    return Claimed(text(entry_id), unpack(fields[b"r"]), int(fields[b"n"]))


def dead_letter(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        id=text(entry_id),
        record=unpack(fields[b"r"]),
        status=int(fields[b"s"]),
        answer=fields[b"a"].decode(errors="replace"),
        attempts=int(fields[b"n"]),
        failed_at=int(fields[b"t"]) / 1000,
    )
