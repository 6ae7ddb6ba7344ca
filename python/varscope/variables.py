"""Variable handles with NumPy values (``var.pull()``, ``var.assign(a)``)."""

import numpy as np

from varscope import _native, errors
from varscope import dtypes as _dtypes
from varscope.client import _resolve

_OPS = {
    "assign": _native.UpdateOp.ASSIGN,
    "add": _native.UpdateOp.ADD,
    "sub": _native.UpdateOp.SUB,
    "apply_gradient": _native.UpdateOp.APPLY_GRADIENT,
}


def as_array(value, dtype):
    """`value` as a C-contiguous array of `dtype` (a DType), the bytes a push
    sends. bfloat16 takes uint16 bit patterns, or floats it rounds (to
    nearest even, as TensorFlow does)."""
    if dtype is _dtypes.bfloat16:
        array = np.asarray(value)
        if array.dtype != np.uint16:
            floats = np.ascontiguousarray(array, dtype=np.float32)
            bits = floats.view(np.uint32).astype(np.uint64)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            array = np.where(np.isnan(floats), np.uint16(0x7FC0), rounded)  # NaN stays NaN
        return np.asarray(array, order="C")
    return np.asarray(value, dtype=dtype.as_numpy_dtype, order="C")  # keeps 0-d (a scalar)


class Variable:
    """A variable on the server (TensorFlow's ``tf.Variable``).

    ``vs.Variable(initial_value, name=...)`` always creates one (named
    uniquely in the current name scope, as ``tf.Variable`` is);
    ``vs.get_variable`` creates or fetches by name. Handles compare equal
    when they name the same variable.
    """

    def __init__(self, initial_value=None, trainable=None, collections=None, validate_shape=True,
                 caching_device=None, name=None, variable_def=None, dtype=None, *,
                 client=None):
        del validate_shape, caching_device
        if initial_value is None:
            raise ValueError("initial_value must be specified.")
        if variable_def is not None or collections is not None:
            raise NotImplementedError("vs.Variable takes no variable_def or collections; "
                                      "use vs.get_variable(collections=...)")
        client = _resolve(client)
        dtype = _dtypes.as_dtype(dtype) if dtype is not None else _infer_dtype(initial_value)
        value = as_array(initial_value, dtype)
        info = client._native.new_variable(name or "Variable", dtype._native, value, trainable)
        self._init(client, info, created=True)

    @classmethod
    def _wrap(cls, client, info, created=False):
        variable = cls.__new__(cls)
        variable._init(client, info, created)
        return variable

    def _init(self, client, info, created):
        self._client = client
        self._info = info
        self._created = created

    # ---- description ----
    @property
    def name(self):
        """TensorFlow's tensor name, ``scope1/variable1:0``."""
        return self._info.tensor_name

    @property
    def full_name(self):
        """The name without ``:0``, as every call takes it (``op.name``)."""
        return self._info.name

    @property
    def shape(self):
        return tuple(self._info.shape)

    def get_shape(self):
        return self.shape

    @property
    def dtype(self):
        return _dtypes.as_dtype(self._info.dtype)

    @property
    def trainable(self):
        return self._info.trainable

    @property
    def version(self):
        """The version when this handle was made (pulls report newer ones)."""
        return self._info.version

    @property
    def created(self):
        """Whether the call that returned this handle created the variable."""
        return self._created

    @property
    def partitioned(self):
        return self._info.partitioned

    @property
    def collections(self):
        return list(self._info.collections)

    def parts(self):
        """The parts of a partitioned variable (``name/part_0``, ...)."""
        return [Variable._wrap(self._client, part) for part in self._info.parts]

    def __eq__(self, other):
        return (isinstance(other, Variable) and other._client is self._client
                and other.full_name == self.full_name)

    def __hash__(self):
        return hash(self.full_name)

    def __repr__(self):
        return f"<vs.Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    # ---- values ----
    def pull(self, rows=None, out=None):
        """The value as a NumPy array (rows ``(start, count)`` of axis 0 only,
        if given), pulled straight into the array's memory. A partitioned
        variable is read part by part and concatenated, like TensorFlow's
        ``as_tensor``. `out`: a C-contiguous array of the right dtype and
        size to pull into instead of a new one."""
        if self.partitioned:
            if rows is not None or out is not None:
                raise ValueError(f"{self.full_name} is partitioned: pull its parts for rows")
            return self._pull_parts()
        shape = list(self.shape)
        if rows is not None:
            shape[0] = rows[1]
        array = out if out is not None else np.empty(shape, dtype=self.dtype.as_numpy_dtype)
        if not array.flags.c_contiguous or array.dtype != self.dtype.as_numpy_dtype:
            raise ValueError(f"out must be a C-contiguous {self.dtype.as_numpy_dtype} array")
        self._last_version, _ = self._client._native.pull(
            self.full_name, self._info.dtype, array, tuple(rows) if rows is not None else None, 0)
        return array

    read_value = pull
    numpy = pull

    def pull_versioned(self, rows=None, out=None):
        """``(value, version)``: the value as ``pull`` returns it and the
        version it was read at (wait from it with ``wait_for_newer_than``)."""
        if self.partitioned:
            raise ValueError(f"{self.full_name} is partitioned: pull its parts with versions")
        value = self.pull(rows, out)
        return value, self._last_version

    def _pull_parts(self):
        axis = next((i for i, n in enumerate(self._info.partitions) if n > 1), 0)
        return np.concatenate([part.pull() for part in self.parts()], axis=axis)

    def _push(self, op, value, indices=(), expected_version=None, optimizer=None, step=None):
        array = as_array(value, self.dtype)
        if not indices:
            self._check_shape(array)
        return self._client._native.push(self.full_name, _OPS[op], self._info.dtype, array,
                                         list(indices), expected_version,
                                         optimizer._native if optimizer else None, step)

    def _check_shape(self, array):
        """A dense update takes the variable's shape, as TensorFlow's assign
        does (the server checks only the byte count)."""
        if array.shape != self.shape:
            raise errors.InvalidArgumentError(
                f"{self.full_name} has shape {self.shape}; the value has shape {array.shape}",
                "SHAPE_MISMATCH", {"variable": self.full_name})

    def assign(self, value, expected_version=None):
        """Replaces the value (compare-and-set with `expected_version`)."""
        return self._push("assign", value, expected_version=expected_version)

    def assign_add(self, value):
        return self._push("add", value)

    def assign_sub(self, value):
        return self._push("sub", value)

    def apply_gradient(self, gradient, optimizer=None, step=None):
        """One optimizer step on the server (the stored optimizer, or
        `optimizer`); `step`: the worker's step under synchronous training."""
        return self._push("apply_gradient", gradient, optimizer=optimizer, step=step)

    def gather(self, indices):
        """Rows by index (``tf.gather``), as an array."""
        indices = [int(i) for i in np.ravel(indices)]
        shape, data = self._client._native.gather(self.full_name, indices)
        return np.frombuffer(data, dtype=self.dtype.as_numpy_dtype).reshape(shape).copy()

    def _scatter(self, op, indices, rows):
        indices = [int(i) for i in np.ravel(indices)]
        return self._push(op, rows, indices=indices)

    def scatter_update(self, indices, rows):
        return self._scatter("assign", indices, rows)

    def scatter_add(self, indices, rows):
        return self._scatter("add", indices, rows)

    def scatter_sub(self, indices, rows):
        return self._scatter("sub", indices, rows)

    def scatter_apply_gradient(self, indices, rows):
        """Sparse optimizer step on the given rows (embeddings)."""
        return self._scatter("apply_gradient", indices, rows)

    def wait_for_newer_than(self, version=None, timeout=30.0):
        """Blocks until the version passes `version` (default: this
        handle's); returns the new version. DeadlineExceededError after
        `timeout` seconds."""
        return self._client._native.wait_version(
            self.full_name, self.version if version is None else version, float(timeout))


def _infer_dtype(value):
    """TensorFlow's convert_to_tensor dtype: Python floats are float32,
    Python ints int32 (int64 when one does not fit), NumPy keeps its own."""
    if isinstance(value, (np.ndarray, np.generic)):
        return _dtypes.as_dtype(value.dtype)
    array = np.asarray(value)
    if array.dtype == np.float64:
        return _dtypes.float32
    if array.dtype == np.int64:
        fits = array.size == 0 or (array.min() >= -2**31 and array.max() < 2**31)
        return _dtypes.int32 if fits else _dtypes.int64
    return _dtypes.as_dtype(array.dtype)


def push_many(updates, op="assign", client=None):
    """Several updates in one call, atomically (on one server; across shards
    each shard applies its own): ``{variable_or_name: value}``. A value may
    be ``(op, value)`` to override `op` for that item. Returns the update
    results in order."""
    client = _resolve(client)
    items = []
    for target, value in updates.items():
        item_op = op
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            item_op, value = value
        variable = target if isinstance(target, Variable) else Variable._wrap(
            client, client._native.describe(target))
        array = as_array(value, variable.dtype)
        variable._check_shape(array)
        items.append((variable.full_name, _OPS[item_op], variable._info.dtype, array, []))
    return client._native.push_many(items)


def set_optimizer(variables, optimizer, replicas_to_aggregate=0, client=None):
    """Stores `optimizer` (a ``vs.train`` optimizer) on `variables` and
    creates their slots, all or none; ``replicas_to_aggregate`` > 0 makes
    their gradients synchronous (TensorFlow's SyncReplicasOptimizer)."""
    client = _resolve(client)
    names = [v.full_name if isinstance(v, Variable) else v for v in variables]
    return client._native.set_optimizer(names, optimizer._native, replicas_to_aggregate)


class Watch:
    """An iterator of change events under a prefix; ``cancel()`` (from any
    thread) or leaving its ``with`` block ends it."""

    def __init__(self, stream):
        self._stream = stream

    def __iter__(self):
        return self

    def __next__(self):
        event = self._stream.next()
        if event is None:
            raise StopIteration
        return event

    def cancel(self):
        self._stream.cancel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()


def watch(prefix="", send_initial=False, client=None):
    """Change events (created, updated, deleted) under `prefix`."""
    client = _resolve(client)
    return Watch(client._native.watch(prefix, send_initial))
