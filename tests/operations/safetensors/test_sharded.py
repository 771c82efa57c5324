"""Sharded checkpoints imported by workers: local processes, a Dask cluster, shards at URLs.

Whatever scans the shards, the thermogram written is the same file byte for byte (with
the container's random file id pinned: every new file gets a fresh one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.remote_servers import FileServer
from thermo_cli import errors, store
from thermo_cli.config.remote import RemoteSettings, use_remote
from thermo_cli.container import layout
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.safetensors import TernaryOptions, import_safetensors
from thermo_cli.operations.safetensors.importer import ShardJob, scan_shard

FIXED_ID = bytes(range(layout.FILE_ID_SIZE))


FIXED_UUID = "00000000-0000-4000-8000-000000000018"


@pytest.fixture(autouse=True)
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new file gets FIXED_ID and every new thermogram FIXED_UUID instead of random
    ids (the only inputs an import does not take from its arguments and the clock), so
    two imports compare byte for byte."""
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.operations.safetensors import importer

    monkeypatch.setattr(importer, "Thermogram", lambda name: Thermogram(name=name, id=FIXED_UUID))
    real = layout.new_prefix

    def new_prefix(file_id: bytes | None = None) -> bytes:
        return real(FIXED_ID if file_id is None else file_id)

    monkeypatch.setattr(store, "new_prefix", new_prefix)


def _checkpoint(root: Path, shards: int = 4) -> Path:
    """``root/ckpt``: a sharded checkpoint (index JSON + shards) of float, int and bias tensors."""
    d = root / "ckpt"
    d.mkdir()
    rng = np.random.default_rng(11)
    weight_map: dict[str, str] = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {
            f"layers.{s}.w{i}": rng.standard_normal((48, 96 + 8 * i)).astype(np.float32) for i in range(3)
        }
        tensors[f"layers.{s}.bias"] = rng.standard_normal(16).astype(np.float32)
        tensors[f"layers.{s}.ids"] = np.arange(10, dtype=np.int64) * (s + 1)
        save_file(tensors, str(d / name), metadata={"format": "np", "shard": str(s)})
        weight_map.update(dict.fromkeys(tensors, name))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    return d


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return _checkpoint(tmp_path)


def _import(tmp_path: Path, inputs: list[str], label: str, **kwargs: object) -> bytes:
    out = tmp_path / label / "model.thermo"
    out.parent.mkdir()
    import_safetensors(inputs, out, **kwargs)  # type: ignore[arg-type]
    assert verify_file(str(out)).ok
    return out.read_bytes()


@pytest.mark.parametrize("ternary", [None, TernaryOptions()], ids=["raw", "ternary"])
def test_local_processes_write_the_same_file_as_a_serial_import(
    ckpt: Path, tmp_path: Path, ternary: TernaryOptions | None
) -> None:
    index = [str(ckpt / "model.safetensors.index.json")]
    serial = _import(tmp_path, index, "serial", ternary=ternary)
    parallel = _import(tmp_path, index, "two", ternary=ternary, jobs=2)
    three = _import(tmp_path, index, "three", ternary=ternary, jobs=3)
    assert parallel == serial and three == serial
    tg = store.load(tmp_path / "two" / "model.thermo")
    assert len(tg.keys()) == 20
    encodings = {tg.read_entry(k).tensor.encoding for k in ("layers.0.w0", "layers.3.w2")}
    assert encodings == {"raw" if ternary is None else "ternary"}
    assert tg.read_entry("layers.2.ids").tensor.encoding == "raw"


def test_a_glob_a_directory_and_the_index_give_the_same_file(ckpt: Path, tmp_path: Path) -> None:
    by_index = _import(tmp_path, [str(ckpt / "model.safetensors.index.json")], "index", jobs=2)
    by_glob = _import(tmp_path, [str(ckpt / "model-*.safetensors")], "glob", jobs=2)
    by_dir = _import(tmp_path, [str(ckpt)], "dir")
    listed = _import(tmp_path, [str(p) for p in sorted(ckpt.glob("*.safetensors"))], "listed")
    assert by_dir == by_index  # a directory with an index is imported through it
    assert by_glob == listed  # a glob is its sorted matches
    # the index's metadata is recorded in the provenance; the tensors are the same
    assert (
        store.load(tmp_path / "glob" / "model.thermo").keys()
        == store.load(tmp_path / "index" / "model.thermo").keys()
    )
    with pytest.raises(errors.NotFoundError, match=r"nothing-\*\.safetensors: matches no file"):
        import_safetensors([str(ckpt / "nothing-*.safetensors")], tmp_path / "x.thermo")


def test_a_dask_cluster_writes_the_same_file_and_reads_url_shards_itself(ckpt: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    index = [str(ckpt / "model.safetensors.index.json")]
    serial = _import(tmp_path, index, "serial", ternary=TernaryOptions())
    with (
        FileServer(str(ckpt)) as srv,
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
    ):
        on_dask = _import(tmp_path, index, "dask", ternary=TernaryOptions(), dask=cluster.scheduler_address)
        srv.count.reset()
        from_urls = _import(
            tmp_path,
            [f"{srv.url}/model.safetensors.index.json"],
            "urls",
            ternary=TernaryOptions(),
            dask=cluster.scheduler_address,
        )
        # this process downloaded every shard once; the workers read the tensors again
        shard_bytes = sum(p.stat().st_size for p in ckpt.glob("*.safetensors"))
        assert srv.count.bytes >= shard_bytes
    assert on_dask == serial
    assert from_urls == serial
    assert not list((tmp_path / "urls").glob(".thermo-shards-*"))  # the downloads are gone


def test_shards_at_urls_import_like_local_files(ckpt: Path, tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    for p in ckpt.iterdir():
        fs.pipe(f"/shards/ckpt/{p.name}", p.read_bytes())
    local = _import(tmp_path, [str(ckpt / "model.safetensors.index.json")], "local")
    by_index = _import(tmp_path, ["memory://shards/ckpt/model.safetensors.index.json"], "index", jobs=2)
    by_prefix = _import(tmp_path, ["memory://shards/ckpt/"], "prefix")
    by_glob = _import(tmp_path, ["memory://shards/ckpt/model-*.safetensors"], "glob")
    assert by_index == local
    assert by_prefix == by_glob
    report = import_safetensors(
        ["memory://shards/ckpt/model-*.safetensors"], tmp_path / "r.thermo", dry_run=True
    )
    assert report.files[0] == "memory://shards/ckpt/model-00001-of-00004.safetensors"
    with pytest.raises(errors.NotFoundError, match=r"memory://shards/none\.safetensors: no such object"):
        import_safetensors(["memory://shards/none.safetensors"], tmp_path / "n.thermo")
    assert not (tmp_path / "n.thermo").exists()
    assert not list(tmp_path.glob(".thermo-shards-*"))


def test_duplicate_tensor_names_across_shards_name_both_shards(tmp_path: Path) -> None:
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32), "x": np.ones(2, np.float32)}, str(a))
    save_file({"y": np.zeros((2, 2), np.float32), "x": np.ones(2, np.float32)}, str(b))
    with pytest.raises(
        errors.CorruptError, match=r"tensor 'x' appears in both .*a\.safetensors and .*b\.safetensors"
    ):
        import_safetensors([str(tmp_path / "*.safetensors")], tmp_path / "out.thermo", jobs=2)
    assert not (tmp_path / "out.thermo").exists()


def test_a_worker_refuses_a_shard_changed_since_it_was_checked(ckpt: Path) -> None:
    from thermo_cli.formats.safetensors.format import open_safetensors

    shard = ckpt / "model-00001-of-00004.safetensors"
    sf = open_safetensors(shard)
    job = ShardJob(str(shard), sf.stat_key, sf.tensors, (False,) * len(sf.tensors), None, size=sf.size)
    assert len(scan_shard(job)) == len(sf.tensors)
    shard.write_bytes(shard.read_bytes())  # same bytes, a new file: not the one validated
    with pytest.raises(errors.CorruptError, match="changed"):
        scan_shard(job)


def test_jobs_must_be_positive(ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(errors.ValidationError, match="jobs: must be at least 1"):
        import_safetensors([str(ckpt)], tmp_path / "m.thermo", jobs=0)


@pytest.fixture
def remote_ckpt(ckpt: Path) -> Iterator[str]:
    with FileServer(str(ckpt)) as srv, use_remote(RemoteSettings()):
        yield srv.url


def test_a_missing_http_shard_is_one_clear_error(remote_ckpt: str, tmp_path: Path) -> None:
    with pytest.raises(errors.NotFoundError, match="no such object"):
        import_safetensors([f"{remote_ckpt}/model-00009-of-00004.safetensors"], tmp_path / "m.thermo")
    assert list(tmp_path.iterdir()) == [tmp_path / "ckpt"]
