"""Hypothesis fuzzing of every reader of untrusted bytes.

For each input: only :mod:`thermo_cli.errors` classes may escape, the reader must finish
within a time bound (a watchdog interrupts a hang), and the peak memory it allocates
(tracemalloc, which numpy and bytes report to) must stay within a bound derived from the
reduced caps the targets run with (:data:`fuzz.targets.FUZZ_LIMITS`).

Inputs are seeded with the golden and broken container vectors, the Rust crate's save
files, the sample delta stream and checkpoints, then mutated at the byte level and — for
containers, JSON and safetensors headers — at the structure level (a decoded structure is
changed and everything re-signed, so the decoders behind the digests are reached).

Default suite: a fixed (derandomized) sample of a few hundred inputs. ``-m slow``: many
more, with fresh randomness. Long runs: the atheris entry points in ``fuzz/``.
"""

from __future__ import annotations

import json
import signal
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.targets import (
    FUZZ_LIMITS,
    FUZZ_MAX_LINE,
    MiB,
    container_target,
    jsonl_target,
    legacy_target,
    run_one,
    safetensors_bytes,
    safetensors_target,
    seed_corpus,
)
from tests.reliability.conftest import VECTORS
from tests.reliability.crafting import Rebuild, delete_path, node_paths, set_path
from thermo_cli.formats import jsonl

TIME_BOUND = 10.0
"""Seconds one input may take (generous: the machine is shared; a hang takes forever)."""
MEMORY_BOUND = 12 * FUZZ_LIMITS.max_value_bytes
"""Peak bytes one input may allocate: a small multiple of the largest cap in force."""


class Hang(BaseException):
    """Raised by the watchdog; a BaseException so that no ``except Exception`` swallows it."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"one input ran longer than {TIME_BOUND} s")


@pytest.fixture(scope="module", autouse=True)
def _tracing() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
        signal.signal(signal.SIGALRM, previous)


def guarded(target: Callable[[bytes], None], data: bytes) -> bool:
    """Run a target under the watchdog and the memory bound; True if it accepted the input."""
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    signal.setitimer(signal.ITIMER_REAL, TIME_BOUND)
    try:
        accepted = run_one(target, data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    peak = tracemalloc.get_traced_memory()[1] - base
    assert peak <= MEMORY_BOUND + 8 * len(data), f"allocated {peak} bytes for a {len(data)}-byte input"
    return accepted


QUICK = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
SLOW = settings(
    max_examples=3000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- strategies ------------------------------------------------------------------------------------

HUGE = [
    0,
    1,
    -1,
    255,
    256,
    2**16,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53,
    2**63 - 1,
    2**63,
    2**64 - 1,
    10**12,
    -(2**63),
]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
"""Text without lone surrogates (JSON encoders escape them, JSON decoders refuse them)."""

hostile_scalars = st.one_of(
    st.sampled_from(HUGE),
    st.integers(min_value=-(2**70), max_value=2**70),
    text,
    st.binary(max_size=48),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(HUGE),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


def _mutate(draw: Callable[[Any], Any], obj: Any, values: Any = hostile_values) -> bool:
    """Change one node of a decoded structure (set, delete or add); False if it has none."""
    paths = list(node_paths(obj))
    if not paths:
        return False
    path = paths[draw(st.integers(0, len(paths) - 1))]
    op = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
    if op == "set":
        set_path(obj, path, draw(values))
    elif op == "delete":
        delete_path(obj, path)
    else:
        parent = obj
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict):
            parent[draw(text)] = draw(values)
        else:
            parent.append(draw(values))
    return True


@st.composite
def byte_mutated(draw: Callable[[Any], Any], seeds: list[bytes]) -> bytes:
    data = bytearray(seeds[draw(st.integers(0, len(seeds) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "truncate", "insert", "delete", "duplicate", "int"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            n = draw(st.integers(1, 256))
            data[pos:pos] = data[pos : pos + n]
        elif kind == "int" and len(data) >= pos + 8:
            data[pos : pos + 8] = struct.pack(
                "<Q", draw(st.sampled_from([h for h in HUGE if 0 <= h < 2**64]))
            )
    return bytes(data)


GOLDEN = [p.read_bytes() for p in sorted(VECTORS.glob("*.thermo"))]
CONTAINER_SEEDS = seed_corpus("container")


@st.composite
def resigned_container(draw: Callable[[Any], Any]) -> bytes:
    """A golden file whose trailer, meta, index, a directory chunk or a log record was changed
    and re-signed."""
    rb = Rebuild(GOLDEN[draw(st.integers(0, len(GOLDEN) - 1))])
    part = draw(st.sampled_from(["trailer", "meta", "index", "dir", "record", "record"]))
    if part == "meta":
        rb.meta_changed = _mutate(draw, rb.meta)
    elif part == "index":
        rb.index_changed = _mutate(draw, rb.index)
    elif part == "dir" and list(rb.dir_rows()):
        rows = list(rb.dir_rows())
        layer, i = rows[draw(st.integers(0, len(rows) - 1))]
        chunk = rb.dir_chunk(layer, i)
        _mutate(draw, chunk)
        rb.set_dir_chunk(layer, i, chunk)
    elif part == "record" and rb.segment_rows():
        segs = rb.segment_rows()
        row = segs[draw(st.integers(0, len(segs) - 1))]
        recs = rb.records(row)
        k = draw(st.integers(0, len(recs) - 1))
        rec = cbor2.loads(recs[k])
        _mutate(draw, rec)
        recs[k] = cbor2.dumps(rec, canonical=True)
        rb.set_records(row, recs)
    else:
        _mutate(draw, rb.trailer)
    return rb.finish()


LEGACY_SEEDS = seed_corpus("legacy")


@st.composite
def json_mutated(draw: Callable[[Any], Any], seeds: list[bytes]) -> bytes:
    doc = json.loads(seeds[draw(st.integers(0, len(seeds) - 1))])
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, doc, json_values)
    return json.dumps(doc, indent=draw(st.sampled_from([None, 2]))).encode()


DELTA_FIELDS = [*sorted(jsonl.DELTA_FIELDS), "junk"]  # every field the parser knows, and one it refuses
tensor_values = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["f32", "F16", "bf16", "i8", "u8", "bool", "f64", "x9", "F8_E4M3"]),
        "shape": st.lists(st.sampled_from(HUGE[:8]) | st.integers(-2, 5), max_size=4),
    },
    optional={
        "data": st.lists(json_values, max_size=6),
        "b64": text,
        "hex": text,
        "encoding": st.sampled_from(["ternary", "raw", "zz"]),
        "scales": json_values,
        "per_row": st.booleans(),
    },
)
delta_objects = st.dictionaries(
    st.sampled_from(DELTA_FIELDS),
    st.one_of(
        json_values,
        tensor_values,
        st.sampled_from(["create", "update", "delete", "merge"]),
        st.fixed_dictionaries({"b64": text}),
        st.fixed_dictionaries({"hex": text}),
    ),
    max_size=8,
)


@st.composite
def jsonl_streams(draw: Callable[[Any], Any]) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.integers(0, 5))
        if choice <= 2:
            obj = draw(delta_objects)
            obj.setdefault("op", draw(st.sampled_from(["create", "update", "delete", "merge"])))
            obj.setdefault("key", draw(text.filter(bool)))
            if obj["op"] != "delete":
                obj.setdefault("value", draw(st.one_of(text, tensor_values)))
            lines.append(json.dumps(obj).encode())
        elif choice == 1:
            lines.append(draw(byte_mutated(seed_corpus("jsonl")[1:])))
        elif choice == 2:
            lines.append(draw(st.binary(max_size=64)))
        else:
            lines.append(json.dumps(draw(json_values)).encode())
    sep = draw(st.sampled_from([b"\n", b"\r\n"]))
    return sep.join(lines)


dtypes = st.sampled_from(
    [
        "F64",
        "F32",
        "F16",
        "BF16",
        "I64",
        "I32",
        "I16",
        "I8",
        "U8",
        "BOOL",
        "U16",
        "U32",
        "U64",
        "F8_E4M3",
        "F8_E5M2",
        "F4",
        "Q4",
        "",
        "f32",
    ]
)


@st.composite
def safetensors_files(draw: Callable[[Any], Any]) -> bytes:
    header: dict[str, Any] = {}
    pos = 0
    for i in range(draw(st.integers(0, 4))):
        shape = draw(st.lists(st.integers(0, 4) | st.sampled_from([2**31, 2**63 - 1, -1]), max_size=3))
        numel = 1
        for d in shape:
            numel *= max(d, 0)
        size = draw(
            st.sampled_from([numel, numel * 2, numel * 4, numel * 8])
            | st.integers(0, 64)
            | st.sampled_from(HUGE[:12])
        )
        start = draw(st.sampled_from([pos, pos, max(0, pos - 1), pos + 1]))
        header[draw(text) or f"t{i}"] = {
            "dtype": draw(dtypes),
            "shape": shape,
            "data_offsets": [start, start + size],
        }
        pos = start + size
    if draw(st.booleans()):
        values = st.one_of(text, text, json_values)
        header["__metadata__"] = draw(st.dictionaries(text, values, max_size=3))
    if draw(st.booleans()) and header:
        name = next(iter(header))
        _mutate(draw, header[name], json_values)
    payload = draw(st.binary(max_size=128)) if draw(st.booleans()) else bytes(max(0, min(pos, 4096)))
    data = safetensors_bytes(header, payload)
    if draw(st.integers(0, 5)) == 0:
        data = struct.pack("<Q", draw(st.sampled_from([h for h in HUGE if 0 <= h < 2**64]))) + data[8:]
    return data


SAFETENSORS_SEEDS = seed_corpus("safetensors")

containers = st.one_of(resigned_container(), byte_mutated(CONTAINER_SEEDS))
legacy_inputs = st.one_of(json_mutated(LEGACY_SEEDS), byte_mutated(LEGACY_SEEDS))
jsonl_inputs = st.one_of(jsonl_streams(), byte_mutated(seed_corpus("jsonl")))
safetensors_inputs = st.one_of(safetensors_files(), byte_mutated(SAFETENSORS_SEEDS[1:]))


# --- the seeds themselves ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, target",
    [
        ("container", container_target),
        ("legacy", legacy_target),
        ("jsonl", jsonl_target),
        ("safetensors", safetensors_target),
    ],
)
def test_seed_corpus_is_handled(name: str, target: Callable[[bytes], None]) -> None:
    results = [guarded(target, seed) for seed in seed_corpus(name)]
    assert any(results), f"no {name} seed is accepted: the target does not reach the reader"
    if name == "container":
        assert not all(results), "the broken vectors must be refused"


# --- quick fuzzing (fixed sample) -----------------------------------------------------------------


@QUICK
@given(containers)
def test_container_reader_fuzz(data: bytes) -> None:
    guarded(container_target, data)


@QUICK
@given(legacy_inputs)
def test_legacy_reader_fuzz(data: bytes) -> None:
    guarded(legacy_target, data)


@QUICK
@given(jsonl_inputs)
def test_jsonl_parser_fuzz(data: bytes) -> None:
    guarded(jsonl_target, data)


@QUICK
@given(safetensors_inputs)
def test_safetensors_importer_fuzz(data: bytes) -> None:
    guarded(safetensors_target, data)


def test_jsonl_line_cap_holds_under_fuzzing() -> None:
    long_line = b'{"op": "create", "key": "k", "value": "' + b"x" * (FUZZ_MAX_LINE + 10) + b'"}\n'
    assert guarded(jsonl_target, long_line + b'{"op": "create", "key": "b", "value": "v"}\n') is False


# --- slow fuzzing -----------------------------------------------------------------------------------


@pytest.mark.slow
@SLOW
@given(containers)
def test_container_reader_fuzz_long(data: bytes) -> None:
    guarded(container_target, data)


@pytest.mark.slow
@SLOW
@given(legacy_inputs)
def test_legacy_reader_fuzz_long(data: bytes) -> None:
    guarded(legacy_target, data)


@pytest.mark.slow
@SLOW
@given(jsonl_inputs)
def test_jsonl_parser_fuzz_long(data: bytes) -> None:
    guarded(jsonl_target, data)


@pytest.mark.slow
@SLOW
@given(safetensors_inputs)
def test_safetensors_importer_fuzz_long(data: bytes) -> None:
    guarded(safetensors_target, data)


def test_memory_bound_is_meaningful() -> None:
    assert 64 * MiB > MEMORY_BOUND  # far below the default caps (4 GiB values, 256 MiB blocks)
