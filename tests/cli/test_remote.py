"""The CLI on URLs: reading commands over a loopback HTTP server and moto's S3, writing
commands refusing URLs, fleet verify, and one line with a documented exit code per failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Thermo
from tests.remote_servers import FileServer, moto_s3

EXIT_VERIFY_FAILED, EXIT_BAD_INPUT, EXIT_NOT_FOUND = 1, 3, 6


@pytest.fixture
def served(filled: Path, thermo: Thermo, tmp_path: Path):
    """(server, local copy): ``filled`` with a checkpoint, served over HTTP as /t.thermo."""
    assert thermo("checkpoint", filled).code == 0
    root = tmp_path / "www"
    root.mkdir()
    shutil.copyfile(filled, root / "t.thermo")
    with FileServer(str(root)) as srv:
        yield srv, root / "t.thermo"


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("thermo: error: "), err
    return lines[0]


def test_reading_commands_take_urls(served, thermo: Thermo, tmp_path: Path) -> None:
    srv, local = served
    url = f"{srv.url}/t.thermo"
    for args in (
        ("keys",),
        ("stats", "--json"),
        ("log", "--json"),
        ("verify", "--json"),
    ):
        remote_run, local_run = thermo(args[0], url, *args[1:]), thermo(args[0], local, *args[1:])
        assert remote_run.code == 0 == local_run.code, remote_run.err
        if args[0] != "stats":
            assert remote_run.out.replace(url, str(local)) == local_run.out
    key = thermo("keys", url).out.split()[0]
    assert thermo("get", url, key).out == thermo("get", local, key).out
    proof = thermo("prove", url, key)
    assert proof.code == 0, proof.err
    assert json.loads(proof.out)["key"] == key
    stats = json.loads(thermo("stats", url, "--json").out)
    assert stats["file"] == url and stats["file_bytes"] == local.stat().st_size


@pytest.mark.parametrize(
    "command",
    [
        ("apply", "{url}", "-"),
        ("init", "{url}"),
        ("reinforce", "{url}", "k", "0.1"),
        ("consolidate", "{url}"),
        ("checkpoint", "{url}"),
        ("export", "{local}", "{url}.jsonl"),
        ("export-safetensors", "{local}", "{url}.safetensors"),
        ("compact", "{url}"),
    ],
)
def test_writing_commands_refuse_urls_in_one_line(served, thermo: Thermo, command) -> None:
    srv, local = served
    before = local.read_bytes()
    args = [a.format(url=f"{srv.url}/t.thermo", local=local) for a in command]
    run = thermo(*args, input="")
    assert run.code == EXIT_BAD_INPUT, run.err
    assert "is a URL; thermo reads URLs but writes only local files" in _one_error_line(run.err)
    assert local.read_bytes() == before


def test_remote_failures_are_one_line_each(served, thermo: Thermo) -> None:
    srv, _ = served
    cases = [
        ((f"{srv.url}/missing.thermo", "k"), EXIT_NOT_FOUND, "no such object"),
        (("nosuch://b/t.thermo", "k"), EXIT_BAD_INPUT, "unknown URL protocol"),
        (("http://127.0.0.1:1/t.thermo", "k"), EXIT_BAD_INPUT, "cannot connect"),
    ]
    for args, code, text in cases:
        run = thermo("get", *args)
        assert run.code == code and text in _one_error_line(run.err), run.err


def test_a_server_ignoring_ranges_is_one_line(thermo: Thermo, tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    weights = np.random.default_rng(1).standard_normal((256, 1024)).astype(np.float32)
    save_file({"w": weights}, str(tmp_path / "w.safetensors"))
    assert thermo("import-safetensors", tmp_path / "w.safetensors", tmp_path / "w.thermo").code == 0
    size = (tmp_path / "w.thermo").stat().st_size
    with FileServer(str(tmp_path), honour_range=False) as plain:
        run = thermo("get", f"{plain.url}/w.thermo", "w", "--json")
    assert run.code == EXIT_BAD_INPUT
    assert "ignores HTTP range requests" in _one_error_line(run.err)
    assert size > 128 * 1024  # more than the windows a read fetches


def test_a_bad_storage_option_is_a_usage_error(served, thermo: Thermo) -> None:
    srv, _ = served
    run = thermo("--storage-option", "novalue", "keys", f"{srv.url}/t.thermo")
    assert run.code == 2 and "KEY=VALUE" in run.err


def test_the_remote_cache_serves_a_second_run(served, thermo: Thermo, tmp_path: Path) -> None:
    srv, _ = served
    url = f"{srv.url}/t.thermo"
    cache = tmp_path / "cache"
    assert thermo("keys", url, "--remote-cache", cache).code == 0
    srv.count.reset()
    assert thermo("--remote-cache", str(cache), "keys", url).code == 0
    assert srv.count.bytes == 0


def test_storage_options_reach_s3(filled: Path, thermo: Thermo) -> None:
    import boto3

    with moto_s3() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="fleet")
        for name in ("a", "b"):
            s3.put_object(Bucket="fleet", Key=f"run/{name}.thermo", Body=filled.read_bytes())
        option = f"endpoint_url={endpoint}"
        keys = thermo("--storage-option", option, "keys", "s3://fleet/run/a.thermo")
        assert keys.code == 0 and keys.out == thermo("keys", filled).out
        fleet = thermo("verify", "s3://fleet/run/", "--storage-option", option)
        missing = thermo("get", "s3://fleet/run/none.thermo", "k", "--storage-option", option)
    assert fleet.code == 0, fleet.out + fleet.err
    lines = [json.loads(line) for line in fleet.out.splitlines()]
    assert [line.get("path") for line in lines[:-1]] == ["s3://fleet/run/a.thermo", "s3://fleet/run/b.thermo"]
    assert lines[-1]["summary"] and lines[-1]["intact"] == 2
    assert missing.code == EXIT_NOT_FOUND and "no such object" in _one_error_line(missing.err)


def test_fleet_verify_prints_a_line_per_file_and_fails_if_one_fails(
    filled: Path, thermo: Thermo, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    for i in range(3):
        shutil.copyfile(filled, fleet / f"m{i}.thermo")
    ok = thermo("verify", str(fleet / "*.thermo"), "--jobs", "2")
    assert ok.code == 0, ok.err
    lines = [json.loads(line) for line in ok.out.splitlines()]
    assert len(lines) == 4 and all(line["ok"] for line in lines)
    assert lines[-1] == {**lines[-1], "summary": True, "files": 3, "intact": 3, "engine": "2 processes"}
    (fleet / "m1.thermo").write_bytes(b"garbage")
    bad = thermo("verify", fleet)
    assert bad.code == EXIT_VERIFY_FAILED
    lines = [json.loads(line) for line in bad.out.splitlines()]
    assert [line["ok"] for line in lines] == [True, False, True, False]
    assert lines[1]["error"]["code"] == "bad-magic" and lines[-1]["unreadable"] == 1


def test_fleet_options_that_do_not_fit_are_refused(filled: Path, thermo: Thermo) -> None:
    both = thermo("verify", filled, filled, "--jobs", "2", "--dask", "tcp://127.0.0.1:1")
    assert both.code == EXIT_BAD_INPUT and "alternatives" in _one_error_line(both.err)
    since = thermo("verify", filled, filled, "--since", filled)
    assert since.code == EXIT_BAD_INPUT and "apply to one file" in _one_error_line(since.err)
    none = thermo("verify", str(filled.parent / "nothing-*.thermo"))
    assert none.code == EXIT_NOT_FOUND and "matches no file" in _one_error_line(none.err)


def test_snn_stats_reads_a_url_and_snn_init_refuses_one(thermo: Thermo, tmp_path: Path) -> None:
    path = tmp_path / "net.thermo"
    assert thermo("snn", "init", path, "--neurons", "8", "--dim", "16", "--seed", "1").code == 0
    with FileServer(str(tmp_path)) as srv:
        remote = thermo("snn", "stats", f"{srv.url}/net.thermo", "--json")
        refused = thermo("snn", "init", f"{srv.url}/new.thermo")
    local = thermo("snn", "stats", path, "--json")
    assert remote.code == 0 == local.code, remote.err
    assert json.loads(remote.out) == {**json.loads(local.out), "file": f"{srv.url}/net.thermo"}
    assert refused.code == EXIT_BAD_INPUT and "is a URL" in _one_error_line(refused.err)
