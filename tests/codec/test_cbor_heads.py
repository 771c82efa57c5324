"""cbor's precomputed head tables: built on first use, equal to :func:`cbor.head` for every length."""

from __future__ import annotations

import subprocess
import sys

import pytest

from thermo_cli.codec import cbor


@pytest.mark.parametrize(("name", "major"), [("TEXT_HEADS", 3), ("BYTES_HEADS", 2), ("UINT_ITEMS", 0)])
def test_tables_equal_the_head_of_every_length(name: str, major: int):
    table = getattr(cbor, name)
    assert len(table) == cbor.SHORT
    assert table == tuple(cbor.head(major, n) for n in range(cbor.SHORT))
    assert getattr(cbor, name) is table  # built once


def test_unknown_names_still_raise():
    with pytest.raises(AttributeError):
        _ = cbor.NO_SUCH_TABLE  # type: ignore[attr-defined]


def test_importing_the_codec_builds_no_table():
    code = (
        "from thermo_cli.codec import cbor, fastrecords; "
        "print(sorted(set(vars(cbor)) & {'TEXT_HEADS', 'BYTES_HEADS', 'UINT_ITEMS'}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stderr
