"""NumPy values, updates, optimizers, watches, errors and session recovery."""

import socket
import threading

import numpy as np
import pytest

from conftest import Daemon

DTYPES = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("name", DTYPES)
def test_numpy_round_trip_for_every_dtype(vs, name):
    dtype = vs.as_dtype(name)
    rng = np.random.default_rng(1)
    value = (rng.integers(0, 2, size=(3, 5)) if name == "bool"
             else rng.integers(-100, 100, size=(3, 5)) if name != "uint8"
             else rng.integers(0, 255, size=(3, 5))).astype(dtype.as_numpy_dtype)
    v = vs.get_variable(f"rt/{name}", [3, 5], dtype=dtype, initializer=vs.zeros_initializer())
    v.assign(value)
    pulled = v.pull()
    assert pulled.dtype == dtype.as_numpy_dtype and pulled.shape == (3, 5)
    np.testing.assert_array_equal(pulled, value)
    np.testing.assert_array_equal(v.pull(rows=(1, 2)), value[1:])


def test_bfloat16_travels_as_bit_patterns(vs):
    v = vs.get_variable("rt/bf16", [3], dtype=vs.bfloat16, initializer=vs.zeros_initializer())
    v.assign(np.array([1.0, -2.5, 3.0], dtype=np.float32))
    bits = v.pull()
    assert bits.dtype == np.uint16
    np.testing.assert_array_equal((bits.astype(np.uint32) << 16).view(np.float32),
                                  [1.0, -2.5, 3.0])


def test_updates_rows_and_atomic_multi_variable_pushes(vs):
    v = vs.get_variable("upd/v", [4, 2], initializer=vs.zeros_initializer())
    result = v.assign(np.ones((4, 2)))
    assert result.applied and result.version > v.version
    v.assign_add(np.full((4, 2), 2.0))
    v.assign_sub(np.full((4, 2), 0.5))
    np.testing.assert_array_equal(v.pull(), np.full((4, 2), 2.5))
    v.scatter_add([0, 3], [[1, 1], [2, 2]])
    np.testing.assert_array_equal(v.gather([3, 0]), [[4.5, 4.5], [3.5, 3.5]])
    with pytest.raises(vs.errors.AbortedError):
        v.assign(np.zeros((4, 2)), expected_version=1)
    u = vs.get_variable("upd/u", [2], initializer=vs.zeros_initializer())
    results = vs.push_many({u: [1.0, 2.0], "upd/v": ("add", np.ones((4, 2)))})
    assert [r.name for r in results] == ["upd/u", "upd/v"]
    # A failed push changes nothing, also for the items that were valid
    # (u has no optimizer: the server refuses the whole push).
    before = u.pull()
    with pytest.raises(vs.errors.FailedPreconditionError):
        vs.push_many({v: ("add", np.ones((4, 2))), u: ("apply_gradient", [1.0, 1.0])})
    np.testing.assert_array_equal(u.pull(), before)
    np.testing.assert_array_equal(v.gather([3, 0]), [[5.5, 5.5], [4.5, 4.5]])
    with pytest.raises(vs.errors.InvalidArgumentError):
        u.assign([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="shape"):
        v.assign(np.zeros((2, 4)))  # the right size, the wrong shape


def test_server_side_optimizers(vs):
    w = vs.get_variable("opt/w", [2], initializer=vs.constant_initializer(1.0))
    states = vs.set_optimizer([w], vs.train.AdamOptimizer(0.1))
    assert states[0].optimizer == "Adam" and states[0].slots
    w.apply_gradient([1.0, -1.0])
    np.testing.assert_allclose(w.pull(), [0.9, 1.1], rtol=1e-5)
    s = vs.get_variable("opt/s", [1], initializer=vs.constant_initializer(1.0))
    s.apply_gradient([2.0], optimizer=vs.train.GradientDescentOptimizer(0.5))
    np.testing.assert_allclose(s.pull(), [0.0])


def test_watch_and_wait(vs):
    v = vs.get_variable("watched/v", [1], initializer=vs.zeros_initializer())
    with vs.watch("watched", send_initial=True) as events:
        first = next(events)  # the stream is registered once this arrives
        assert (first.kind.name, first.name) == ("EXISTING", "watched/v")
        result = v.assign_add([1.0])
        update = next(events)
        assert (update.kind.name, update.name, update.version) == (
            "UPDATED", "watched/v", result.version)
    # A wait from a version already passed returns at once with the new one.
    assert v.wait_for_newer_than(timeout=20) == result.version
    value, version = v.pull_versioned()
    assert value.tolist() == [1.0] and version == result.version
    with pytest.raises(vs.errors.DeadlineExceededError):
        v.wait_for_newer_than(version=1 << 40, timeout=0.2)


def test_blocking_calls_let_other_threads_run(vs):
    # A wait holds no GIL: the main thread's push is what ends it (were the
    # GIL held, the push could not run and the test would hang).
    v = vs.get_variable("gil/v", [1], initializer=vs.zeros_initializer())
    got = []
    waiter = threading.Thread(target=lambda: got.append(v.wait_for_newer_than(timeout=60)))
    waiter.start()
    while not waiter.is_alive():
        pass
    result = v.assign([1.0])
    waiter.join()
    assert got and got[0] >= result.version


def test_closing_the_client_inside_a_scope_is_safe(daemon):
    import varscope as vs
    client = vs.connect(daemon.address)
    with vs.variable_scope("closing", client=client):
        with vs.name_scope("ops", client=client):
            client.close()  # the open guards keep the C++ client until they close
    other = vs.connect(daemon.address)
    assert vs.get_variable_scope(client=other).name == ""
    other.close()


def test_unreachable_server_is_unavailable():
    import varscope as vs
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening
        with pytest.raises(vs.errors.UnavailableError):
            vs.connect(f"127.0.0.1:{port}", timeout=2)


def test_session_and_scopes_recover_after_a_daemon_restart(tmp_path):
    import varscope as vs
    daemon = Daemon("--durability=strict", data_dir=str(tmp_path / "data"))
    try:
        client = vs.connect(daemon.address)
        with vs.variable_scope("job"):
            w = vs.get_variable("w", [2], initializer=vs.zeros_initializer())
            w.assign([1.0, 2.0])
            first = client.session_id
            daemon.kill()
            daemon.start()  # same port, same data directory
            # The next call finds its session gone: the client opens a new
            # one, re-opens "job", and the call goes on.
            again = vs.get_variable("v", [1], initializer=vs.ones_initializer())
            assert again.name == "job/v:0"
            assert client.session_recoveries == 1 and client.session_id != first
            np.testing.assert_array_equal(w.pull(), [1.0, 2.0])
        client.close()
    finally:
        daemon.stop()
