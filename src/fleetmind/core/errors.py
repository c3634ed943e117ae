"""The one exception tree of fleetmind.

Every error that fleetmind raises on purpose derives from :class:`FleetmindError`.
Each class names what went wrong; its message says what to do about it. The rpc
layer maps each class to exactly one gRPC status code (``grpc_status``), the CLI
maps every class to exit code 2 and prints the message without a traceback.

    FleetmindError
    ├── ConfigError                 bad flags, config files or arguments
    │   └── UnknownNameError        an env id, algorithm or model that is not registered
    ├── InvalidInputError           data that does not fit the contract (shape, dtype, NaN)
    ├── NotFoundError               a model, version or file that does not exist
    ├── PreconditionError           the request is valid but the state is not (stale session)
    │   ├── RunDirError             a run directory that cannot be used as asked
    │   └── CheckpointError         a checkpoint that is missing or corrupted
    ├── EnvironmentStepError        an environment that misbehaves (NaN observations)
    ├── DivergedError               training produced NaN losses or parameters
    ├── OverloadedError             a full queue or a message over the limit
    ├── AuthenticationError         missing or wrong credentials
    │   └── PermissionDeniedError   a call for a session without that session's secret
    └── UnavailableError            a peer that cannot be reached right now
"""

from __future__ import annotations


class FleetmindError(Exception):
    """Base class of all errors fleetmind raises on purpose."""

    grpc_status = "INTERNAL"


class ConfigError(FleetmindError, ValueError):
    """A flag, config file or argument is invalid."""

    grpc_status = "INVALID_ARGUMENT"


class UnknownNameError(ConfigError, KeyError):
    """A name (env id, algorithm, model) is not registered."""

    grpc_status = "NOT_FOUND"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidInputError(FleetmindError, ValueError):
    """Data does not match the contract (shape, dtype, length, NaN)."""

    grpc_status = "INVALID_ARGUMENT"


class NotFoundError(FleetmindError, LookupError):
    """A model, version or file does not exist."""

    grpc_status = "NOT_FOUND"


class PreconditionError(FleetmindError):
    """The request is well formed but the system is not in a state to accept it."""

    grpc_status = "FAILED_PRECONDITION"


class RunDirError(PreconditionError):
    """A run directory cannot be used as asked (non-empty without --force/--resume)."""


class CheckpointError(PreconditionError):
    """A checkpoint is missing, truncated or fails its integrity check."""


class EnvironmentStepError(FleetmindError, RuntimeError):
    """An environment misbehaved, for example returned NaN observations."""

    grpc_status = "INTERNAL"


class DivergedError(FleetmindError, RuntimeError):
    """Training produced NaN losses or parameters."""

    grpc_status = "INTERNAL"


class OverloadedError(FleetmindError):
    """A queue is full or a message exceeds its size limit."""

    grpc_status = "RESOURCE_EXHAUSTED"


class AuthenticationError(FleetmindError):
    """Credentials are missing or wrong."""

    grpc_status = "UNAUTHENTICATED"


class PermissionDeniedError(AuthenticationError):
    """The caller may reach the service but not this session: its secret is wrong."""

    grpc_status = "PERMISSION_DENIED"


class UnavailableError(FleetmindError, ConnectionError):
    """A peer cannot be reached right now; retrying later may succeed."""

    grpc_status = "UNAVAILABLE"


ECHO_CHARS = 64
"""Most characters of caller input that an error message quotes."""


def echo(value: object, limit: int = ECHO_CHARS, *, bare: bool = False) -> str:
    """``value`` quoted for an error message about caller input, cut after ``limit``.

    Every message that repeats what a caller sent (a model name, a datatype, a shape)
    quotes it through here: unbounded, a 100,000-character name would outgrow gRPC's
    metadata limit (a status message travels as a header) or fill the log. Non-ASCII
    characters are escaped, so the quote's length bounds its size on the wire too.
    ``bare``: a string without its quotes.
    """
    text = ascii(value)
    if bare and isinstance(value, str):
        text = text[1:-1]
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} characters)"
