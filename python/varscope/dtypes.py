"""Element types with TensorFlow's names, and their NumPy counterparts.

``bfloat16`` has no NumPy type: its values travel as ``uint16`` bit
patterns (the upper half of a float32).
"""

import numpy as np

from varscope._native import DataType


class DType:
    """One element type: ``name`` ("float32"), ``as_numpy_dtype``."""

    def __init__(self, name, native, numpy_dtype):
        self.name = name
        self._native = native
        self.as_numpy_dtype = np.dtype(numpy_dtype)

    @property
    def size(self):
        return self.as_numpy_dtype.itemsize

    def __repr__(self):
        return f"vs.{self.name}"

    def __eq__(self, other):
        try:
            return as_dtype(other) is self
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.name)


float32 = DType("float32", DataType.FLOAT, np.float32)
float64 = DType("float64", DataType.DOUBLE, np.float64)
float16 = DType("float16", DataType.HALF, np.float16)
bfloat16 = DType("bfloat16", DataType.BFLOAT16, np.uint16)
int8 = DType("int8", DataType.INT8, np.int8)
int16 = DType("int16", DataType.INT16, np.int16)
int32 = DType("int32", DataType.INT32, np.int32)
int64 = DType("int64", DataType.INT64, np.int64)
uint8 = DType("uint8", DataType.UINT8, np.uint8)
bool = DType("bool", DataType.BOOL, np.bool_)  # noqa: A001 (TensorFlow's name)
half = float16
double = float64

_ALL = (float32, float64, float16, bfloat16, int8, int16, int32, int64, uint8, bool)
_BY_NAME = {d.name: d for d in _ALL}
_BY_NAME.update(half=float16, double=float64, float=float32)
_BY_NATIVE = {d._native: d for d in _ALL}
# bfloat16 is not reachable from NumPy: uint16 arrays are never guessed as it.
_BY_NUMPY = {d.as_numpy_dtype: d for d in _ALL if d is not bfloat16}


def as_dtype(value):
    """A DType from a DType, TensorFlow's name, a NumPy dtype or type."""
    if isinstance(value, DType):
        return value
    if isinstance(value, DataType):
        return _BY_NATIVE[value]
    if isinstance(value, str):
        if value in _BY_NAME:
            return _BY_NAME[value]
        raise TypeError(f"unknown dtype {value!r}; one of {sorted(_BY_NAME)}")
    try:
        numpy_dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"cannot interpret {value!r} as a dtype") from None
    if numpy_dtype in _BY_NUMPY:
        return _BY_NUMPY[numpy_dtype]
    raise TypeError(f"varscope has no dtype for NumPy's {numpy_dtype}")


def _native(value):
    """The native DataType of `value`; None means "not given"."""
    return DataType.UNSPECIFIED if value is None else as_dtype(value)._native
