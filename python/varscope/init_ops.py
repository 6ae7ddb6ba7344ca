"""TensorFlow 1.x's initializers and partitioners, by their names.

They describe how the server fills or splits a new variable; nothing is
computed client-side (random initializers are deterministic per seed,
shape and dtype; seed None derives one from the variable's name).
"""

import numpy as np

from varscope._native import Initializer as _Init
from varscope._native import Partitioner as _Part


class _Described:
    """A native value (what the server is sent) with its Python spelling."""

    def __init__(self, native, description):
        self._native = native
        self._description = description

    def __repr__(self):
        return self._description


class Initializer(_Described):
    """An initializer for ``get_variable(initializer=...)``."""


def _seed(seed):
    return 0 if seed is None else int(seed)


def zeros_initializer():
    return Initializer(_Init.zeros(), "zeros_initializer()")


def ones_initializer():
    return Initializer(_Init.ones(), "ones_initializer()")


def constant_initializer(value=0, verify_shape=False):
    values = [float(v) for v in np.ravel(np.asarray(value, dtype=np.float64))]
    return Initializer(_Init.constant(values, verify_shape), f"constant_initializer({value!r})")


def random_uniform_initializer(minval=0, maxval=None, seed=None):
    return Initializer(_Init.random_uniform(minval, maxval, _seed(seed)),
                       "random_uniform_initializer()")


def random_normal_initializer(mean=0.0, stddev=1.0, seed=None):
    return Initializer(_Init.random_normal(mean, stddev, _seed(seed)),
                       "random_normal_initializer()")


def truncated_normal_initializer(mean=0.0, stddev=1.0, seed=None):
    return Initializer(_Init.truncated_normal(mean, stddev, _seed(seed)),
                       "truncated_normal_initializer()")


def uniform_unit_scaling_initializer(factor=1.0, seed=None):
    return Initializer(_Init.uniform_unit_scaling(factor, _seed(seed)),
                       "uniform_unit_scaling_initializer()")


_MODES = {"fan_in": _Init.Mode.FAN_IN, "fan_out": _Init.Mode.FAN_OUT,
          "fan_avg": _Init.Mode.FAN_AVG}
_DISTRIBUTIONS = {"truncated_normal": _Init.Distribution.TRUNCATED_NORMAL,
                  "normal": _Init.Distribution.TRUNCATED_NORMAL,  # TF 1.x's alias
                  "untruncated_normal": _Init.Distribution.UNTRUNCATED_NORMAL,
                  "uniform": _Init.Distribution.UNIFORM}


def variance_scaling_initializer(scale=1.0, mode="fan_in", distribution="truncated_normal",
                                 seed=None):
    if mode not in _MODES:
        raise ValueError(f"Invalid `mode` argument: {mode}")
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"Invalid `distribution` argument: {distribution}")
    if scale <= 0.0:
        raise ValueError("`scale` must be positive float.")
    return Initializer(_Init.variance_scaling(scale, _MODES[mode], _DISTRIBUTIONS[distribution],
                                              _seed(seed)),
                       f"variance_scaling_initializer({scale}, {mode!r}, {distribution!r})")


def _seeded(name, make):
    def initializer(seed=None):
        return Initializer(make(_seed(seed)), f"{name}()")
    initializer.__name__ = name
    return initializer


glorot_uniform_initializer = _seeded("glorot_uniform_initializer", _Init.glorot_uniform)
glorot_normal_initializer = _seeded("glorot_normal_initializer", _Init.glorot_normal)
lecun_uniform_initializer = _seeded("lecun_uniform_initializer", _Init.lecun_uniform)
lecun_normal_initializer = _seeded("lecun_normal_initializer", _Init.lecun_normal)
he_uniform_initializer = _seeded("he_uniform_initializer", _Init.he_uniform)
he_normal_initializer = _seeded("he_normal_initializer", _Init.he_normal)


def orthogonal_initializer(gain=1.0, seed=None):
    return Initializer(_Init.orthogonal(gain, _seed(seed)), "orthogonal_initializer()")


def identity_initializer(gain=1.0):
    return Initializer(_Init.identity(gain), "identity_initializer()")


class Partitioner(_Described):
    """A partitioner for ``get_variable(partitioner=...)``."""


def fixed_size_partitioner(num_shards, axis=0):
    return Partitioner(_Part.fixed_size(num_shards, axis),
                       f"fixed_size_partitioner({num_shards}, axis={axis})")


def min_max_variable_partitioner(max_partitions=1, axis=0, min_slice_size=256 << 10):
    return Partitioner(_Part.min_max(max_partitions, axis, min_slice_size),
                       f"min_max_variable_partitioner({max_partitions})")


def variable_axis_size_partitioner(max_shard_bytes, axis=0, bytes_per_string_element=16,
                                   max_shards=None):
    del bytes_per_string_element  # varscope stores no strings
    return Partitioner(_Part.variable_axis_size(max_shard_bytes, axis, max_shards),
                       f"variable_axis_size_partitioner({max_shard_bytes})")
