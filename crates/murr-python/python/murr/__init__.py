"""murr: a columnar in-memory cache for ML inference.

    from murr import TableSchema, ColumnSchema, DType
    from murr.sync import Murr          # or: from murr.aio import Murr

    db = Murr.start_local("/var/cache/murr")        # the engine in this process
    db = Murr.connect("http://127.0.0.1:8080")      # a murr server (grpc://... for Flight)
"""

from murr._murr import __version__
from murr.errors import (
    AuthenticationError,
    ClosedError,
    InvalidInputError,
    MurrConnectionError,
    MurrError,
    PermissionDeniedError,
    TableExistsError,
    TableNotFoundError,
)
from murr.schema import ColumnSchema, DType, TableSchema, fixed_size_list, list_of, timestamp

__all__ = [
    "__version__",
    "ColumnSchema",
    "DType",
    "TableSchema",
    "timestamp",
    "list_of",
    "fixed_size_list",
    "MurrError",
    "TableNotFoundError",
    "TableExistsError",
    "InvalidInputError",
    "MurrConnectionError",
    "ClosedError",
    "AuthenticationError",
    "PermissionDeniedError",
]
