"""Property tests: random thermograms round-trip exactly; random bytes never escape as non-library errors."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.container.helpers import state
from thermo_cli import store
from thermo_cli.config.engine import ConsolidationPolicy
from thermo_cli.config.limits import MiB
from thermo_cli.container import chunks as ck
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import ThermoError
from thermo_cli.model import Entry, Layer, Metadata, TensorSpec, Ternary, f32
from thermo_cli.operations.audit.verify import verify_file

keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=10,
)
cbor_values = st.recursive(
    json_scalars | st.binary(max_size=20),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=10,
)


@st.composite
def entries(draw: st.DrawFn, key: str) -> Entry:
    kind = draw(st.sampled_from(["bytes", "f32", "f16", "f64", "i8"]))
    if kind == "bytes":
        value, spec = draw(st.binary(max_size=300)), None
    else:
        dtype = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i8": np.int8}[kind]
        n = draw(st.integers(0, 200))
        arr = np.random.default_rng(draw(st.integers(0, 2**32))).standard_normal(n) * 3
        value = arr.astype(dtype).tobytes()
        spec = TensorSpec({"f32": "F32", "f16": "F16", "f64": "F64", "i8": "I8"}[kind], (n,))
    tern = draw(st.none() | st.sampled_from(list(Ternary)))
    return Entry(
        key,
        value,
        f32(draw(st.floats(0, 1))),
        draw(st.integers(-(2**63), 2**63 - 1)),
        draw(st.integers(0, 2**64 - 1)),
        tern,
        spec,
    )


@st.composite
def thermograms(draw: st.DrawFn) -> Thermogram:
    tg = Thermogram(
        name=draw(st.text(max_size=20)),
        policy=ConsolidationPolicy.manual(),
        meta=Metadata(
            created_at_ns=draw(st.integers(0, 2**62)), last_consolidation_ns=0, custom=draw(json_values)
        ),
    )
    for layer in Layer:
        for k in draw(st.lists(keys, max_size=6, unique=True)):
            tg.layers[layer][k] = draw(entries(k))
    for key, value in draw(st.dictionaries(st.text(min_size=1, max_size=6), cbor_values, max_size=3)).items():
        tg.set_extra(key, value)
    for i, k in enumerate(draw(st.lists(keys, max_size=5))):
        op = draw(st.sampled_from(["create", "update", "merge", "delete"]))
        if op == "delete":
            tg.delete(k, timestamp_ns=i)
        else:
            getattr(tg, op)(
                k,
                draw(st.binary(max_size=50)),
                strength=draw(st.floats(0, 1)),
                timestamp_ns=i,
                custom=draw(json_values),
            )
    return tg


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(thermograms())
def test_random_thermograms_round_trip(tg: Thermogram) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.thermo"
        store.create(path, tg)
        for layers in ("lazy", "full"):
            assert state(store.load(path, layers=layers, log="full")) == state(tg)
        assert verify_file(path).ok


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(thermograms(), st.lists(st.binary(min_size=1, max_size=30), min_size=1, max_size=4))
def test_appends_round_trip(tg: Thermogram, values: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.thermo"
        store.create(path, tg)
        for i, v in enumerate(values):
            cur = store.load(path)
            cur.create(f"appended/{i}", v, timestamp_ns=10**18 + i)
            cur.set_extra("count", i)
            assert store.commit(path, cur) == "append"
        back = store.load(path, layers="full", log="full")
        assert back.extras["count"] == len(values) - 1
        assert state(back) == state(cur)
        assert verify_file(path).ok


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_after_the_magic_give_library_errors(tail: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.thermo"
        path.write_bytes(b"\x89THRM\r\n\x1a\n\x02\x00" + tail)
        with contextlib.suppress(ThermoError):
            store.load(path, layers="full", log="full")


@given(st.binary(max_size=4096), st.sampled_from([2, 4, 8]))
def test_shuffle_round_trips(data: bytes, elem: int) -> None:
    data = data[: len(data) - len(data) % elem]
    assert ck.unshuffle(ck.shuffle(data, elem), elem) == data
    out = bytearray(len(data))
    ck.unshuffle(ck.shuffle(data, elem), elem, memoryview(out))
    assert out == data
    p = ck.pack(data, filter=ck.SHUFFLE, elem=elem)
    assert (
        ck.unpack(
            p.stored,
            len(data),
            p.sha256,
            filter=ck.SHUFFLE,
            elem=elem,
            cap=4 * MiB,
            cap_name="max_chunk_bytes",
            what="t",
        )
        == data
    )
