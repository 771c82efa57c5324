"""Reading containers from S3: moto's S3 server on loopback, through s3fs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.remote_servers import moto_s3
from thermo_cli import store
from thermo_cli.config.remote import RemoteSettings, use_remote
from thermo_cli.container.remote import TAIL_WINDOW, expand_url
from thermo_cli.errors import NotFoundError, TruncatedError
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.safetensors import import_safetensors


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(endpoint, local dir): bucket ``models`` holding ``ckpt/big.thermo`` (~12 MB) and a cut copy."""
    import boto3

    root = tmp_path_factory.mktemp("s3")
    rng = np.random.default_rng(3)
    tensors = {f"w{i}": rng.standard_normal((512, 1024)).astype(np.float32) for i in range(6)}
    tensors["bias"] = np.ones(8, dtype=np.float32)
    save_file(tensors, str(root / "in.safetensors"))
    import_safetensors([root / "in.safetensors"], root / "big.thermo")
    data = (root / "big.thermo").read_bytes()
    with moto_s3() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="ckpt/big.thermo", Body=data)
        s3.put_object(Bucket="models", Key="ckpt/cut.thermo", Body=data[: len(data) - 1000])
        s3.put_object(Bucket="models", Key="ckpt/readme.txt", Body=b"hello")
        yield endpoint, root


@pytest.fixture
def s3(bucket: tuple[str, Path]) -> Iterator[Path]:
    endpoint, root = bucket
    with use_remote(RemoteSettings(storage_options={"endpoint_url": endpoint})):
        yield root


def test_one_tensor_of_an_s3_checkpoint_fetches_a_small_part(s3: Path) -> None:
    size = (s3 / "big.thermo").stat().st_size
    tg = store.load("s3://models/ckpt/big.thermo")
    assert tg.read_entry("bias") is not None
    assert tg.read_entry("bias").value == np.ones(8, dtype=np.float32).tobytes()
    origin = store.info(tg)
    assert origin is not None and origin.reader is not None
    src = origin.reader.source
    assert not src.local
    # the head and tail windows and the one data chunk (at most 1 MiB) holding the value
    assert src.requests <= 3
    assert src.fetched <= 4096 + TAIL_WINDOW + (1 << 20)
    assert src.fetched < 0.1 * size


def test_an_s3_checkpoint_reads_and_verifies_like_the_local_file(s3: Path) -> None:
    local = store.load(s3 / "big.thermo", layers="full")
    remote = store.load("s3://models/ckpt/big.thermo", layers="full")
    names = local.keys()
    for key in names:
        assert remote.read_entry(key) == local.read_entry(key)
    report = verify_file("s3://models/ckpt/big.thermo")
    assert report.ok and report.head_hash == verify_file(s3 / "big.thermo").head_hash


def test_missing_and_cut_objects_are_one_clear_error(s3: Path) -> None:
    with pytest.raises(NotFoundError, match=r"s3://models/ckpt/none\.thermo: no such object"):
        store.read("s3://models/ckpt/none.thermo", "bias")
    with pytest.raises(NotFoundError, match="no such object"):
        store.read("s3://no-such-bucket/x.thermo", "bias")
    with pytest.raises(TruncatedError, match="does not end in a complete commit"):
        store.read("s3://models/ckpt/cut.thermo", "bias")


def test_a_bucket_prefix_lists_its_containers(s3: Path) -> None:
    assert expand_url("s3://models/ckpt/") == ["s3://models/ckpt/big.thermo", "s3://models/ckpt/cut.thermo"]
    assert expand_url("s3://models/*/big.*") == ["s3://models/ckpt/big.thermo"]
