"""The blocking API: ``from murr.sync import Murr``.

``Murr.start_local(cache_dir)`` runs the engine in this process; ``Murr.connect(url)`` talks to
a murr server over HTTP (``http://host:port``) or Arrow Flight (``grpc://host:port``). Both have
the same methods. Each call releases the GIL while it works, so threads run in parallel.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import pyarrow as pa

from murr import _murr
from murr._convert import arrow_stream, ca_pem, columns_of, conform, is_data_frame, key_table, keys_of
from murr.errors import InvalidInputError
from murr.schema import ColumnSchema, TableSchema, check_ttl

__all__ = ["Murr"]


def _schema_json(schema: TableSchema | dict[str, Any]) -> str:
    if isinstance(schema, dict):
        schema = TableSchema.model_validate(schema)
    if not isinstance(schema, TableSchema):
        raise InvalidInputError(f"schema: expected a TableSchema, got {type(schema).__name__}")
    return schema.model_dump_json()


class Murr:
    """A murr engine in this process, or a client of a murr server."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @classmethod
    def start_local(
        cls,
        cache_dir: str | os.PathLike[str],
        http_port: int | None = None,
        *,
        grpc_port: int | None = None,
        host: str = "127.0.0.1",
    ) -> "Murr":
        """Opens (or creates) the murr folder ``cache_dir`` in this process.

        With ``http_port`` the engine also serves murr's HTTP API on ``host:http_port`` from the
        same tables (0 picks a free port: see :attr:`http_url`); with ``grpc_port``, Arrow Flight
        too. One process at a time may open a folder: a second gets an InvalidInputError.
        """
        return cls(_murr.Engine(os.fspath(cache_dir), http_port, grpc_port, host))

    @classmethod
    def connect(
        cls,
        endpoint: str,
        *,
        timeout: float = 30.0,
        token: str | None = None,
        ca_cert: str | os.PathLike[str] | bytes | None = None,
    ) -> "Murr":
        """A client of the murr server at ``endpoint``: ``http://host:port`` or
        ``grpc://host:port``, and with TLS ``https://host:port`` or ``grpc+tls://host:port``.
        It connects on first use; each call waits at most ``timeout`` seconds. With ``token``,
        every call carries it as a bearer token (for a server with ``server.auth.tokens``;
        AuthenticationError / PermissionDeniedError otherwise). ``ca_cert`` is a certificate
        authority to trust besides the system's: a PEM file's path, or PEM bytes."""
        return cls(_murr.Remote(endpoint, timeout, token, ca_pem(ca_cert)))

    @property
    def http_url(self) -> str | None:
        """Where an embedded engine serves HTTP (``http://127.0.0.1:port``), else None."""
        return getattr(self._native, "http_url", None)

    @property
    def grpc_url(self) -> str | None:
        """Where an embedded engine serves Arrow Flight (``grpc://127.0.0.1:port``), else None."""
        return getattr(self._native, "grpc_url", None)

    def create_table(self, name: str, schema: TableSchema) -> None:
        """Creates table ``name``. TableExistsError when it exists."""
        self._native.create_table(name, _schema_json(schema))

    def add_columns(
        self, table: str, columns: dict[str, ColumnSchema | dict[str, Any]]
    ) -> TableSchema:
        """Adds nullable columns after ``table``'s existing ones; rows written before read null
        in them, and nothing is rewritten. Returns the new schema. InvalidInputError for a
        column that is not nullable or a bad name or dtype; TableExistsError for a column the
        table already has (a column's type never changes)."""
        if not isinstance(columns, dict) or not columns:
            raise InvalidInputError("columns: expected a non-empty dict of name to ColumnSchema")
        body = {"columns": {n: ColumnSchema.model_validate(c).model_dump() for n, c in columns.items()}}
        return TableSchema.model_validate_json(self._native.alter_table(table, json.dumps(body)))

    def set_ttl(self, table: str, ttl: int | str | None) -> TableSchema:
        """Rows of ``table`` read as missing ``ttl`` after they were written (seconds, or a
        duration such as ``"7d"``); the rows already written included. None: rows never
        expire. Returns the new schema."""
        try:
            check_ttl(ttl)
        except ValueError as e:
            raise InvalidInputError(str(e)) from None
        body = json.dumps({"ttl": ttl})
        return TableSchema.model_validate_json(self._native.alter_table(table, body))

    def drop_table(self, name: str) -> None:
        """Drops table ``name`` and its data. TableNotFoundError when there is none."""
        self._native.drop_table(name)

    def write(self, table: str, data: Any) -> int:
        """Writes the rows of ``data`` into ``table``, all or none; returns the rows written.

        ``data`` is a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or Polars
        DataFrame, or any object with ``__arrow_c_stream__``. Columns are matched by name; a
        column left out is written as nulls; the last row of a key wins.

        Arrow input must have the table's types (or wider string types); a DataFrame's columns
        are cast to the table's types first (pandas' float64 to a float32 column, say), checked
        for overflow."""
        stream = arrow_stream(data)
        if is_data_frame(data):
            stream = conform(stream, self.get_schema(table))
        return self._native.write(table, stream)

    def read(self, table: str, keys: Any, columns: Sequence[str]) -> pa.RecordBatch:
        """One row per key, in the order asked (a key asked twice comes twice), with
        ``columns``; a key never written gives nulls. ``keys`` is a list of str, a NumPy array
        of str, or a pyarrow string array."""
        return self._native.read(table, keys_of(keys), columns_of(columns))

    def read_keyed(self, table: str, keys: Any, columns: Sequence[str]) -> pa.Table:
        """Generation 2's read, for compound and integer keys: ``keys`` holds one column per
        key column (a pyarrow Table or RecordBatch, or a mapping of column name to values).

        The answer is sparse: a row per key found, in request order (none for a key never
        written, two for a key asked twice), led by ``_idx`` (uint32, the key's position in
        ``keys``), then ``columns``. Key types widen (int32 keys for an int64 key column) but
        never narrow: a mapping of Python ints is int64, so pass ``pa.array(v, pa.int32())``
        for an int32 key column."""
        return pa.table(self._native.read_keyed(table, key_table(keys), columns_of(columns)))

    def compact(self, table: str) -> None:
        """Merges all of ``table``'s segments into one (dropping replaced and expired rows);
        returns when done."""
        self._native.compact(table)

    def load(self, table: str, url: str, mode: str = "upsert") -> dict[str, Any]:
        """Loads Parquet files from object storage into ``table`` and waits for the load to
        end; returns its final status (``rows``, ``files``, ``bytes``, ``seconds``, ``result``).

        ``url`` is one file, a prefix (every file under it but ``_*`` and ``.*`` ones, such as
        ``_SUCCESS``) or a glob: ``s3://bucket/dumps/2026-11-28/``, ``gs://…``, ``az://…``. A
        server reads the files itself, with its ``storage.s3`` settings and environment; the
        embedded engine with this process's ``AWS_*`` environment (``AWS_ENDPOINT`` and
        ``AWS_ALLOW_HTTP=true`` for an S3-compatible server on plain HTTP). ``mode``:
        ``"upsert"`` (one write: rows of other keys stay) or ``"replace"`` (the files' rows
        become the table's only rows). Readers see the old rows until the load commits; a
        failed load commits nothing and raises InvalidInputError naming the file."""
        if mode not in ("upsert", "replace"):
            raise InvalidInputError(f'mode {mode!r}: a load\'s mode is "replace" or "upsert"')
        return json.loads(self._native.load(table, url, mode))

    def list_tables(self) -> dict[str, TableSchema]:
        """Every table and its schema."""
        return {
            name: TableSchema.model_validate(s)
            for name, s in json.loads(self._native.list_tables()).items()
        }

    def get_schema(self, name: str) -> TableSchema:
        """Table ``name``'s schema."""
        return TableSchema.model_validate_json(self._native.get_schema(name))

    def close(self) -> None:
        """Closes the client, or stops the engine (and its HTTP server). Later calls raise
        ClosedError; closing twice is harmless."""
        self._native.close()

    def __enter__(self) -> "Murr":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = getattr(self._native, "url", None) or self.http_url or "embedded"
        return f"Murr({where})"
