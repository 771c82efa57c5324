"""Fleet verify: many files and patterns, in-process, in local processes, on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.operations.audit.conftest import make_tg, write
from tests.remote_servers import FileServer
from thermo_cli.container.reader import Reader
from thermo_cli.errors import NotFoundError, ValidationError
from thermo_cli.operations.audit.fleet import (
    FleetOptions,
    FleetSummary,
    expand_targets,
    verify_fleet,
    verify_one,
)


def _tamper(path: Path) -> None:
    """Flip one byte inside the first layer chunk: verify fails, the file still opens."""
    with Reader(path) as r:
        _, off, n, _, _ = next(iter(r.all_chunks()))
    data = bytearray(path.read_bytes())
    data[off + n // 2] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """``fleet/`` with 5 intact files (one in a subdirectory), one tampered, one not a thermogram."""
    root = tmp_path / "fleet"
    (root / "sub").mkdir(parents=True)
    for i in range(4):
        write(root / f"m{i}.thermo", make_tg(seed=i))
    write(root / "sub" / "deep.thermo", make_tg(seed=9))
    write(root / "m4.thermo", make_tg(seed=4))
    _tamper(root / "m4.thermo")
    (root / "m5.thermo").write_bytes(b"not a thermogram at all")
    return root


def _strip(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "seconds"} for line in lines]


def test_patterns_expand_in_order_each_file_once(fleet: Path) -> None:
    got = expand_targets([str(fleet / "m1.thermo"), str(fleet / "m*.thermo"), str(fleet / "sub")])
    assert got == [str(fleet / f"m{i}.thermo") for i in (1, 0, 2, 3, 4, 5)] + [
        str(fleet / "sub" / "deep.thermo")
    ]
    assert expand_targets([str(fleet)])[-1] == str(fleet / "sub" / "deep.thermo")
    with pytest.raises(NotFoundError, match=r"nothing\*\.thermo: matches no file"):
        expand_targets([str(fleet / "nothing*.thermo")])
    with pytest.raises(ValidationError):
        expand_targets([])


def test_each_file_gets_one_line_and_the_summary_counts_them(fleet: Path) -> None:
    paths = expand_targets([str(fleet)])
    summary = FleetSummary(engine="")
    lines = list(verify_fleet(paths, FleetOptions(), summary=summary))
    assert [line["path"] for line in lines] == paths
    by_name = {Path(line["path"]).name: line for line in lines}
    assert by_name["m0.thermo"]["ok"] and by_name["m0.thermo"]["failure"] is None
    assert by_name["m0.thermo"]["head_hash"] and by_name["m0.thermo"]["records"] > 0
    assert not by_name["m4.thermo"]["ok"] and by_name["m4.thermo"]["failure"]["check"]
    assert by_name["m5.thermo"]["error"]["code"] == "bad-magic"
    assert (summary.files, summary.intact, summary.failed, summary.unreadable) == (7, 5, 1, 1)
    assert not summary.ok and summary.to_json()["summary"] is True


def test_a_missing_file_is_a_line_not_the_end_of_the_audit(tmp_path: Path) -> None:
    line = verify_one(str(tmp_path / "gone.thermo"), FleetOptions())
    assert line["ok"] is False and line["error"]["code"] == "not-found"


def test_local_processes_give_the_same_lines(fleet: Path) -> None:
    paths = expand_targets([str(fleet)])
    serial = list(verify_fleet(paths, FleetOptions()))
    summary = FleetSummary(engine="")
    parallel = list(verify_fleet(paths, FleetOptions(), jobs=2, summary=summary))
    assert _strip(parallel) == _strip(serial)
    assert summary.engine == "2 processes"
    with pytest.raises(ValidationError, match="jobs"):
        list(verify_fleet(paths, FleetOptions(), jobs=0))


def test_a_dask_local_cluster_gives_the_same_lines_for_files_and_urls(fleet: Path) -> None:
    distributed = pytest.importorskip("distributed")
    local = expand_targets([str(fleet)])
    with FileServer(str(fleet)) as srv:
        urls = [f"{srv.url}/m0.thermo", f"{srv.url}/m4.thermo", f"{srv.url}/missing.thermo"]
        paths = local + urls
        serial = list(verify_fleet(paths, FleetOptions()))
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            summary = FleetSummary(engine="")
            on_dask = list(
                verify_fleet(paths, FleetOptions(), dask=cluster.scheduler_address, summary=summary)
            )
    assert _strip(on_dask) == _strip(serial)
    assert summary.engine.startswith("dask ")
    assert (summary.intact, summary.failed, summary.unreadable) == (6, 2, 2)
    assert on_dask[-1]["error"]["code"] == "not-found"


def test_an_unreachable_scheduler_is_one_error(fleet: Path) -> None:
    pytest.importorskip("distributed")
    with pytest.raises(ValidationError, match="cannot reach the scheduler"):
        list(
            verify_fleet([str(fleet / "m0.thermo")], FleetOptions(), dask="tcp://127.0.0.1:1", dask_timeout=2)
        )
