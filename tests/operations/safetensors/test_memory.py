"""Peak memory of an import follows the largest tensor, not the file (slow: writes ~200 MB)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from thermo_cli.operations.safetensors import OutTensor, write_safetensors

_CHILD = """
import json, sys
import numpy, zstandard
import thermo_cli.container.writer, thermo_cli.engine.thermogram, thermo_cli.integrity.state
from thermo_cli.operations.safetensors import import_safetensors

def hwm():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

base = hwm()
import_safetensors([sys.argv[1]], sys.argv[2])
print(json.dumps({"base": base, "peak": hwm()}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for VmHWM")
def test_peak_memory_grows_with_the_largest_tensor_not_the_file(tmp_path: Path) -> None:
    largest = 24 * 1024 * 1024
    specs = [OutTensor(f"layer.{i}.weight", "F32", (largest // 4 // 1024, 1024)) for i in range(8)]
    rng = np.random.default_rng(0)
    src = write_safetensors(
        tmp_path / "big.safetensors",
        specs,
        lambda t: (rng.standard_normal(t.nbytes // 4) * 0.02).astype("<f4").tobytes(),
    )
    size = src.stat().st_size
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(tmp_path / "big.thermo")],
        check=True,
        capture_output=True,
        text=True,
    )
    rss = json.loads(done.stdout)
    growth = rss["peak"] - rss["base"]
    assert growth < 3 * largest + 48 * 1024 * 1024 < size
