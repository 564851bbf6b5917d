"""Row ids: UUID version 7, ordered by the millisecond they were made in, random after it."""

from __future__ import annotations

import os
import time
import uuid

import orjson

from openrisk.core.ids import new_id


def test_an_id_is_a_version_7_uuid_that_carries_its_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after
    parsed = uuid.UUID(str(made))
    assert parsed == made and hash(parsed) == hash(made)  # a plain stdlib UUID
    assert orjson.dumps(made) == orjson.dumps(parsed)


def test_ids_of_later_milliseconds_sort_after_earlier_ones_and_never_repeat() -> None:
    first = [new_id() for _ in range(2_000)]
    start = time.monotonic()
    while time.time_ns() // 1_000_000 <= max(i.int >> 80 for i in first):
        assert time.monotonic() - start < 1  # the wall clock moves on
    later = new_id()
    assert all(i < later for i in first)
    assert len({*first, later}) == len(first) + 1
    # the 74 bits after the time are random: ids of one millisecond are not all alike
    assert len({i.int & ((1 << 62) - 1) for i in first}) == len(first)


def test_a_forked_process_makes_other_ids_than_its_parent() -> None:
    new_id()  # the parent holds random bits drawn for its next ids
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, new_id().bytes)
        os._exit(0)
    os.close(write)
    theirs = uuid.UUID(bytes=os.read(read, 16))
    os.waitpid(child, 0)
    os.close(read)
    ours = new_id()
    random_part = (1 << 74) - 1
    assert theirs.int & random_part != ours.int & random_part
