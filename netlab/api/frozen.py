"""The read-only mapping the API's results hold their free-form parts in (a trace hop's ``facts``, an
inspected route, a pod's labels).

``types.MappingProxyType`` is read-only too, but it is a view of a dict that cannot be pickled,
deep-copied or hashed: a result holding one broke ``pickle`` (a result sent to another process,
``multiprocessing``), ``copy.deepcopy``, ``dataclasses.asdict`` and ``hash`` of the frozen dataclass.
:class:`FrozenDict` is a dict that cannot be changed and does all four; :func:`freeze` makes a JSON
value read-only all the way down (objects become FrozenDicts, lists tuples), so that a result is a value:
equal results hash alike, and nothing inside one can be changed in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    """A dict that cannot be changed, and that pickles, deep-copies and hashes (when its values do).

    A dict, so that everything made for one takes it: ``json.dumps``, YAML, ``dataclasses.asdict`` (which
    makes the dataclasses inside it dicts too), ``==`` with a plain dict; every method that would change
    it raises TypeError, as a MappingProxyType's item assignment does.
    """

    __slots__ = ("_hash",)
    _hash: int | None

    def __new__(cls, *args: Any, **kwargs: Any) -> FrozenDict[K, V]:
        self = super().__new__(cls)
        dict.update(self, *args, **kwargs)  # filled once, here: __init__ does nothing (calling it again too)
        self._hash = None
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __hash__(self) -> int:  # type: ignore[override]
        if self._hash is None:  # the items' order does not count, as in ==
            self._hash = hash(frozenset(self.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and deepcopy: made again from its items
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict[K, V]:
        return self

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} does not support item assignment or deletion (read-only)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only


def freeze(value: Any) -> Any:
    """A JSON value made read-only all the way down: objects become FrozenDicts, lists tuples."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping) and not isinstance(value, FrozenDict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value
