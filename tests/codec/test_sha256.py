"""The read path's SHA-256 gives OpenSSL's digests, and loads OpenSSL only past its budget."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thermo_cli.codec import sha256


@given(st.binary(max_size=5000))
def test_digests_equal_hashlib_for_every_buffer_type(data: bytes):
    expected = hashlib.sha256(data)
    for buf in (data, bytearray(data), memoryview(data)):
        assert sha256.digest(buf) == expected.digest()
        assert sha256.hexdigest(buf) == expected.hexdigest()


def test_the_builtin_module_agrees_with_openssl_on_long_inputs():
    """The built-in module, called directly (the budget would send these to OpenSSL)."""
    builtin = sha256._builtin
    if builtin is None:
        pytest.skip("this interpreter was built without its own SHA-256 module (everything uses OpenSSL)")
    for n in (0, 55, 56, 64, 1000, 1 << 16, (1 << 20) + 3):
        data = bytes(range(256)) * (n // 256) + bytes(n % 256)
        assert builtin(data).digest() == hashlib.sha256(data).digest(), n


_PROBE = """
import sys
from thermo_cli.codec import sha256
sizes = [int(a) for a in sys.argv[1:]]
loaded = []
for n in sizes:
    sha256.digest(bytes(n))
    loaded.append("hashlib" in sys.modules)
print(" ".join("openssl" if x else "builtin" for x in loaded))
"""


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([100, 4096, 32], "builtin builtin builtin"),
        ([sha256.BUILTIN_BUDGET + 1], "openssl"),
        ([sha256.BUILTIN_BUDGET // 2, sha256.BUILTIN_BUDGET // 2, 1], "builtin builtin openssl"),
    ],
    ids=["small-reads", "one-long-input", "budget-spent"],
)
@pytest.mark.skipif(sha256._builtin is None, reason="no built-in SHA-256 module: OpenSSL from the start")
def test_openssl_is_loaded_only_once_the_budget_is_spent(sizes: list[int], expected: str):
    argv = [sys.executable, "-c", _PROBE, *map(str, sizes)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert r.stdout.split() == expected.split()
