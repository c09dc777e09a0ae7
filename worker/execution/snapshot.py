"""The trained model's copy, taken when `train()` returns, for the replica to load.

Plain pickle, with one addition: functions train.py defines where pickle cannot find them by name
(lambdas, functions defined inside other functions: a forward hook, an activation) travel by
value, as their code object and closure, the way cloudpickle sends them. Everything else pickles
by reference, as `torch.save(model)` would: classes must be defined at the top level of train.py.

Both ends are processes of the variant's: the host writes the copy, the replica loads it. The
scorer carries the bytes between them and never loads them.
"""

from __future__ import annotations

import io
import marshal
import pickle
import sys
import types
from typing import Any

VARIANT_MODULE = "train"


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if (
            isinstance(obj, types.FunctionType)
            and obj.__module__ == VARIANT_MODULE
            and "<" in obj.__qualname__  # <lambda>, <locals>: not reachable by name
        ):
            closure = obj.__closure__ or ()
            state = (
                obj.__defaults__,
                obj.__kwdefaults__,
                [cell.cell_contents for cell in closure],
                dict(obj.__dict__),
            )
            # The state is set after the function exists, so a closure that refers back to an object
            # holding the function (a hook capturing its module) pickles without recursion.
            args = (marshal.dumps(obj.__code__), obj.__name__, obj.__qualname__, len(closure))
            return _make_function, args, state, None, None, _fill_function
        return NotImplemented


def dumps(model: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(model)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def _make_function(code: bytes, name: str, qualname: str, cells: int) -> types.FunctionType:
    namespace = sys.modules[VARIANT_MODULE].__dict__
    closure = tuple(types.CellType() for _ in range(cells)) or None
    function = types.FunctionType(marshal.loads(code), namespace, name, None, closure)
    function.__qualname__ = qualname
    return function


def _fill_function(function: types.FunctionType, state: tuple[Any, Any, list[Any], dict[str, Any]]) -> None:
    defaults, kwdefaults, cells, attributes = state
    function.__defaults__ = defaults
    function.__kwdefaults__ = kwdefaults
    for cell, value in zip(function.__closure__ or (), cells, strict=True):
        cell.cell_contents = value
    function.__dict__.update(attributes)
