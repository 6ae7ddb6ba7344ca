"""TensorFlow 1.x's namespace API: ``variable_scope``, ``name_scope``,
``get_variable``, ``get_variable_scope``, collections.

Scope semantics (reuse flags, name-scope suffixes, creation and reuse
errors) are the server's and the C++ client's; this module keeps what
TensorFlow keeps in Python: the scope objects, custom getters, and the
mapping of arguments.
"""

import re

import numpy as np

from varscope import _native
from varscope import dtypes as _dtypes
from varscope.client import _resolve
from varscope.init_ops import Initializer, Partitioner
from varscope.variables import Variable, as_array, _infer_dtype


class _ReuseMode:
    def __repr__(self):
        return "AUTO_REUSE"


AUTO_REUSE = _ReuseMode()


class GraphKeys:
    GLOBAL_VARIABLES = "variables"
    LOCAL_VARIABLES = "local_variables"
    TRAINABLE_VARIABLES = "trainable_variables"


def _native_reuse(reuse):
    if reuse is AUTO_REUSE:
        return _native.Reuse.AUTO_REUSE
    if reuse is True:
        return _native.Reuse.REUSE
    if reuse is None or reuse is False:
        return _native.Reuse.INHERIT
    raise ValueError(f"reuse must be True, False, None or vs.AUTO_REUSE, not {reuse!r}")


def _python_reuse(native):
    return {_native.Reuse.AUTO_REUSE: AUTO_REUSE, _native.Reuse.REUSE: True}.get(native, False)


def _initializer(value):
    if value is None or isinstance(value, Initializer):
        return value
    raise TypeError(f"initializer must come from vs (e.g. vs.zeros_initializer()), not {value!r}")


def _partitioner(value):
    if value is None or isinstance(value, Partitioner):
        return value
    raise TypeError(f"partitioner must come from vs (e.g. vs.fixed_size_partitioner(3)), "
                    f"not {value!r}")


class VariableScope:
    """A variable scope (what ``with vs.variable_scope(...) as scope`` binds).

    Keep it to re-enter the scope later (``vs.variable_scope(scope)``), also
    from another client. Its properties are the server's view when it was
    last open.
    """

    def __init__(self, client, info, captured, custom_getter=None, guard=None):
        self._client = client
        self._info = info
        self._captured = captured
        self._custom_getter = custom_getter
        self._guard = guard  # set while its block is open

    @property
    def name(self):
        return self._info.name

    @property
    def original_name_scope(self):
        return self._info.original_name_scope

    @property
    def reuse(self):
        return _python_reuse(self._current().reuse)

    @property
    def initializer(self):
        return self._current().initializer

    @property
    def dtype(self):
        dtype = self._current().dtype
        return None if dtype == _native.DataType.UNSPECIFIED else _dtypes.as_dtype(dtype)

    @property
    def custom_getter(self):
        return self._custom_getter

    def _current(self):
        if self._guard is not None:
            self._info = self._guard.info()
        elif self._captured is None:  # the root: ask the server
            self._info = self._client._native.current_scope()
        return self._info

    def _require_open(self, what):
        if self._guard is None and self._captured is not None:
            raise ValueError(f"{what} needs the scope '{self.name}' to be open "
                             f"(inside its `with` block)")

    def reuse_variables(self):
        """Reuse variables in this scope from now on (also on re-entry)."""
        self._require_open("reuse_variables")
        if self._guard is not None:
            self._guard.reuse_variables()
        else:
            self._client._native.reuse_variables()

    def _set_defaults(self, initializer=(), dtype=(), partitioner=()):
        # Each is () to leave that default alone or (value,) to replace it.
        self._require_open("changing a scope's defaults")
        if self._guard is not None:
            self._guard.set_defaults(initializer, dtype, partitioner)
        else:
            self._client._native.set_scope_defaults(initializer, dtype, partitioner)

    def set_initializer(self, initializer):
        init = _initializer(initializer)
        self._set_defaults(initializer=(init._native if init else None,))

    def set_dtype(self, dtype):
        self._set_defaults(dtype=(_dtypes._native(dtype),))

    def set_partitioner(self, partitioner):
        part = _partitioner(partitioner)
        self._set_defaults(partitioner=(part._native if part else None,))

    def set_custom_getter(self, custom_getter):
        self._custom_getter = custom_getter

    def __repr__(self):
        return f"<vs.VariableScope '{self.name}'>"


def _wrap_custom_getter(custom_getter, old_getter):
    """TensorFlow's nesting: the inner getter gets one that runs the outer."""
    if old_getter is None:
        return custom_getter

    def wrapped(getter, *args, **kwargs):
        return custom_getter(lambda *a, **k: old_getter(getter, *a, **k), *args, **kwargs)
    return wrapped


class variable_scope:  # noqa: N801 (TensorFlow's name)
    """``with vs.variable_scope("scope1") as scope:`` opens a variable scope
    (and, unless ``auxiliary_name_scope=False``, a name scope) on the
    server for this thread; ``vs.variable_scope(scope)`` re-enters a kept
    one. `reuse`: None/False inherit, True reuse, ``vs.AUTO_REUSE``."""

    def __init__(self, name_or_scope, default_name=None, values=None, initializer=None,
                 regularizer=None, caching_device=None, partitioner=None, custom_getter=None,
                 reuse=None, dtype=None, use_resource=None, constraint=None,
                 auxiliary_name_scope=True, client=None):
        del values, regularizer, caching_device, use_resource, constraint  # graph-only
        if name_or_scope is None and default_name is None:
            raise TypeError("If default_name is None then name_or_scope is required")
        if not isinstance(name_or_scope, (VariableScope, str, type(None))):
            raise TypeError("VariableScope: name_or_scope must be a string or VariableScope.")
        if custom_getter is not None and not callable(custom_getter):
            raise ValueError(f"The custom_getter must be callable. Got: {custom_getter}")
        self._client = _resolve(client)
        self._name_or_scope = name_or_scope
        self._default_name = default_name or ""
        self._initializer = _initializer(initializer)
        self._partitioner = _partitioner(partitioner)
        self._custom_getter = custom_getter
        self._reuse = _native_reuse(reuse)
        self._dtype = _dtypes._native(dtype)
        self._auxiliary_name_scope = auxiliary_name_scope
        self._scope = None

    def __enter__(self):
        client = self._client
        stack = client._stack()
        reenter = None
        name = ""
        custom_getter = self._custom_getter
        if isinstance(self._name_or_scope, VariableScope):
            reenter = self._name_or_scope._captured
            if reenter is None:  # the root of a session
                reenter = client._native.root_scope()
            if custom_getter is None:  # TensorFlow keeps the scope's getter
                custom_getter = self._name_or_scope.custom_getter
        elif self._name_or_scope:
            name = self._name_or_scope
        parent_getter = stack[-1].custom_getter if stack else None
        if custom_getter is not None or parent_getter is not None:
            custom_getter = (_wrap_custom_getter(custom_getter, parent_getter)
                             if custom_getter is not None else parent_getter)
        guard = client._native.open_scope(
            name, reenter, self._reuse, self._default_name if not name else "",
            self._initializer._native if self._initializer else None, self._dtype,
            self._partitioner._native if self._partitioner else None,
            self._auxiliary_name_scope)
        self._scope = VariableScope(client, guard.info(), guard.capture(), custom_getter, guard)
        stack.append(self._scope)
        return self._scope

    def __exit__(self, *exc):
        stack = self._client._stack()
        if not stack or stack[-1] is not self._scope:
            raise RuntimeError("variable scopes must be closed innermost first")
        stack.pop()
        guard, self._scope._guard = self._scope._guard, None
        guard.close()
        return False


class name_scope:  # noqa: N801 (TensorFlow's name)
    """``with vs.name_scope("name1") as scope:`` changes op names
    (``vs.op_name``), never variable names; `scope` is the prefix
    ("scope1/name1/")."""

    def __init__(self, name, default_name=None, values=None, client=None):
        del values
        self._client = _resolve(client)
        self._name = name if name else default_name
        if not self._name:
            raise ValueError("name_scope needs a name or a default_name")
        self._guard = None

    def __enter__(self):
        self._guard = self._client._native.open_name_scope(self._name)
        return self._guard.name_scope

    def __exit__(self, *exc):
        guard, self._guard = self._guard, None
        guard.close()
        return False


def get_variable_scope(client=None):
    """The innermost open variable scope of this thread (or the root)."""
    client = _resolve(client)
    stack = client._stack()
    if stack:
        return stack[-1]
    return VariableScope(client, client._native.current_scope(), None)


def op_name(name, client=None):
    """A unique op name in the current name scope, as TensorFlow names an op's
    output: ``scope1/add:0``, then ``scope1/add_1:0``."""
    return _resolve(client)._native.op_name(name, False)


def _true_getter(client, name, shape=None, dtype=None, initializer=None, trainable=None,
                 collections=None, partitioner=None, local=False, wait=0.0, **unused):
    scope_name = get_variable_scope(client).name
    if scope_name:
        if not name.startswith(scope_name + "/"):
            raise ValueError(f"a custom getter renamed {name} outside the scope {scope_name}")
        name = name[len(scope_name) + 1:]
    native_init = None
    if initializer is not None and not isinstance(initializer, Initializer):
        # A value (TensorFlow: a Tensor initializer): it gives the shape.
        if shape is not None:
            raise ValueError("If initializer is a constant, do not specify shape.")
        dtype = _dtypes.as_dtype(dtype) if dtype is not None else _infer_dtype(initializer)
        native_init = _native.Initializer.from_value(dtype._native, as_array(initializer, dtype))
    elif initializer is not None:
        native_init = initializer._native
    if shape is not None:
        shape = [int(d) if d is not None else -1 for d in np.atleast_1d(shape)] \
            if np.ndim(shape) else []
    part = _partitioner(partitioner)
    info, created = client._native.get_variable(
        name, shape, _dtypes._native(dtype), native_init, trainable,
        list(collections) if collections is not None else None,
        part._native if part else None, local, float(wait))
    return Variable._wrap(client, info, created)


def get_variable(name, shape=None, dtype=None, initializer=None, regularizer=None,
                 trainable=None, collections=None, caching_device=None, partitioner=None,
                 validate_shape=True, use_resource=None, custom_getter=None, constraint=None,
                 wait=0.0, client=None, **kwargs):
    """Creates or fetches ``<scope>/name`` (``tf.get_variable``).

    Raises ValueError (an AlreadyExistsError, NotFoundError or
    InvalidArgumentError) where TensorFlow does. `wait` (seconds): when the
    variable does not exist yet, wait that long for another worker to
    create it instead of failing.
    """
    del regularizer, caching_device, validate_shape, use_resource, constraint
    client = _resolve(client)
    scope = get_variable_scope(client)
    getter = custom_getter if custom_getter is not None else scope.custom_getter
    full_name = f"{scope.name}/{name}" if scope.name else name

    def true_getter(name, *args, **kw):
        return _true_getter(client, name, *args, **kw)

    arguments = dict(shape=shape, dtype=dtype, initializer=initializer, trainable=trainable,
                     collections=collections, partitioner=partitioner, wait=wait, **kwargs)
    if getter is not None:
        return getter(true_getter, full_name, **arguments)
    return true_getter(full_name, **arguments)


def get_local_variable(name, shape=None, dtype=None, initializer=None, collections=None,
                       **kwargs):
    """``tf.get_local_variable``: not trainable, in "local_variables"."""
    return get_variable(name, shape=shape, dtype=dtype, initializer=initializer,
                        trainable=False, collections=collections, local=True, **kwargs)


def get_collection(key, scope=None, client=None):
    """Variables in collection `key`, optionally those whose name matches
    `scope` from its start (``re.match``, as TensorFlow filters)."""
    client = _resolve(client)
    variables = [Variable._wrap(client, info)
                 for info in client._native.list_variables("", key)]
    if scope is None:
        return variables
    return [v for v in variables if re.match(scope, v.name)]


def global_variables(scope=None, client=None):
    return get_collection(GraphKeys.GLOBAL_VARIABLES, scope, client)


def trainable_variables(scope=None, client=None):
    return get_collection(GraphKeys.TRAINABLE_VARIABLES, scope, client)


def local_variables(scope=None, client=None):
    return get_collection(GraphKeys.LOCAL_VARIABLES, scope, client)
