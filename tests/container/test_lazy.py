"""A lazily read layer answers whole-layer questions from its columns, as a dict would."""

from __future__ import annotations

from pathlib import Path

import pytest

from thermo_cli import store
from thermo_cli.container.lazy import LazyLayer
from thermo_cli.engine.select import StrengthTest
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.model import Entry, Layer, Ternary

N = 4000
"""Entries: several directory chunks."""


def _strength(i: int) -> float:
    return (i * 7919 % 1000) / 1000


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("lazy") / "m.thermo"
    tg = Thermogram(name="lazy")
    hot = tg.layers[Layer.HOT]
    for i in range(N):
        key = f"k{i:05d}"
        tern = Ternary(i % 3 - 1) if i % 11 == 0 else None
        hot[key] = Entry(key, b"v%d" % i, _strength(i), 1_700_000_000_000_000_000 + i, 1 + i % 4, tern)
    store.create(p, tg)
    return p


TESTS = [
    StrengthTest(below=0.3),
    StrengthTest(at_least=0.7, min_count=3),
    StrengthTest(below=0.1, ternary_zero=True),
    StrengthTest(at_least=0.0, min_count=4),
]


@pytest.mark.parametrize("test", TESTS)
def test_selection_from_columns_equals_asking_every_entry(path: Path, test: StrengthTest) -> None:
    with store.edit(path, dry_run=True) as tg:
        hot = tg.layers[Layer.HOT]
        assert isinstance(hot, LazyLayer)
        assert len(hot.reader.index[Layer.HOT].dirs) > 2
        # an overlay of every kind: changed in place, replaced, deleted, added
        hot["k00007"].strength = 0.05
        hot["k00010"].update_count = 9
        hot["k00010"].strength = 0.95
        hot["k00020"] = Entry("k00020", b"new", 0.0, 5, 1)
        del hot["k00030"]
        del hot["k03999"]
        hot["zz-added"] = Entry("zz-added", b"x", 0.99, 5, 8)
        hot["a-added"] = Entry("a-added", b"x", 0.01, 5, 8, Ternary.ZERO)
        expected = [k for k, e in hot.items() if test.passes(e)]
        assert hot.select_keys(test) == expected
        assert expected  # the cases select something


def test_a_pass_over_the_layer_builds_no_entry_for_keys_it_does_not_move(path: Path) -> None:
    with store.edit(path, dry_run=True) as tg:
        hot = tg.layers[Layer.HOT]
        assert isinstance(hot, LazyLayer)
        keys = hot.select_keys(StrengthTest(below=0.002))
        assert keys and len(keys) < 20
        assert not hot._handed


@pytest.mark.parametrize("test", TESTS)
def test_selection_after_a_pass_touched_every_entry(path: Path, test: StrengthTest) -> None:
    """When most entries are objects already (a decay pass), the answer is the same."""
    with store.edit(path, dry_run=True) as tg:
        hot = tg.layers[Layer.HOT]
        assert isinstance(hot, LazyLayer)
        for e in hot.values():
            e.strength = e.strength * 0.9
        del hot["k00100"]
        expected = [k for k, e in hot.items() if test.passes(e)]
        assert hot.select_keys(test) == expected
