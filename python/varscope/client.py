"""Connections: ``vs.connect(...)`` opens a session and makes it the default
one, as TensorFlow 1.x code works on a default graph."""

import threading

from varscope import _native

_default_lock = threading.Lock()
_default = None


class Client:
    """A session on a varscoped server (or any shard of a cluster).

    Scope stacks are per thread, as TensorFlow's are per graph and thread.
    Sessions are renewed in the background and re-opened, with every open
    scope, after a server restart (the C++ client does this).
    """

    def __init__(self, native, target):
        self._native = native
        self.target = target
        self._local = threading.local()

    def _stack(self):
        """This thread's open variable scopes (varscope.scopes objects)."""
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    @property
    def _root_pending(self):
        """Changes to the root scope asked for while other scopes were open
        on this thread; made when the last of them closes."""
        pending = getattr(self._local, "root_pending", None)
        if pending is None:
            pending = self._local.root_pending = []
        return pending

    def _run_root_pending(self):
        pending, self._local.root_pending = self._root_pending, []
        for change in pending:
            change()

    @property
    def session_id(self):
        return self._native.session_id

    @property
    def session_recoveries(self):
        return self._native.session_recoveries

    def as_default(self):
        """``with client.as_default():`` makes this client the default."""
        return _DefaultClient(self)

    def close(self):
        """Ends the session (variables stay). The client is unusable after."""
        global _default
        with _default_lock:
            if _default is self:
                _default = None
        self._native = None

    def __repr__(self):
        return f"vs.Client({self.target!r})"


class _DefaultClient:
    def __init__(self, client):
        self._client = client
        self._previous = None

    def __enter__(self):
        global _default
        with _default_lock:
            self._previous, _default = _default, self._client
        return self._client

    def __exit__(self, *exc):
        global _default
        with _default_lock:
            _default = self._previous


def connect(target="127.0.0.1:50051", token=None, tls=False, ca_file="", cert_file="",
            key_file="", timeout=30.0, wait_for_ready=False, client_name="varscope-python",
            shared_memory=True):
    """Connects to `target`, opens a session, and makes it the default client.

    `token`: sent as a bearer token (over TLS, or to a loopback target).
    `tls`, `ca_file`, `cert_file`, `key_file`: TLS and mutual TLS (PEM files).
    `timeout`: the deadline of each call, in seconds. `wait_for_ready`:
    calls wait (within it) for a restarting server instead of failing
    UNAVAILABLE at once. `shared_memory`: with a daemon on this machine,
    tensors of 64 KiB and more move through shared memory instead of gRPC
    (falls back to gRPC on its own where that is not possible).
    """
    global _default
    native = _native.Client.connect(target, token or "", tls, ca_file, cert_file, key_file,
                                    float(timeout), wait_for_ready, client_name,
                                    bool(shared_memory))
    client = Client(native, target)
    with _default_lock:
        _default = client
    return client


def get_default_client():
    """The client of the last ``connect`` (or ``as_default`` block)."""
    with _default_lock:
        client = _default
    if client is None or client._native is None:
        raise RuntimeError("not connected: call vs.connect('host:port') first")
    return client


def _resolve(client):
    return client if client is not None else get_default_client()
