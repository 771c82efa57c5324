"""Value classes without :mod:`dataclasses`: slotted classes with a written-out ``__init__``.

``@dataclass`` builds each class's methods from source text at import time (``exec``:
about 1 ms per class here) and ``import dataclasses`` loads :mod:`inspect` with ``ast``,
``dis`` and ``tokenize``; for the 20-odd value classes a ``thermo get`` touches, that was
about half of its start-up. These bases give the same behaviour from one definition each:
the fields are the class's annotated names, in order (the ``__init__`` order; ``__slots__``
must list the same names; a subclass adding private slots keeps its base's fields),
compared and shown in that order; ``_NOT_COMPARED`` names fields left out of
equality, hashing and repr (cached encodings). :class:`FrozenValue` refuses assignment
after ``__init__`` (which sets fields with :func:`object.__setattr__`) and is hashable, as a
frozen dataclass is; a mutable :class:`Value` is unhashable, as a dataclass with ``eq``.
:func:`replace` and :func:`fields` stand in for ``dataclasses.replace``/``fields``.
"""

from __future__ import annotations

TYPE_CHECKING = False
"""``typing.TYPE_CHECKING`` without importing typing at start-up."""

if TYPE_CHECKING:
    from typing import Any, TypeVar

    _V = TypeVar("_V", bound="Value")

__all__ = ["FrozenInstanceError", "FrozenValue", "Value", "fields", "replace"]


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a :class:`FrozenValue` (``dataclasses``' error of that name)."""


class Value:
    """Base of a mutable value class: repr, equality and ``replace`` from its fields."""

    __slots__ = ()
    _FIELDS: tuple[str, ...] = ()
    """The fields in ``__init__`` order (the class's annotations), set by ``__init_subclass__``."""
    _NOT_COMPARED: frozenset[str] = frozenset()
    _COMPARED: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls._FIELDS:
            cls._FIELDS = tuple(cls.__dict__.get("__annotations__", ()))  # noqa: RUF063 (no inspect)
            if set(cls._FIELDS) != set(cls.__dict__.get("__slots__", ())):
                raise TypeError(f"{cls.__qualname__}: __slots__ must name exactly the annotated fields")
        cls._COMPARED = tuple(f for f in cls._FIELDS if f not in cls._NOT_COMPARED)

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, f) for f in self._COMPARED])

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._COMPARED)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as a dataclass with eq

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy through ``__init__`` with every field, in order."""
        return (type(self), tuple([getattr(self, f) for f in self._FIELDS]))


class FrozenValue(Value):
    """Base of an immutable value class: fields set once in ``__init__``; hashable."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]  # Value's None: unhashable when mutable
        return hash(self._values())


def fields(obj: Value | type[Value]) -> tuple[str, ...]:
    """The field names of a value class (or of an instance's class), in ``__init__`` order."""
    return obj._FIELDS


def replace(obj: _V, **changes: Any) -> _V:
    """A copy of ``obj`` with some fields changed (``dataclasses.replace``)."""
    unknown = set(changes) - set(obj._FIELDS)
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no field {sorted(unknown)[0]!r}")
    return type(obj)(**{f: changes[f] if f in changes else getattr(obj, f) for f in obj._FIELDS})
