"""The dataclass-free value classes behave as the dataclasses they replaced did."""

from __future__ import annotations

import copy
import pickle

import pytest

from thermo_cli.config.limits import Limits
from thermo_cli.container.lazy import LazyEntry
from thermo_cli.model import Delta, DeltaType, Entry, Event, ReadResult, TensorSpec
from thermo_cli.model.valueclass import FrozenInstanceError, fields, replace


def _delta(**changes: object) -> Delta:
    d = Delta(DeltaType.CREATE, "k", b"v", 0.5, 7, id="id-1")
    return replace(d, **changes) if changes else d


def test_fields_are_the_init_parameters_in_order():
    assert fields(Entry) == ("key", "value", "strength", "updated_at_ns", "update_count", "ternary", "tensor")
    assert fields(TensorSpec("F32", (2,))) == ("dtype", "shape", "encoding", "scales", "per_row", "method")
    assert fields(LazyEntry) == fields(Entry)  # a subclass's private slots are not fields


def test_defaults_and_factories():
    e = Entry("k", b"v", 0.5, 1)
    assert (e.update_count, e.ternary, e.tensor) == (1, None, None)
    a, b = Delta(DeltaType.CREATE, "k", b"", 0.5, 1), Delta(DeltaType.CREATE, "k", b"", 0.5, 1)
    assert a.id != b.id and len(a.id) == 36  # a fresh UUID each, as default_factory gave
    e1, e2 = Event("tick", 1), Event("tick", 1)
    e1.fields["x"] = 1
    assert e2.fields == {}  # not one shared dict


def test_equality_compares_fields_of_the_same_class_only():
    assert _delta() == _delta()
    assert _delta() != _delta(key="other")
    assert _delta(encoded=b"cached") == _delta()  # encoded is a cache: not compared
    assert "encoded" not in repr(_delta(encoded=b"cached"))
    e = Entry("k", b"v", 0.5, 1)
    r = ReadResult("k", b"v", 0.5, "hot")
    assert e != r and e != ("k", b"v", 0.5, 1)


def test_repr_names_every_compared_field():
    assert repr(TensorSpec("F32", (2,))) == (
        "TensorSpec(dtype='F32', shape=(2,), encoding='raw', scales=None, per_row=False, method=None)"
    )


def test_frozen_classes_refuse_assignment_and_hash_by_value():
    t = TensorSpec("F32", (2, 3))
    with pytest.raises(FrozenInstanceError):
        t.dtype = "F16"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del t.shape  # type: ignore[misc]
    assert isinstance(FrozenInstanceError("x"), AttributeError)
    assert hash(t) == hash(TensorSpec("F32", (2, 3))) and len({t, TensorSpec("F32", (2, 3))}) == 1


def test_mutable_classes_are_unhashable_and_assignable():
    e = Entry("k", b"v", 0.5, 1)
    e.strength = 0.25
    assert e.strength == 0.25
    with pytest.raises(TypeError):
        hash(e)
    with pytest.raises(AttributeError):
        e.extra = 1  # type: ignore[attr-defined]  # slotted: no stray attributes


def test_replace_copies_with_changes_and_refuses_unknown_fields():
    t = TensorSpec("F32", (2,))
    assert replace(t, shape=(4,)) == TensorSpec("F32", (4,))
    assert t.shape == (2,)
    with pytest.raises(TypeError, match="no field 'shapes'"):
        replace(t, shapes=(4,))


def test_limits_validate_on_construction_and_replace():
    assert Limits().replace(max_chunk_bytes=5).max_chunk_bytes == 5
    assert "max_chunk_bytes" in Limits.names()
    with pytest.raises(Exception, match="max_chunk_bytes: must be at least 1"):
        Limits(max_chunk_bytes=0)
    with pytest.raises(Exception, match="must be at least 1"):
        Limits().replace(max_line_bytes=-1)


@pytest.mark.parametrize(
    "value",
    [
        _delta(encoded=b"x"),
        Event("checkpoint", 5, {"a": [1, 2]}),
        TensorSpec("F32", (2,), "ternary", b"\0\0\0\0", True, "absmean"),
        Limits(max_line_bytes=3),
        ReadResult("k", b"v", 0.5, "dirty"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_pickle_and_copy_round_trip(value: object):
    for back in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
        assert back == value and type(back) is type(value)
