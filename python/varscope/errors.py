"""Exceptions named like TensorFlow's (``tf.errors``), one per gRPC code.

Every failed call raises an :class:`OpError` subclass carrying the gRPC
``code``, the server's machine-readable ``reason`` (``"VARIABLE_EXISTS"``,
``"SHAPE_MISMATCH"``, ...) and its ``metadata``. Where TensorFlow's
``get_variable`` / ``variable_scope`` raise ``ValueError`` (a variable that
already exists or does not exist, a shape or dtype mismatch, a bad
argument), the exception is also a ``ValueError``, so TF-style
``except ValueError`` works unchanged.
"""

__all__ = [
    "OpError", "CancelledError", "UnknownError", "InvalidArgumentError",
    "DeadlineExceededError", "NotFoundError", "AlreadyExistsError",
    "PermissionDeniedError", "ResourceExhaustedError", "FailedPreconditionError",
    "AbortedError", "OutOfRangeError", "UnimplementedError", "InternalError",
    "UnavailableError", "DataLossError", "UnauthenticatedError",
]


class OpError(Exception):
    """A failed varscope call: ``code`` (gRPC's number), ``message``,
    ``reason`` and ``metadata`` (the server's google.rpc.ErrorInfo)."""

    code = 2

    def __init__(self, message, reason="", metadata=None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})

    def __str__(self):
        return f"{self.message} [{self.reason}]" if self.reason else self.message


class CancelledError(OpError):
    code = 1


class UnknownError(OpError):
    code = 2


class InvalidArgumentError(OpError, ValueError):
    code = 3


class DeadlineExceededError(OpError):
    code = 4


class NotFoundError(OpError, ValueError):
    code = 5


class AlreadyExistsError(OpError, ValueError):
    code = 6


class PermissionDeniedError(OpError):
    code = 7


class ResourceExhaustedError(OpError):
    code = 8


class FailedPreconditionError(OpError):
    code = 9


class AbortedError(OpError):
    code = 10


class OutOfRangeError(OpError):
    code = 11


class UnimplementedError(OpError):
    code = 12


class InternalError(OpError):
    code = 13


class UnavailableError(OpError):
    code = 14


class DataLossError(OpError):
    code = 15


class UnauthenticatedError(OpError):
    code = 16


_BY_CODE = {cls.code: cls for cls in (
    CancelledError, UnknownError, InvalidArgumentError, DeadlineExceededError,
    NotFoundError, AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError,
    FailedPreconditionError, AbortedError, OutOfRangeError, UnimplementedError,
    InternalError, UnavailableError, DataLossError, UnauthenticatedError)}


def _from_status(code, message, reason, metadata):
    """The exception for a failed status (called by the native module)."""
    return _BY_CODE.get(code, UnknownError)(message, reason, metadata)
