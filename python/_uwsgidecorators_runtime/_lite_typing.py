"""The few ``typing`` objects the modules of every process use when they run, without ``typing``.

``import typing`` costs each process ~1 MiB of heap (it loads ``re``, ``functools``, ``enum``...).
A module that needs these at run time (a generic base class, ``@overload``, ``cast``, type
variables) imports them from here in the ``else:`` branch of ``if TYPE_CHECKING: import typing``,
so type checkers still see the real ``typing``; at run time these stand-ins do what the code
needs: ``Cls[X]`` is ``Cls``, ``@overload`` and ``cast`` change nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar as _TypeVar

    _F = _TypeVar('_F', bound=Callable[..., object])
    _T = _TypeVar('_T')

Any = object
"""stands for ``typing.Any`` where a run-time expression names it"""


class Generic:
    """The base of a generic class: subscripting it, or a subclass, gives the class itself."""

    __slots__ = ()

    def __class_getitem__(cls, params: object) -> type:
        return cls


def overload(func: _F) -> _F:
    """The overload declarations are for type checkers; the last definition replaces them."""
    return func


def cast(typ: object, value: _T) -> _T:
    return value


class TypeVar:
    """A type variable's name, kept for ``repr``; nothing checks it at run time."""

    __slots__ = ('__name__',)

    def __init__(self, name: str, *constraints: object, bound: object = None) -> None:
        self.__name__ = name

    def __repr__(self) -> str:
        return '~' + self.__name__


ParamSpec = TypeVar

__all__ = ['Any', 'Generic', 'ParamSpec', 'TypeVar', 'cast', 'overload']
