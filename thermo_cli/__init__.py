"""thermo: thermograms — plastic memory capsules with four temperature layers.

The library never prints or exits; errors are :mod:`thermo_cli.errors` classes.

The names a user reaches for first are here, loaded on first use (``import thermo_cli`` stays
cheap, so ``thermo get`` starts fast and numpy is imported only by what needs it):

* ``save_file(tensors, path, metadata=None)``, ``load_file(path)``, ``load(path, keys=None)`` —
  dicts of numpy arrays, as in ``safetensors.numpy`` (:mod:`thermo_cli.operations.tensorfile`);
* ``open(path)`` — a read-only ``Mapping[str, ndarray | bytes]`` view of any thermogram file;
* ``Thermogram`` (:mod:`thermo_cli.engine`) and ``edit(path)`` — the writer's ``with`` block
  (:func:`thermo_cli.store.edit`); ``store`` and ``errors`` are the modules themselves.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
"""``typing.TYPE_CHECKING`` without importing typing (a few ms) when ``thermo`` starts."""

__version__ = "0.1.0"
"""The one place the version is written: packaging reads it (pyproject ``dynamic``)."""

if TYPE_CHECKING:
    from typing import Any

    from thermo_cli import errors, store
    from thermo_cli.engine import Thermogram
    from thermo_cli.operations.tensorfile import TensorView, load, load_file, save_file
    from thermo_cli.operations.tensorfile import open_view as open
    from thermo_cli.store import edit

_LAZY: dict[str, tuple[str, str | None]] = {
    "save_file": ("thermo_cli.operations.tensorfile", "save_file"),
    "load_file": ("thermo_cli.operations.tensorfile", "load_file"),
    "load": ("thermo_cli.operations.tensorfile", "load"),
    "open": ("thermo_cli.operations.tensorfile", "open_view"),
    "TensorView": ("thermo_cli.operations.tensorfile", "TensorView"),
    "Thermogram": ("thermo_cli.engine", "Thermogram"),
    "edit": ("thermo_cli.store", "edit"),
    "store": ("thermo_cli.store", None),
    "errors": ("thermo_cli.errors", None),
}
"""Public name → (module, attribute or None for the module itself), imported on first use."""

__all__ = [
    "TensorView",
    "Thermogram",
    "__version__",
    "edit",
    "errors",
    "load",
    "load_file",
    "open",
    "save_file",
    "store",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module when it is first used (PEP 562)."""
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'thermo_cli' has no attribute {name!r}") from None
    __import__(module_name)  # importlib.import_module without importing importlib (start-up)
    module = sys.modules[module_name]
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
