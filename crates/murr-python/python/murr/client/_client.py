from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Callable, TypeVar

import pyarrow as pa

from murr import _murr
from murr._convert import ca_pem, columns_of, key_table
from murr.client.errors import InvalidRequestError, translated
from murr.schema import TableSchema

T = TypeVar("T")


class Client:
    """Asynchronous client of a murr server (HTTP)."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 30.0,
        token: str | None = None,
        ca_cert: str | os.PathLike[str] | bytes | None = None,
    ) -> None:
        """A client of the server at ``endpoint`` (``http://`` or ``https://``); with
        ``token``, every call carries it as a bearer token (for a server with
        ``server.auth.tokens``); ``ca_cert`` is a CA to trust (a PEM file's path, or PEM bytes)."""
        self._native = _murr.Remote(endpoint.rstrip("/"), float(timeout), token, ca_pem(ca_cert))

    async def _call(self, f: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with translated():
                return f(*args)

        return await asyncio.to_thread(run)

    async def create_table(self, name: str, schema: TableSchema) -> None:
        try:
            body = schema.model_dump_json()
        except ValueError as e:
            raise InvalidRequestError(400, str(e)) from None
        await self._call(self._native.create_table, name, body)

    async def drop_table(self, name: str) -> None:
        await self._call(self._native.drop_table, name)

    async def list_tables(self) -> dict[str, TableSchema]:
        text = await self._call(self._native.list_tables)
        return {name: TableSchema.model_validate(s) for name, s in json.loads(text).items()}

    async def get_schema(self, name: str) -> TableSchema:
        return TableSchema.model_validate_json(await self._call(self._native.get_schema, name))

    async def write(self, table: str, data: pa.Table | pa.RecordBatch | Mapping[str, Any]) -> None:
        """Writes rows to a table, all or none. Columns are matched to the table's by name;
        a column the table does not have is refused (InvalidRequestError naming it)."""
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        elif not isinstance(data, pa.Table):
            data = pa.table(dict(data))
        await self._call(self._native.write, table, data)

    async def read(
        self,
        table: str,
        keys: pa.Table | pa.RecordBatch | Mapping[str, Any],
        columns: Sequence[str],
    ) -> pa.Table:
        """Reads ``columns`` for a batch of keys: ``keys`` holds one column per key column of
        the table (an Arrow table or batch, or a ``{name: values}`` mapping).

        The answer is sparse: a row per key found and none for a missing key, led by ``_idx``
        (uint32, the position of the row's key in ``keys``), then ``columns`` in order. Rows come
        in request order. Key types widen but never narrow: a mapping of Python ints is int64,
        so pass ``{"id": pa.array([1, 2], pa.int32())}`` for an int32 key column."""
        with translated():
            keys = key_table(keys)
            names = columns_of(columns)
        batch = await self._call(self._native.read_keyed, table, keys, names)
        return pa.table(batch)

    async def compact(self, table: str) -> None:
        """Compacts a table, returning when the compaction is done."""
        await self._call(self._native.compact, table)

    async def close(self) -> None:
        self._native.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
