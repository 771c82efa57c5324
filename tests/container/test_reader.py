"""Reader lifetime: explicit close, context manager, and no noise when a reader is left open."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from thermo_cli import store
from thermo_cli.container.reader import Reader

VECTOR = Path(__file__).resolve().parents[2] / "format" / "vectors" / "appended.thermo"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_close_is_idempotent_and_the_context_manager_closes():
    with Reader(VECTOR) as r:
        assert not r.closed
    assert r.closed
    r.close()
    assert r.closed


def test_a_forgotten_reader_releases_its_descriptor_when_collected():
    before = _open_fds()
    r = Reader(VECTOR)
    assert _open_fds() == before + 1
    del r
    gc.collect()
    assert _open_fds() == before


def test_a_reader_outliving_its_module_at_shutdown_closes_silently():
    """At interpreter exit module globals are wiped before the last objects die; a reader
    dying then must still close its file and print nothing (a __del__ that looks up module
    globals printed "Exception ignored ... 'NoneType' object has no attribute 'suppress'")."""
    code = (
        "import os, sys\n"
        "import thermo_cli.container.reader as m\n"
        f"r = m.Reader({str(VECTOR)!r})\n"
        "fd = r._source._fd\n"
        "for name in list(vars(m)):\n"
        "    if not name.startswith('__'):\n"
        "        setattr(m, name, None)\n"
        "del r\n"
        "try:\n"
        "    os.fstat(fd)\n"
        "    sys.exit('descriptor still open')\n"
        "except OSError:\n"
        "    pass\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_readers_left_open_at_exit_print_nothing():
    code = (
        "from thermo_cli import store\n"
        "from thermo_cli.container.reader import Reader\n"
        f"keep = [Reader({str(VECTOR)!r}) for _ in range(3)]\n"
        f"tg = store.load({str(VECTOR)!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""


def test_loaded_thermograms_keep_working_after_other_readers_close():
    tg = store.load(VECTOR)
    with Reader(VECTOR):
        pass
    assert tg.keys() == sorted(tg.keys())
    assert all(tg.read(k) is not None for k in tg)
