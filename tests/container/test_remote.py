"""Reading containers at URLs: range requests against a real HTTP server on loopback,
fsspec's memory filesystem, the block cache, and one clear error for each way it fails."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import fsspec
import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.remote_servers import FileServer
from thermo_cli import store
from thermo_cli.config.remote import RemoteSettings, use_remote
from thermo_cli.container.reader import Reader
from thermo_cli.container.remote import TAIL_WINDOW, RemoteSource, expand_url
from thermo_cli.container.source import LocalSource, open_source
from thermo_cli.errors import BadMagicError, NotFoundError, RemoteError, TruncatedError
from thermo_cli.operations.safetensors import import_safetensors

SMALL = "small.bias"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``big.thermo`` (~32 MB of float32 weights and one small bias)
    and ``small.thermo`` (one text entry, uncommitted)."""
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(7)
    tensors = {f"w{i}": rng.standard_normal((768, 1024)).astype(np.float32) for i in range(12)}
    tensors[SMALL] = np.arange(16, dtype=np.float32)
    save_file(tensors, str(root / "in.safetensors"))
    import_safetensors([root / "in.safetensors"], root / "big.thermo")
    from tests.operations.audit.conftest import make_tg

    store.create(root / "small.thermo", make_tg())
    return root


@pytest.fixture(scope="module")
def server(served: Path):
    with FileServer(str(served)) as srv:
        yield srv


@pytest.fixture
def srv(server: FileServer) -> FileServer:
    server.count.reset()
    return server


def test_a_small_tensor_of_a_big_checkpoint_costs_a_few_range_reads(srv: FileServer, served: Path) -> None:
    size = (served / "big.thermo").stat().st_size
    got = store.read(f"{srv.url}/big.thermo", SMALL)
    assert got is not None and got.value == np.arange(16, dtype=np.float32).tobytes()
    assert srv.count.bytes <= 0.05 * size
    # the head window, the tail window (footer, trailer, meta, index, directory) and the
    # one data chunk holding the value; one HEAD for the size
    assert srv.count.gets <= 3 and srv.count.requests <= 4
    assert srv.count.ranges[:2] == [(0, 4096), (size - TAIL_WINDOW, size)]


def test_a_big_tensor_is_read_by_its_own_ranges_only(srv: FileServer, served: Path) -> None:
    local = store.read(served / "big.thermo", "w3")
    assert local is not None
    got = store.read(f"{srv.url}/big.thermo", "w3")
    assert got is not None and got.value == local.value
    # the chunks the value's bytes touch (at most one more at each end), one request each
    assert srv.count.bytes < len(local.value) + 2 * (1 << 20) + TAIL_WINDOW + 4096
    assert all(end - start <= (1 << 20) + 4096 for start, end in srv.count.ranges)


def test_every_entry_reads_the_same_through_memory_urls(served: Path) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/remote-test/small.thermo", (served / "small.thermo").read_bytes())
    try:
        local = store.load(served / "small.thermo", layers="full", log="full")
        remote = store.load("memory://remote-test/small.thermo", layers="full", log="full")
        assert remote.keys() == local.keys()
        names = local.keys()
        for key in names:
            assert remote.read_entry(key) == local.read_entry(key)
        assert [r.hash for r in remote.records] == [r.hash for r in local.records]
        assert store.info(remote).path == "memory://remote-test/small.thermo"
    finally:
        fs.rm("/remote-test", recursive=True)


def test_reads_from_many_threads_return_the_right_bytes(srv: FileServer, served: Path) -> None:
    data = (served / "big.thermo").read_bytes()
    src = RemoteSource(f"{srv.url}/big.thermo")
    offsets = [(i * 997_331) % (len(data) - 5000) for i in range(40)]
    bad: list[int] = []

    def work(off: int) -> None:
        if src.pread(off, 4321) != data[off : off + 4321]:
            bad.append(off)

    threads = [threading.Thread(target=work, args=(o,)) for o in offsets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    src.close()
    assert bad == [] and src.closed


def test_the_block_cache_makes_a_second_read_fetch_nothing(srv: FileServer, tmp_path: Path) -> None:
    with use_remote(RemoteSettings(cache_dir=str(tmp_path / "cache"))):
        assert store.read(f"{srv.url}/big.thermo", SMALL) is not None
        first = srv.count.bytes
        srv.count.reset()
        assert store.read(f"{srv.url}/big.thermo", SMALL) is not None
    assert first > 0
    assert srv.count.bytes == 0 and srv.count.gets == 0


def test_the_block_cache_never_mixes_an_old_version_into_a_rewritten_object(
    served: Path, tmp_path: Path
) -> None:
    from tests.operations.audit.conftest import make_tg

    root = tmp_path / "www"
    root.mkdir()
    store.create(root / "x.thermo", make_tg(seed=1))
    with FileServer(str(root)) as srv, use_remote(RemoteSettings(cache_dir=str(tmp_path / "cache"))):
        url = f"{srv.url}/x.thermo"
        assert store.read(url, "key1").value == b"value 1 25"
        store.create(root / "x.thermo", make_tg(seed=2), overwrite=True)  # same size, new bytes
        os.utime(root / "x.thermo", ns=(1, 1))
        assert store.read(url, "key1").value == b"value 2 25"


def test_a_missing_object_is_not_found(srv: FileServer) -> None:
    with pytest.raises(NotFoundError, match=r"/nothing\.thermo: no such object"):
        store.read(f"{srv.url}/nothing.thermo", "k")
    with pytest.raises(NotFoundError, match="no such object"):
        store.read("memory://no-such-bucket/x.thermo", "k")


def test_a_truncated_object_fails_without_searching_back(srv: FileServer, served: Path) -> None:
    data = (served / "big.thermo").read_bytes()
    cut = served / "cut.thermo"
    cut.write_bytes(data[: len(data) // 2])
    try:
        with pytest.raises(TruncatedError, match="does not end in a complete commit"):
            store.read(f"{srv.url}/cut.thermo", SMALL)
        assert srv.count.bytes <= 4096 + TAIL_WINDOW
    finally:
        cut.unlink()


def test_an_object_that_is_not_a_container_is_bad_magic(srv: FileServer, served: Path) -> None:
    (served / "notes.json").write_text('{"a": 1}')
    with pytest.raises(BadMagicError, match=r"notes\.json: not a \.thermo container"):
        store.load(f"{srv.url}/notes.json")


def test_a_server_that_ignores_ranges_is_refused_before_a_full_download(served: Path) -> None:
    size = (served / "big.thermo").stat().st_size
    with (
        FileServer(str(served), honour_range=False) as srv,
        pytest.raises(RemoteError, match="ignores HTTP range requests"),
    ):
        store.read(f"{srv.url}/big.thermo", SMALL)
    assert srv.count.bytes < size


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuch://bucket/m.thermo", "unknown URL protocol 'nosuch'"),
        ("http://127.0.0.1:1/m.thermo", "http://127.0.0.1:1/m.thermo: "),
    ],
)
def test_bad_urls_are_one_remote_error(url: str, message: str) -> None:
    with pytest.raises(RemoteError, match=message) as caught:
        store.read(url, "k")
    assert "\n" not in str(caught.value)


def test_writers_refuse_urls_before_touching_anything(served: Path) -> None:
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.errors import ValidationError

    for call in (
        lambda: store.create("s3://bucket/new.thermo", Thermogram(name="x")),
        lambda: store.edit("http://127.0.0.1:1/a.thermo").__enter__(),
        lambda: store.compact("memory://x/a.thermo"),
    ):
        with pytest.raises(ValidationError, match="is a URL; thermo reads URLs but writes only local files"):
            call()


def test_open_source_picks_local_or_remote(served: Path) -> None:
    src = open_source(str(served / "small.thermo"))
    assert isinstance(src, LocalSource) and src.local
    src.close()
    with Reader(served / "small.thermo") as r:
        assert r.source.local and r.file_size == (served / "small.thermo").stat().st_size


def test_url_prefixes_and_globs_expand_to_objects() -> None:
    fs = fsspec.filesystem("memory")
    for name in ("a.thermo", "b.thermo", "notes.txt", "deep/c.thermo"):
        fs.pipe(f"/fleet-test/{name}", b"x")
    try:
        assert expand_url("memory://fleet-test/") == [
            "memory://fleet-test/a.thermo",
            "memory://fleet-test/b.thermo",
            "memory://fleet-test/deep/c.thermo",
        ]
        assert expand_url("memory://fleet-test/*.thermo") == [
            "memory://fleet-test/a.thermo",
            "memory://fleet-test/b.thermo",
        ]
        assert expand_url("memory://fleet-test/a.thermo") == ["memory://fleet-test/a.thermo"]
    finally:
        fs.rm("/fleet-test", recursive=True)


def test_reading_a_local_file_does_not_import_fsspec(served: Path) -> None:
    code = (
        "import sys\n"
        "from thermo_cli import store\n"
        f"store.load({str(served / 'small.thermo')!r})\n"
        "assert 'fsspec' not in sys.modules, 'fsspec imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
