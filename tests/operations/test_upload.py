"""Uploading a finished thermogram: memory://, moto's S3 and a GCS emulator on loopback.

Verified first, put under a temporary key, size-checked, moved onto the target; on any
failure no object is left behind (neither the target nor the temporary key).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.remote_servers import moto_s3
from thermo_cli import errors, store
from thermo_cli.config.remote import RemoteSettings, use_remote
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.safetensors import import_safetensors
from thermo_cli.operations.upload import check_upload_target, upload_thermogram


@pytest.fixture
def model(tmp_path: Path) -> Path:
    src = tmp_path / "in.safetensors"
    rng = np.random.default_rng(5)
    save_file({"w": rng.standard_normal((64, 64)).astype(np.float32), "b": np.ones(4, np.float32)}, str(src))
    out = tmp_path / "model.thermo"
    import_safetensors([src], out)
    return out


@pytest.fixture
def memfs() -> Iterator[object]:
    fs = fsspec.filesystem("memory")
    fs.mkdir("/up")
    yield fs
    fs.rm("/up", recursive=True)


def _names(fs: object, prefix: str) -> list[str]:
    return sorted(p.rsplit("/", 1)[-1] for p in fs.find(prefix))  # type: ignore[attr-defined]


def test_upload_to_memory_then_read_back(model: Path, memfs: object) -> None:
    report = upload_thermogram(model, "memory://up/run/model.thermo")
    assert report.bytes == model.stat().st_size
    assert report.head_hash == store.load(model).head_hash
    assert _names(memfs, "/up") == ["model.thermo"]  # no temporary key left
    assert (
        store.load("memory://up/run/model.thermo").read_entry("b").value == np.ones(4, np.float32).tobytes()
    )
    with pytest.raises(errors.RefusedError, match="already exists"):
        upload_thermogram(model, "memory://up/run/model.thermo")
    upload_thermogram(model, "memory://up/run/model.thermo", overwrite=True)


def test_a_file_that_fails_verification_is_not_uploaded(model: Path, memfs: object) -> None:
    data = bytearray(model.read_bytes())
    data[len(data) // 3] ^= 0x20
    bad = model.with_name("bad.thermo")
    bad.write_bytes(bytes(data))
    with pytest.raises(errors.ThermoError, match=r"bad\.thermo: fails verification"):
        upload_thermogram(bad, "memory://up/bad.thermo")
    assert _names(memfs, "/up") == []


def test_a_failed_upload_leaves_no_object(
    model: Path, memfs: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    def broken_mv(self: object, *args: object, **kwargs: object) -> None:
        raise OSError("connection reset by peer")

    monkeypatch.setattr(MemoryFileSystem, "mv", broken_mv)
    with pytest.raises(errors.RemoteError, match=r"memory://up/m\.thermo: upload failed: connection reset"):
        upload_thermogram(model, "memory://up/m.thermo")
    assert _names(memfs, "/up") == []


def test_bad_targets_are_one_clear_error(model: Path) -> None:
    with pytest.raises(errors.RemoteError, match="HTTP"):
        upload_thermogram(model, "https://example.invalid/m.thermo")
    with pytest.raises(errors.RemoteError, match="unknown URL protocol 'nope'"):
        upload_thermogram(model, "nope://b/m.thermo")
    with pytest.raises(errors.ValidationError, match="not a URL"):
        upload_thermogram(model, str(model.with_name("copy.thermo")))
    with pytest.raises(errors.ValidationError, match="names a prefix"):
        check_upload_target("memory://up/", overwrite=False)
    with pytest.raises(errors.NotFoundError, match="no such bucket or directory"):
        upload_thermogram(model, f"file://{model.parent}/missing/m.thermo")
    upload_thermogram(model, f"file://{model.parent}/copy.thermo")
    assert (model.parent / "copy.thermo").read_bytes() == model.read_bytes()
    names = sorted(p.name for p in model.parent.iterdir() if not p.name.endswith(".lock"))
    assert names == ["copy.thermo", "in.safetensors", "model.thermo"]  # no temporary file


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import boto3

    with moto_s3() as endpoint:
        # moto keeps its buckets per process: a name no other test module uses
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="uploads")
        yield endpoint


def test_upload_to_s3(model: Path, s3_endpoint: str) -> None:
    import boto3

    with use_remote(RemoteSettings(storage_options={"endpoint_url": s3_endpoint})):
        upload_thermogram(model, "s3://uploads/run-1/model.thermo")
        assert verify_file("s3://uploads/run-1/model.thermo").ok
        with pytest.raises(errors.NotFoundError, match=r"s3://no-bucket/m\.thermo: no such bucket"):
            upload_thermogram(model, "s3://no-bucket/m.thermo")
        with pytest.raises(errors.RefusedError):
            upload_thermogram(model, "s3://uploads/run-1/model.thermo")
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="uploads")["Contents"]
    ]
    assert keys == ["run-1/model.thermo"]


@pytest.fixture(scope="module")
def gcs_endpoint() -> Iterator[str]:
    """gcp-storage-emulator on loopback with bucket ``models``. gcsfs's experimental bucket
    probe (gRPC, which the emulator lacks) is switched off before gcsfs is imported."""
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    gcsfs = pytest.importorskip("gcsfs")
    if gcsfs.GCSFileSystem.__name__ != "GCSFileSystem":
        pytest.skip(
            "gcsfs was imported with its gRPC bucket probe on (set GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false)"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket="models")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_upload_to_gcs_and_read_back(model: Path, gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import gcsfs.retry

    # the emulator answers gcsfs's server-side move (moveTo) with 501, which gcsfs retries
    # for half a minute before copying and deleting: no retries for it here
    monkeypatch.setattr(gcsfs.retry, "errs", frozenset(gcsfs.retry.errs) - {501, "501"})
    opts = {"endpoint_url": gcs_endpoint, "token": "anon"}
    with use_remote(RemoteSettings(storage_options=opts)):
        upload_thermogram(model, "gs://models/run/model.thermo")
        tg = store.load("gs://models/run/model.thermo")
        assert tg.read_entry("b").value == np.ones(4, np.float32).tobytes()
        assert verify_file("gs://models/run/model.thermo").ok
        with pytest.raises(errors.NotFoundError, match="no such object"):
            store.load("gs://models/run/none.thermo")
        with pytest.raises(errors.NotFoundError, match="no such bucket"):
            upload_thermogram(model, "gs://no-bucket/m.thermo")
        fs = fsspec.filesystem("gs", **opts)
        assert fs.ls("models/run") == ["models/run/model.thermo"]
