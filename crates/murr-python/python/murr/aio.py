"""The asyncio API: ``from murr.aio import Murr``, the same methods as :mod:`murr.sync`,
awaitable. Each call runs on a worker thread with the GIL released, so the event loop keeps
serving while murr works."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Sequence

import pyarrow as pa

from murr import sync
from murr.schema import TableSchema

__all__ = ["Murr"]


class Murr:
    """A murr engine in this process, or a client of a murr server, for asyncio code."""

    def __init__(self, inner: sync.Murr) -> None:
        self._inner = inner

    @classmethod
    async def start_local(
        cls,
        cache_dir: str | os.PathLike[str],
        http_port: int | None = None,
        *,
        grpc_port: int | None = None,
        host: str = "127.0.0.1",
    ) -> "Murr":
        """As :meth:`murr.sync.Murr.start_local`."""
        inner = await asyncio.to_thread(
            sync.Murr.start_local, cache_dir, http_port, grpc_port=grpc_port, host=host
        )
        return cls(inner)

    @classmethod
    async def connect(
        cls,
        endpoint: str,
        *,
        timeout: float = 30.0,
        token: str | None = None,
        ca_cert: str | os.PathLike[str] | bytes | None = None,
    ) -> "Murr":
        """As :meth:`murr.sync.Murr.connect`."""
        return cls(sync.Murr.connect(endpoint, timeout=timeout, token=token, ca_cert=ca_cert))

    @property
    def http_url(self) -> str | None:
        return self._inner.http_url

    @property
    def grpc_url(self) -> str | None:
        return self._inner.grpc_url

    async def create_table(self, name: str, schema: TableSchema) -> None:
        await asyncio.to_thread(self._inner.create_table, name, schema)

    async def add_columns(self, table: str, columns: dict[str, Any]) -> TableSchema:
        return await asyncio.to_thread(self._inner.add_columns, table, columns)

    async def set_ttl(self, table: str, ttl: int | str | None) -> TableSchema:
        return await asyncio.to_thread(self._inner.set_ttl, table, ttl)

    async def drop_table(self, name: str) -> None:
        await asyncio.to_thread(self._inner.drop_table, name)

    async def write(self, table: str, data: Any) -> int:
        return await asyncio.to_thread(self._inner.write, table, data)

    async def read(self, table: str, keys: Any, columns: Sequence[str]) -> pa.RecordBatch:
        return await asyncio.to_thread(self._inner.read, table, keys, columns)

    async def read_keyed(self, table: str, keys: Any, columns: Sequence[str]) -> pa.Table:
        return await asyncio.to_thread(self._inner.read_keyed, table, keys, columns)

    async def compact(self, table: str) -> None:
        await asyncio.to_thread(self._inner.compact, table)

    async def load(self, table: str, url: str, mode: str = "upsert") -> dict[str, Any]:
        """As :meth:`murr.sync.Murr.load`."""
        return await asyncio.to_thread(self._inner.load, table, url, mode)

    async def list_tables(self) -> dict[str, TableSchema]:
        return await asyncio.to_thread(self._inner.list_tables)

    async def get_schema(self, name: str) -> TableSchema:
        return await asyncio.to_thread(self._inner.get_schema, name)

    async def close(self) -> None:
        await asyncio.to_thread(self._inner.close)

    async def __aenter__(self) -> "Murr":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"aio.{self._inner!r}"
