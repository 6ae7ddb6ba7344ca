"""TensorFlow 1.x's namespace behaviours, from Python (TF_SEMANTICS.md)."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

SNIPPET = '''
import varscope as vs
client = vs.connect("{address}")
with vs.variable_scope("scope1"):
    var = vs.get_variable("variable1", [1])
    print(var.name)            # scope1/variable1:0
    vs.get_variable_scope().reuse_variables()
    assert vs.get_variable("variable1", [1]) == var
with vs.variable_scope("variable_scope1"):
    with vs.name_scope("name_scope1"):
        v = vs.get_variable("variable1", [1])
        print(v.name, vs.op_name("add"))  # variable_scope1/variable1:0 variable_scope1/name_scope1/add:0
'''


def test_the_readme_snippet_prints_tensorflows_names(daemon):
    out = subprocess.run([sys.executable, "-c", SNIPPET.format(address=daemon.address)],
                         capture_output=True, text=True, env=os.environ, check=True).stdout
    assert out.splitlines() == [
        "scope1/variable1:0",
        "variable_scope1/variable1:0 variable_scope1/name_scope1/add:0"]


def test_creation_and_reuse_errors_are_value_errors(vs):
    with vs.variable_scope("errors"):
        v = vs.get_variable("w", [2, 3])
        assert v.created and v.shape == (2, 3) and v.dtype == vs.float32
        with pytest.raises(ValueError, match="already exists, disallowed") as exists:
            vs.get_variable("w", [2, 3])
        assert isinstance(exists.value, vs.errors.AlreadyExistsError)
        assert exists.value.reason == "VARIABLE_EXISTS" and exists.value.code == 6
    with vs.variable_scope("errors", reuse=True):
        assert vs.get_variable("w", [2, 3]) == v
        assert not vs.get_variable("w").created
        with pytest.raises(ValueError, match="does not exist") as missing:
            vs.get_variable("nope", [1])
        assert isinstance(missing.value, vs.errors.NotFoundError)
        with pytest.raises(ValueError, match="shape"):
            vs.get_variable("w", [3, 2])
        with pytest.raises(ValueError):
            vs.get_variable("w", [2, 3], dtype=vs.int32)
    with pytest.raises(TypeError):
        vs.variable_scope(None)


def test_auto_reuse_inheritance_and_reentry(vs):
    with vs.variable_scope("auto", reuse=vs.AUTO_REUSE) as scope:
        a = vs.get_variable("a", [1])
        assert vs.get_variable("a", [1]) == a
        assert scope.reuse is vs.AUTO_REUSE
        with vs.variable_scope("inner") as inner:  # inherits AUTO_REUSE
            b = vs.get_variable("b", [1])
            assert vs.get_variable("b", [1]) == b
            assert inner.name == "auto/inner"
    with vs.variable_scope(scope):  # re-entered: its name, its flag
        assert vs.get_variable("a", [1]) == a
        assert vs.get_variable_scope().name == "auto"
    with vs.variable_scope("plain") as plain:
        plain.reuse_variables()
        assert vs.get_variable_scope().reuse is True
        with pytest.raises(ValueError):
            vs.get_variable("x", [1])


def test_name_scopes_change_ops_not_variables(vs):
    with vs.variable_scope("layer_a") as first:
        assert first.original_name_scope == "layer_a/"
    with vs.variable_scope("layer_a") as again:  # name scope gets a suffix
        assert again.original_name_scope == "layer_a_1/"
        assert vs.get_variable("w", [1]).name == "layer_a/w:0"
        with vs.name_scope("ops") as ops:
            assert ops == "layer_a_1/ops/"
            assert vs.op_name("add") == "layer_a_1/ops/add:0"
            assert vs.op_name("add") == "layer_a_1/ops/add_1:0"
            assert vs.get_variable("v", [1]).name == "layer_a/v:0"
    with vs.variable_scope(None, default_name="dense") as d0:
        pass
    with vs.variable_scope(None, default_name="dense") as d1:
        pass
    assert (d0.name, d1.name) == ("dense", "dense_1")


def test_scope_defaults_custom_getters_and_tf_variable(vs):
    with vs.variable_scope("defaults", initializer=vs.constant_initializer(2.5),
                           dtype=vs.float64):
        v = vs.get_variable("v", [3])
        assert v.dtype == vs.float64 and vs.get_variable_scope().dtype == vs.float64
        np.testing.assert_array_equal(v.pull(), np.full(3, 2.5))
        vs.get_variable_scope().set_initializer(vs.ones_initializer())
        np.testing.assert_array_equal(vs.get_variable("u", [2]).pull(), np.ones(2))

    seen = []

    def outer(getter, name, *args, **kwargs):
        seen.append(("outer", name))
        return getter(name, *args, **kwargs)

    def inner(getter, name, *args, **kwargs):
        seen.append(("inner", name))
        kwargs["trainable"] = False
        return getter(name + "_custom", *args, **kwargs)

    with vs.variable_scope("getters", custom_getter=outer):
        with vs.variable_scope("deep", custom_getter=inner):
            v = vs.get_variable("w", [1])
    assert v.name == "getters/deep/w_custom:0" and not v.trainable
    assert seen == [("inner", "getters/deep/w"), ("outer", "getters/deep/w_custom")]

    with vs.name_scope("tfvar"):
        first = vs.Variable([1.0, 2.0])
        second = vs.Variable(np.arange(4, dtype=np.int64).reshape(2, 2), name="counts")
    assert first.name == "tfvar/Variable:0" and first.dtype == vs.float32
    assert second.name == "tfvar/counts:0" and second.shape == (2, 2)
    np.testing.assert_array_equal(second.pull(), [[0, 1], [2, 3]])


def test_collections_local_and_partitioned_variables(vs):
    with vs.variable_scope("coll"):
        w = vs.get_variable("w", [1])
        local = vs.get_local_variable("step", [], dtype=vs.int64)
        emb = vs.get_variable("emb", [10, 4], partitioner=vs.fixed_size_partitioner(3),
                              initializer=vs.random_uniform_initializer(seed=7))
    assert not local.trainable and local.shape == ()
    assert w in vs.trainable_variables(scope="coll")
    assert local in vs.local_variables(scope="coll/")
    assert w in vs.global_variables(scope="coll")
    assert local not in vs.global_variables(scope="coll")
    assert emb.partitioned and emb.name == "coll/emb"
    parts = emb.parts()
    assert [p.name for p in parts] == [f"coll/emb/part_{i}:0" for i in range(3)]
    whole = emb.pull()
    assert whole.shape == (10, 4)
    np.testing.assert_array_equal(whole[:4], parts[0].pull())
    np.testing.assert_array_equal(whole[4:7], parts[1].pull())


def test_scope_stacks_are_per_thread(vs):
    barrier = threading.Barrier(2, timeout=30)
    names = {}

    def worker(scope):
        with vs.variable_scope(scope):
            barrier.wait()  # both scopes open at once
            names[scope] = vs.get_variable("w", [1]).name
            barrier.wait()

    threads = [threading.Thread(target=worker, args=(s,)) for s in ("t0", "t1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert names == {"t0": "t0/w:0", "t1": "t1/w:0"}
    assert vs.get_variable_scope().name == ""


def test_custom_getters_get_reuse_and_reentry_runs_the_kept_getter_once(vs):
    calls = []

    def counting(getter, name, *args, **kwargs):
        calls.append((name, kwargs["reuse"]))
        return getter(name, *args, **kwargs)

    with vs.variable_scope("kept", custom_getter=counting) as kept:
        vs.get_variable("v", [1])
    with vs.variable_scope("elsewhere", custom_getter=counting):
        with vs.variable_scope(kept, reuse=True):  # the kept scope's getter only
            vs.get_variable("v", [1])
    assert calls == [("kept/v", False), ("kept/v", True)]

    def keywords_only(**kwargs):
        return kwargs["getter"](**{k: v for k, v in kwargs.items() if k != "getter"})

    with vs.variable_scope("kw", custom_getter=keywords_only):
        assert vs.get_variable("v", [2]).shape == (2,)


def test_initializer_values_callables_and_shapes_as_tensorflow(vs):
    with vs.variable_scope("inits"):
        with pytest.raises(ValueError, match="don't match"):
            vs.get_variable("a", initializer=[1.5, 2.5], dtype=vs.int32)
        with pytest.raises(ValueError, match="don't match"):
            vs.get_variable("b", initializer=4, dtype=vs.float32)
        assert vs.get_variable("c", initializer=[1, 2**40]).dtype == vs.int64
        assert vs.get_variable("d", 5).shape == (5,)
        made = vs.get_variable("e", [2, 2], initializer=lambda shape, dtype: np.eye(*shape))
        np.testing.assert_array_equal(made.pull(), np.eye(2))
    assert vs.Variable(np.float64(1.0)).dtype == vs.float64


def test_the_root_scope_object_acts_on_the_root(vs):
    root = vs.get_variable_scope()
    assert root.dtype == vs.float32 and root.name == ""
    with vs.variable_scope("not_root") as inner:
        root.reuse_variables()  # marks the root, not the innermost scope
        assert inner.reuse is False and root.reuse is True
    assert vs.get_variable_scope().reuse is True
    with vs.variable_scope("closed") as closed:
        pass
    closed.reuse_variables()  # a kept scope, as TensorFlow allows
    with vs.variable_scope(closed):
        assert vs.get_variable_scope().reuse is True
