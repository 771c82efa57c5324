"""Delta ids: random UUID v4 strings, formatted as ``str(uuid.uuid4())``, made a batch at a time."""

from __future__ import annotations

import uuid

from thermo_cli.model import _IdPool, new_id, new_ids


def test_ids_are_distinct_version_4_uuids_in_canonical_form():
    pool = _IdPool()
    ids = pool.take(_IdPool._BATCH + 10)  # across a refill
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_take_gives_what_next_would_in_the_same_order():
    a, b = _IdPool(), _IdPool()
    b._ids = list(a._ids)
    a._refill()
    b._ids = list(a._ids)
    assert a.take(7) == [b.next() for _ in range(7)]


def test_module_helpers_draw_from_one_pool():
    assert len(new_id()) == 36 and all(len(i) == 36 for i in new_ids(3))
