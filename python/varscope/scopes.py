"""TensorFlow 1.x's namespace API: ``variable_scope``, ``name_scope``,
``get_variable``, ``get_variable_scope``, collections.

Scope semantics (reuse flags, name-scope suffixes, creation and reuse
errors) are the server's and the C++ client's; this module keeps what
TensorFlow keeps in Python: the scope objects, custom getters, and the
mapping of arguments.
"""

import functools
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
        return self._info.name if self._info is not None else ""

    @property
    def original_name_scope(self):
        return self._current().original_name_scope

    @property
    def reuse(self):
        if self._captured is None and self._guard is None and self._reuse_pending():
            return True
        return _python_reuse(self._current().reuse)

    def _reuse_pending(self):
        return any(getattr(change, "reuse", False) for change in self._client._root_pending)

    @property
    def initializer(self):
        return self._current().initializer

    @property
    def dtype(self):
        dtype = self._current().dtype  # unset: TensorFlow's default, float32
        return _dtypes.float32 if dtype == _native.DataType.UNSPECIFIED else _dtypes.as_dtype(dtype)

    @property
    def custom_getter(self):
        return self._custom_getter

    def _current(self):
        if self._guard is not None:
            self._info = self._guard.info()
        elif self._captured is None:  # the root
            if not self._client._stack():
                self._info = self._client._native.current_scope()
            else:  # asked from inside other scopes: look at the root itself
                with _Reentered(self) as guard:
                    self._info = guard.info()
        return self._info

    def _act(self, action):
        """Runs action(guard) on this scope: its open guard, or the scope
        re-entered for the call when its block has closed, as TensorFlow
        changes a kept scope. The root, while other scopes are open on this
        thread, changes when they have closed (only then does its flag or a
        default show: open scopes took theirs when they opened)."""
        if self._guard is not None:
            return action(self._guard)
        if self._captured is None:
            if self._client._stack():
                pending = functools.partial(action, None)
                pending.reuse = getattr(action, "reuse", False)
                self._client._root_pending.append(pending)
            else:
                action(None)  # the root, innermost: the client's own calls
            return None
        with _Reentered(self) as guard:
            return action(guard)

    def reuse_variables(self):
        """Reuse variables in this scope from now on (also on re-entry)."""
        def reuse(guard):
            if guard is not None:
                guard.reuse_variables()
            else:
                self._client._native.reuse_variables()
        reuse.reuse = True  # what a pending change of the root is
        self._act(reuse)

    def _set_defaults(self, initializer=(), dtype=(), partitioner=()):
        # Each is () to leave that default alone or (value,) to replace it.
        self._act(lambda guard: guard.set_defaults(initializer, dtype, partitioner)
                  if guard is not None
                  else self._client._native.set_scope_defaults(initializer, dtype, partitioner))

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


class _Reentered:
    """The scope re-entered for one call, without an auxiliary name scope
    (the root re-entered), closed at once; not on the Python stack."""

    def __init__(self, scope):
        self._scope = scope
        self._guard = None

    def __enter__(self):
        client = self._scope._client
        captured = self._scope._captured or client._native.root_scope()
        self._guard = client._native.open_scope("", captured, _native.Reuse.INHERIT, "", None,
                                                _native.DataType.UNSPECIFIED, None, False)
        return self._guard

    def __exit__(self, *exc):
        self._guard.close()
        return False


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
        if isinstance(self._name_or_scope, VariableScope):
            reenter = self._name_or_scope._captured
            if reenter is None:  # the root of a session
                reenter = client._native.root_scope()
        elif self._name_or_scope:
            name = self._name_or_scope
        if isinstance(self._name_or_scope, VariableScope):
            # Re-entered: defaults (the getter too) come from the kept scope.
            parent_getter = self._name_or_scope.custom_getter
        else:
            parent_getter = get_variable_scope(client).custom_getter
        custom_getter = (_wrap_custom_getter(self._custom_getter, parent_getter)
                         if self._custom_getter is not None else parent_getter)
        guard = client._native.open_scope(
            name, reenter, self._reuse, self._default_name if not name else "",
            self._initializer._native if self._initializer else None, self._dtype,
            self._partitioner._native if self._partitioner else None,
            self._auxiliary_name_scope)
        self._scope = VariableScope(client, guard.info(), guard.capture(), custom_getter, guard)
        stack.append(self._scope)
        return self._scope

    def __exit__(self, exc_type, exc, tb):
        stack = self._client._stack()
        if not stack or stack[-1] is not self._scope:
            raise RuntimeError("variable scopes must be closed innermost first")
        stack.pop()
        guard, self._scope._guard = self._scope._guard, None
        _close(guard, exc)
        if not stack:
            self._client._run_root_pending()
        return False


def _close(guard, body_error):
    """Closes a guard (the C++ guard is gone either way: a close that could
    not reach the server is retried by the client). A failure while the
    block's own exception propagates does not replace that exception."""
    try:
        guard.close()
    except Exception:
        if body_error is None:
            raise


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

    def __exit__(self, exc_type, exc, tb):
        guard, self._guard = self._guard, None
        _close(guard, exc)
        return False


def get_variable_scope(client=None):
    """The innermost open variable scope of this thread (or the root)."""
    client = _resolve(client)
    stack = client._stack()
    if stack:
        return stack[-1]
    root = getattr(client._local, "root", None)
    if root is None:  # one per thread, so set_custom_getter on it lasts
        root = client._local.root = VariableScope(client, None, None)
    return root


def op_name(name, client=None):
    """A unique op name in the current name scope, as TensorFlow names an op's
    output: ``scope1/add:0``, then ``scope1/add_1:0``."""
    return _resolve(client)._native.op_name(name, False)


def _value_initializer(initializer, dtype):
    """A value used as initializer (TensorFlow: a Tensor) and its dtype,
    checked against an explicit `dtype` as TensorFlow checks (before any
    lookup, so also on reuse)."""
    inferred = _infer_dtype(initializer)
    if dtype is not None and _dtypes.as_dtype(dtype) != inferred:
        raise ValueError(f"Initializer type '{inferred.name}' and explicit dtype "
                         f"'{_dtypes.as_dtype(dtype).name}' don't match.")
    return inferred


def _true_getter(client, local, wait, name, shape=None, dtype=None, initializer=None,
                 trainable=None, collections=None, partitioner=None, **unused):
    """The getter at the end of every custom-getter chain: one GetVariable
    in the current scope of this thread."""
    scope_name = get_variable_scope(client).name
    if scope_name:
        if not name.startswith(scope_name + "/"):
            raise ValueError(f"a custom getter renamed {name} outside the current scope "
                             f"'{scope_name}'; varscope resolves names in the scope")
        name = name[len(scope_name) + 1:]
    if shape is not None:  # TensorShape-like: an int is a rank-1 shape, None an unknown dim
        dims = [shape] if isinstance(shape, (int, np.integer)) else list(shape)
        shape = [-1 if d is None else int(d) for d in dims]
    native_init = None
    if isinstance(initializer, Initializer):
        native_init = initializer._native
    elif callable(initializer):
        # A Python initializer, (shape, dtype) -> value, runs here as in TF.
        if shape is None or -1 in shape:
            raise ValueError(f"Shape of a new variable ({name}) must be fully defined, "
                             f"but instead was {shape}.")
        dtype = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.float32
        value = as_array(initializer(tuple(shape), dtype=dtype.as_numpy_dtype), dtype)
        if value.shape != tuple(shape):
            raise ValueError(f"the initializer of {name} returned shape {value.shape}, "
                             f"not {tuple(shape)}")
        native_init = _native.Initializer.from_value(dtype._native, value)
        shape = None  # the value gives it
    elif initializer is not None:
        if shape is not None:
            raise ValueError("If initializer is a constant, do not specify shape.")
        dtype = _value_initializer(initializer, dtype)
        native_init = _native.Initializer.from_value(dtype._native, as_array(initializer, dtype))
    part = _partitioner(partitioner)
    info, created = client._native.get_variable(
        name, shape, _dtypes._native(dtype), native_init, trainable,
        list(collections) if collections is not None else None,
        part._native if part else None, local, float(wait))
    return Variable._wrap(client, info, created)


def get_variable(name, shape=None, dtype=None, initializer=None, regularizer=None,
                 trainable=None, collections=None, caching_device=None, partitioner=None,
                 validate_shape=True, use_resource=None, custom_getter=None, constraint=None,
                 wait=0.0, client=None, local=False):
    """Creates or fetches ``<scope>/name`` (``tf.get_variable``).

    Raises ValueError (an AlreadyExistsError, NotFoundError or
    InvalidArgumentError) where TensorFlow does. `wait` (seconds): when the
    variable does not exist yet, wait that long for another worker to
    create it instead of failing. Custom getters (the scope's, chained, or
    `custom_getter`) run here, called with keywords as TensorFlow calls them
    (getter, name, shape, dtype, initializer, reuse, trainable, ...).
    """
    client = _resolve(client)
    if initializer is not None and dtype is not None and not callable(initializer) \
            and not isinstance(initializer, Initializer):
        _value_initializer(initializer, dtype)  # TensorFlow checks before anything else
    if custom_getter is not None and not callable(custom_getter):
        raise ValueError(f"Passed a custom_getter which is not callable: {custom_getter}")
    scope = get_variable_scope(client)
    getter = custom_getter if custom_getter is not None else scope.custom_getter
    full_name = f"{scope.name}/{name}" if scope.name else name

    def true_getter(name, *args, **kwargs):
        kwargs.pop("reuse", None)  # the scope's flag decides, on the server
        for unused in ("regularizer", "caching_device", "validate_shape", "use_resource",
                       "constraint"):
            kwargs.pop(unused, None)
        return _true_getter(client, local, wait, name, *args, **kwargs)

    arguments = dict(name=full_name, shape=shape, dtype=dtype, initializer=initializer,
                     regularizer=regularizer, trainable=trainable, collections=collections,
                     caching_device=caching_device, partitioner=partitioner,
                     validate_shape=validate_shape, use_resource=use_resource,
                     constraint=constraint)
    if getter is not None:
        return getter(getter=true_getter, reuse=scope.reuse, **arguments)
    return true_getter(**arguments)


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
