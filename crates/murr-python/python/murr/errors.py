"""The exceptions murr raises.

Every one is a :class:`MurrError`. Each also derives from the builtin exception that code written
for upstream murr catches: a missing table is a ``FileNotFoundError``, an existing one and bad
input are ``ValueError``, an unreachable server is a ``ConnectionError``, a missing or refused token a ``PermissionError``.
"""

from __future__ import annotations

__all__ = [
    "MurrError",
    "TableNotFoundError",
    "TableExistsError",
    "InvalidInputError",
    "MurrConnectionError",
    "ClosedError",
    "AuthenticationError",
    "PermissionDeniedError",
]


class MurrError(Exception):
    """Base class of murr's errors; also raised alone for storage and server trouble."""


class TableNotFoundError(MurrError, FileNotFoundError):
    """The table does not exist."""


class TableExistsError(MurrError, ValueError):
    """A table of that name already exists."""


class InvalidInputError(MurrError, ValueError):
    """The request was wrong: a column, a type, a null, a name, a schema. The message names it."""


class MurrConnectionError(MurrError, ConnectionError):
    """The server could not be reached, or the connection failed or timed out."""


class ClosedError(MurrError, RuntimeError):
    """The client or engine was closed."""


class AuthenticationError(MurrError, PermissionError):
    """The server wants a valid bearer token: pass ``token=`` to ``connect`` (HTTP 401)."""


class PermissionDeniedError(MurrError, PermissionError):
    """The token lacks the scope (read, write or admin) that the call needs (HTTP 403)."""
