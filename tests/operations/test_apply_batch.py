"""``apply_file``'s batch road writes the same file as the line-by-line road.

Chunks of plain deltas are parsed into columns, encoded from tables and sealed with one
join and one hash each (``DeltaParser.plain_batch``, ``Thermogram.apply_plain``); every
other chunk goes line by line. Whatever the mix, the file must come out byte for byte as
when every line takes the general road, under every consolidation policy (the policy is
checked, and the clock read, exactly where the general road does), and a bad line must
still fail with its number and leave the file as it was.
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thermo_cli import store
from thermo_cli.codec import worker as transport
from thermo_cli.config.clock import SteppingClock, use_clock
from thermo_cli.config.engine import ConsolidationPolicy, DeltaCount, DirtySize, TimePeriod
from thermo_cli.config.limits import current_limits
from thermo_cli.container import writer
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import ValidationError
from thermo_cli.formats import jsonl
from thermo_cli.operations import apply as apply_op

T0 = 1_800_000_000 * 10**9
MINUTE = 60 * 10**9
POLICIES = {
    "manual": ConsolidationPolicy.manual(),
    "count": ConsolidationPolicy((DeltaCount(4),), True, True),
    "count+period": ConsolidationPolicy((DeltaCount(6), TimePeriod(1)), True, True),
    "size": ConsolidationPolicy((DirtySize(900),), True, False),
}

keys = st.sampled_from(["k", "key/1", "ключ", "键🔑", "a\u0301", "x" * 40]) | st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "v" * 300, "line\n"]
)
strengths = st.none() | st.sampled_from([0.0, -0.0, 1.0, 0.5, 0.8, 1e-45]) | st.floats(0, 1)


@st.composite
def delta_line(draw: st.DrawFn) -> bytes:
    """One delta line: mostly plain (op, key, text value, strength, source), else any form."""
    op = draw(st.sampled_from(["create", "update", "merge", "delete", "Update"]))
    obj: dict = {"op": op, "key": draw(keys)}
    kind = draw(st.sampled_from(["text", "text", "text", "b64", "tensor", "ternary", "meta"]))
    if op != "delete":
        if kind == "b64":
            obj["value"] = {"b64": base64.b64encode(draw(st.binary(max_size=9))).decode()}
        elif kind == "tensor":
            n = draw(st.integers(1, 3))
            obj["value"] = {"dtype": "f32", "shape": [n], "data": [0.5] * n}
        else:
            obj["value"] = draw(texts)
    s = draw(strengths)
    if kind == "ternary":
        obj["ternary"] = draw(st.sampled_from([-1, 0, 1]))
    elif s is not None:
        obj["strength"] = s
    if kind == "meta":
        obj["meta"] = {"n": 1}
    if draw(st.booleans()):
        obj["source"] = draw(st.sampled_from(["bench", "miner", "é"]))
    return orjson.dumps(obj)


def _ids() -> Iterator[str]:
    return (f"00000000-0000-4000-8000-{i:012d}" for i in itertools.count())


@contextmanager
def _deterministic(general: bool) -> Iterator[None]:
    """Same clock readings and ids for both roads; ``general`` turns the batch road off."""
    ids = _ids()
    patches = [
        mock.patch.object(jsonl, "new_id", lambda: next(ids)),
        mock.patch.object(jsonl, "new_ids", lambda n: list(itertools.islice(ids, n))),
        mock.patch.object(apply_op, "_CHUNK_LINES", 3),  # mixed chunks within a small stream
    ]
    if general:
        patches.append(mock.patch.object(jsonl.DeltaParser, "plain_batch", lambda self, lines: None))
    with use_clock(SteppingClock(T0, 7 * MINUTE)), contextlib_all(patches):
        yield


@contextmanager
def contextlib_all(managers: list) -> Iterator[None]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        for m in managers:
            stack.enter_context(m)
        yield


def _fresh(path: Path, policy: ConsolidationPolicy, twin: Path) -> None:
    """A new file at ``path`` and the same bytes at ``twin`` (a file's ids are random)."""
    path.unlink(missing_ok=True)
    with use_clock(SteppingClock(T0)):
        tg = Thermogram(name="t")
        tg.create("seed", b"0")
        tg.set_policy(policy)
        store.create(path, tg)
    twin.write_bytes(path.read_bytes())


def _apply(path: Path, data: bytes, *, general: bool, auto: bool = True) -> int:
    with _deterministic(general):
        report = apply_op.apply_file(
            str(path), io.BytesIO(data), limits=current_limits(), auto_consolidate=auto
        )
    return report.applied


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(delta_line(), min_size=1, max_size=14), policy=st.sampled_from(sorted(POLICIES)))
def test_the_batch_road_writes_the_bytes_the_general_road_writes(tmp_path: Path, lines, policy) -> None:
    fast, slow = tmp_path / f"fast-{policy}.thermo", tmp_path / f"slow-{policy}.thermo"
    _fresh(fast, POLICIES[policy], slow)
    data = b"\n".join(lines) + b"\n"
    try:
        n_slow = _apply(slow, data, general=True)
    except ValidationError as exc:  # a refused stream is refused by both, with the same words
        before = fast.read_bytes()
        with pytest.raises(ValidationError) as fast_exc:
            _apply(fast, data, general=False)
        assert str(fast_exc.value) == str(exc)
        assert fast.read_bytes() == before
        return
    assert _apply(fast, data, general=False) == n_slow
    assert fast.read_bytes() == slow.read_bytes()


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_long_plain_stream_takes_the_batch_road_and_matches(tmp_path: Path, policy: str) -> None:
    lines = [
        orjson.dumps(
            {"op": "update", "key": f"key/{i % 7}", "value": f"v{i}", "strength": 0.8, "source": "s"}
        )
        for i in range(40)
    ]
    data = b"\n".join(lines) + b"\n"
    fast, slow = tmp_path / "fast.thermo", tmp_path / "slow.thermo"
    _fresh(fast, POLICIES[policy], slow)
    with mock.patch.object(
        Thermogram, "apply_plain", autospec=True, side_effect=Thermogram.apply_plain
    ) as spy:
        assert _apply(fast, data, general=False) == 40
    assert spy.call_count == 14  # 40 lines in chunks of 3: every chunk was a batch
    assert _apply(slow, data, general=True) == 40
    assert fast.read_bytes() == slow.read_bytes()
    assert store.load(fast).log_length == store.load(slow).log_length


def test_a_bad_line_after_plain_chunks_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "t.thermo"
    _fresh(path, POLICIES["manual"], tmp_path / "twin.thermo")
    before = path.read_bytes()
    good = [b'{"op":"create","key":"k%d","value":"v"}' % i for i in range(10)]
    for bad, reason in (
        (b'{"op":"create","key":"k","value":"v","op":"delete"}', "the name .op. appears twice"),
        (b'{"op":"create","key":"k","value":"v","strength":1.5}', "strength"),
        (b'{"op":"create","key":"k","value":"v"', "invalid JSON"),
        (b'{"op":"create","key":"","value":"v"}', "key"),
    ):
        data = b"\n".join([*good, bad, *good]) + b"\n"
        with pytest.raises(ValidationError, match=f"^line 11: .*{reason}"):
            _apply(path, data, general=False)
        assert path.read_bytes() == before


def test_a_delta_the_engine_refuses_in_a_batch_is_named_by_its_line(tmp_path: Path) -> None:
    """The engine's key cap is the parser's (max_key_bytes is at most 4096), so a batch the
    engine refuses cannot come from a stream; forced through, the line is still named."""
    path = tmp_path / "t.thermo"
    _fresh(path, POLICIES["manual"], tmp_path / "twin.thermo")
    batch = jsonl.DeltaParser(limits=current_limits()).plain_batch([b'{"op":"create","key":"a","value":""}'])
    assert batch is not None
    batch.key_sizes[0] = 5000  # as if the parser had let it through
    run = apply_op._PlainRun(batch, [7])
    with store.edit(path, dry_run=True) as tg, pytest.raises(ValidationError, match=r"^line 7: key: 5000"):
        apply_op._apply_run(tg, run, skip_invalid=False)


@pytest.mark.skipif(not transport.available(), reason="needs fork and memfd_create")
@pytest.mark.parametrize("mixed", [False, True], ids=["plain", "mixed"])
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_merkle_worker_changes_nothing_in_the_file(tmp_path: Path, monkeypatch, policy: str, mixed) -> None:
    """``second_core`` moves the hashing, never the bytes: with the worker taken up for any
    stream (its threshold at 1) the file is the one written without it, whether the
    worker's range is used (plain runs, no consolidation) or given up (a delete line or a
    consolidation turns the runs into records)."""
    monkeypatch.setattr(apply_op, "WORKER_MIN_DELTAS", 1)
    lines = [
        orjson.dumps({"op": "update", "key": f"k{i % 5}", "value": f"v{i}", "strength": 0.5, "source": "s"})
        for i in range(30)
    ]
    if mixed:
        lines[13] = orjson.dumps({"op": "delete", "key": "k1"})
    data = b"\n".join(lines) + b"\n"
    with_worker, without = tmp_path / "with.thermo", tmp_path / "without.thermo"
    _fresh(with_worker, POLICIES[policy], without)
    hashed_here = []
    real = writer.leaf_hashes_of
    monkeypatch.setattr(writer, "leaf_hashes_of", lambda items: hashed_here.append(len(items)) or real(items))
    for path, second_core in ((with_worker, True), (without, False)):
        with _deterministic(general=False):
            apply_op.apply_file(str(path), io.BytesIO(data), limits=current_limits(), second_core=second_core)
    assert with_worker.read_bytes() == without.read_bytes()
    if policy == "manual" and not mixed and apply_op._cores() > 1:
        assert hashed_here == [30]  # only the run without the worker hashed its records here
