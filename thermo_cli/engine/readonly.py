"""Fields a thermogram sets once, at construction, and then changes only through methods.

Name, configuration, policy and extension state change a thermogram's behaviour, so every
change of them must be logged (``configure``, ``rename``, ``extension`` events) and bound
by the meta digest. A plain attribute can be reassigned without either; these dataclass
field descriptors accept the constructor's value and refuse any later assignment with an
AttributeError naming the method to use instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class SetOnce(Generic[T]):
    """A dataclass field default: assignable once (by ``__init__``), then read-only.

    The value lives in the instance's ``__dict__`` under ``_<name>``, where the owning
    class's own methods change it. ``factory`` makes the default when ``__init__`` is
    given none (dataclasses pass the descriptor itself then).
    """

    def __init__(self, factory: Callable[[], T], method: str) -> None:
        self.factory = factory
        self.method = method
        self.slot = ""
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = "_" + name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> SetOnce[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__[self.slot]

    def __set__(self, obj: object, value: T) -> None:
        if self.slot in obj.__dict__:
            raise AttributeError(f"{self.name}: read-only after construction; use {self.method}")
        obj.__dict__[self.slot] = self.factory() if isinstance(value, SetOnce) else value


class ReadOnlyMap(SetOnce[dict[str, Any]]):
    """Like :class:`SetOnce` for a dict, read back as a read-only view: items change only
    through the owner's methods (nested values are the caller's to leave alone; the meta
    digest binds them at commit either way)."""

    @overload  # type: ignore[override]
    def __get__(self, obj: None, owner: type | None = None) -> ReadOnlyMap: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Mapping[str, Any]: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return MappingProxyType(obj.__dict__[self.slot])

    def __set__(self, obj: object, value: dict[str, Any]) -> None:
        """Keep a copy: the caller's dict stays the caller's and cannot change the state."""
        super().__set__(obj, value if isinstance(value, SetOnce) else dict(value))
