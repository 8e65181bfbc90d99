"""The errors of :class:`murr.client.Client`, each with the HTTP ``status_code`` of the answer
and the server's ``message``."""

from __future__ import annotations

import contextlib
from typing import Iterator

from murr import errors as _native

__all__ = [
    "MurrError",
    "TableNotFoundError",
    "TableAlreadyExistsError",
    "InvalidRequestError",
    "ServerError",
    "UnauthorizedError",
    "ForbiddenError",
]


class MurrError(Exception):
    """Base class of the errors the server answers."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class TableNotFoundError(MurrError):
    """The table does not exist (404)."""


class TableAlreadyExistsError(MurrError):
    """A table with this name already exists (409)."""


class InvalidRequestError(MurrError):
    """The server refused the request (400): a bad schema, key types that do not widen to the
    key's, an unknown column. The message names it."""


class UnauthorizedError(MurrError):
    """The server wants a valid bearer token: pass ``token=`` to the client (401)."""


class ForbiddenError(MurrError):
    """The token lacks the scope (read, write or admin) that the call needs (403)."""


class ServerError(MurrError):
    """The server failed (5xx), or could not be reached (status 503)."""


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raises murr's native errors as these, with the status the server answered."""
    try:
        yield
    except _native.TableNotFoundError as e:
        raise TableNotFoundError(404, str(e)) from None
    except _native.TableExistsError as e:
        raise TableAlreadyExistsError(409, str(e)) from None
    except _native.InvalidInputError as e:
        raise InvalidRequestError(400, str(e)) from None
    except _native.AuthenticationError as e:
        raise UnauthorizedError(401, str(e)) from None
    except _native.PermissionDeniedError as e:
        raise ForbiddenError(403, str(e)) from None
    except _native.MurrConnectionError as e:
        raise ServerError(503, str(e)) from None
    except _native.MurrError as e:
        raise ServerError(500, str(e)) from None
