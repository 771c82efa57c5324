"""Nesting is counted the same way when writing and reading (spec §4 rule 6, §10)."""

from __future__ import annotations

import pytest

from thermo_cli.codec import cbor
from thermo_cli.errors import LimitExceededError


def nested(levels: int) -> object:
    item: object = 0
    for _ in range(levels):
        item = [item]
    return item


def test_the_deepest_item_a_writer_may_write_is_the_deepest_a_reader_accepts():
    deepest = nested(cbor.MAX_DEPTH)
    assert cbor.decode(cbor.encode(deepest)) == deepest
    with pytest.raises(LimitExceededError):
        cbor.encode(nested(cbor.MAX_DEPTH + 1))


def test_maps_count_as_levels_too():
    item: object = {}
    for _ in range(cbor.MAX_DEPTH):
        item = {"k": item}
    with pytest.raises(LimitExceededError):
        cbor.encode(item)
