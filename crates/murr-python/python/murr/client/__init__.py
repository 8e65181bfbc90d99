"""An asyncio client with the names and behaviour of the ``murr`` 0.3 client on PyPI
(generation 2 of the API: compound and integer keys, sparse reads)::

    from murr.client import Client, ColumnSchema, DType, TableSchema

    async with Client("http://127.0.0.1:8080") as client:
        await client.create_table("ratings", TableSchema(columns={
            "user": ColumnSchema(dtype=DType.UTF8, nullable=False, key=True),
            "item": ColumnSchema(dtype=DType.INT64, nullable=False, key=True),
            "score": ColumnSchema(dtype=DType.FLOAT32, strict=False),
        }))
        await client.write("ratings", pa.table({"user": ["u1"], "item": [7], "score": [0.5]}))
        result = await client.read("ratings", {"user": ["u1"], "item": [7]}, columns=["score"])

It talks to the server over HTTP with murr's native client (Arrow IPC bodies, pooled
connections); each call runs on a worker thread with the GIL released.
"""

from murr.client._client import Client
from murr.client.errors import (
    ForbiddenError,
    InvalidRequestError,
    MurrError,
    ServerError,
    TableAlreadyExistsError,
    TableNotFoundError,
    UnauthorizedError,
)
from murr.schema import ColumnSchema, DType, TableSchema

#: The first column of every read's answer: the position of the row's key in the request.
IDX_COLUMN = "_idx"

__all__ = [
    "Client",
    "ColumnSchema",
    "DType",
    "ForbiddenError",
    "IDX_COLUMN",
    "InvalidRequestError",
    "MurrError",
    "ServerError",
    "TableAlreadyExistsError",
    "TableNotFoundError",
    "TableSchema",
    "UnauthorizedError",
]
