"""Row ids that grow in the order they are made (UUID version 7, RFC 9562).

A random (version 4) id sends each new row to a random page of its primary key and of every
index that leads with it, so a batch of 1,000 rows dirties pages all over those indexes; an id
that starts with the time appends to their right edge instead. Measured on PostgreSQL with
100,000 risks: inserting 1,000 of them took ~96 ms with such ids against ~129 ms with random
ones. The id's first 48 bits are the creation time in milliseconds (a risk's id tells no more
than its ``created_at``); the other 74 are random, as unguessable as most of a version 4 id.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_AND_VARIANT = (7 << 76) | (2 << 62)
_RANDOM = ~((0xFFFF_FFFF_FFFF << 80) | (0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_SLOTS_SETTER = object.__setattr__
_DRAWN_AT_ONCE = 512  # ids' random bits per read of the system's generator

_random_bits: list[int] = []  # drawn from os.urandom, 80 bits each, used once
# a forked child must not hand out the ids its parent will (same millisecond, same bits)
os.register_at_fork(after_in_child=_random_bits.clear)


def _draw() -> None:
    data = os.urandom(10 * _DRAWN_AT_ONCE)
    _random_bits.extend(int.from_bytes(data[i : i + 10], "big") for i in range(0, len(data), 10))


def new_id() -> uuid.UUID:
    """A new UUID version 7: the current Unix time in milliseconds, then 74 random bits
    (from os.urandom, read for 512 ids at a time: 1.0 µs an id here against 1.5 µs with a
    system call for each, and an import makes three ids a row)."""
    millis = time.time_ns() // 1_000_000
    while True:  # another thread may take the last bits between a draw and the pop
        try:
            bits = _random_bits.pop()
            break
        except IndexError:
            _draw()
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_AND_VARIANT | (bits & _RANDOM)
    made = object.__new__(uuid.UUID)
    # what uuid.UUID(int=value) stores, without re-checking a value built in range above
    _SLOTS_SETTER(made, "int", value)
    _SLOTS_SETTER(made, "is_safe", uuid.SafeUUID.unknown)
    return made
