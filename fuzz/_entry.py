"""Shared main() of the atheris entry points: seed corpus, instrumentation, the fuzz loop.

``python fuzz/fuzz_<target>.py [CORPUS_DIR ...] [libFuzzer flags]`` — with no corpus
directory, ``fuzz/corpus/<target>/`` is created and seeded from the repository's golden,
legacy and sample files first (:func:`fuzz.targets.seed_corpus`). Crashes (any exception
that is not a ``thermo_cli.errors`` class, or a per-input timeout) are written by libFuzzer
as ``crash-*`` / ``timeout-*`` files in the working directory.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def seed_directory(name: str) -> Path:
    """``fuzz/corpus/<name>/``, filled with the seed inputs (content-addressed file names)."""
    from fuzz.targets import seed_corpus

    directory = ROOT / "fuzz" / "corpus" / name
    directory.mkdir(parents=True, exist_ok=True)
    for data in seed_corpus(name):
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return directory


def _import_library() -> None:
    import importlib
    import pkgutil

    import thermo_cli

    for info in pkgutil.walk_packages(thermo_cli.__path__, "thermo_cli."):
        if not info.name.startswith("thermo_cli.cli"):
            importlib.import_module(info.name)


def main(name: str) -> None:
    import atheris

    with atheris.instrument_imports(include=["thermo_cli"]):
        _import_library()  # the library imports lazily: load (and instrument) all of it now
        from fuzz.targets import TARGETS, run_one

    target = TARGETS[name]

    def test_one_input(data: bytes) -> None:
        run_one(target, data)

    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        argv.append(str(seed_directory(name)))
    if not any(a.startswith("-timeout=") for a in argv):
        argv.append("-timeout=10")
    if not any(a.startswith("-rss_limit_mb=") for a in argv):
        argv.append("-rss_limit_mb=1024")
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
