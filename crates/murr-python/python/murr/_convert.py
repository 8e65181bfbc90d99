"""Turning what Python users hold into what the native module reads: Arrow streams for writes,
Arrow string arrays or lists of str for keys. Nothing here copies values that Arrow can share."""

from __future__ import annotations

import os
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc

import re

from murr.errors import InvalidInputError
from murr.schema import DType, DTypeLike, TableSchema


_ARROW_TYPES = {
    DType.UTF8: pa.string(),
    DType.BOOL: pa.bool_(),
    DType.INT8: pa.int8(),
    DType.INT16: pa.int16(),
    DType.INT32: pa.int32(),
    DType.INT64: pa.int64(),
    DType.UINT8: pa.uint8(),
    DType.UINT16: pa.uint16(),
    DType.UINT32: pa.uint32(),
    DType.UINT64: pa.uint64(),
    DType.FLOAT32: pa.float32(),
    DType.FLOAT64: pa.float64(),
    DType.FLOAT16: pa.float16(),
    DType.BINARY: pa.binary(),
    DType.DATE32: pa.date32(),
}

_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:, ?(.+))?\]$")


def arrow_type(dtype: DTypeLike) -> pa.DataType:
    """The pyarrow type of a murr type (murr answers exactly these)."""
    if isinstance(dtype, DType):
        return _ARROW_TYPES[dtype]
    text = str(dtype).strip()
    if text in DType._value2member_map_:
        return _ARROW_TYPES[DType(text)]
    m = _TIMESTAMP.match(text)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    if text.startswith("fixed_size_list<") and text.endswith(">"):
        item, n = text[len("fixed_size_list<") : -1].rsplit(",", 1)
        return pa.list_(arrow_type(item.strip()), int(n))
    if text.startswith("list<") and text.endswith(">"):
        return pa.list_(arrow_type(text[len("list<") : -1].strip()))
    raise InvalidInputError(f"unknown dtype {text!r}")


def is_data_frame(data: Any) -> bool:
    """A pandas or Polars DataFrame: its column types come from Python's defaults (int64,
    float64), not from the table, so :func:`conform` brings them to the table's types."""
    return type(data).__module__.split(".")[0] in ("pandas", "polars")


def conform(table: pa.Table, schema: TableSchema) -> pa.Table:
    """``table`` with each column the table schema knows cast to its murr type, checked: an
    integer that does not fit, or a value that cannot be read as the type, is an
    InvalidInputError naming the column. Float64 to float32 rounds, as NumPy's astype does."""
    columns = []
    for name, column in zip(table.column_names, table.columns):
        spec = schema.columns.get(name)
        target = arrow_type(spec.dtype) if spec is not None else None
        if target is None or column.type.equals(target) or (
            target == pa.string() and pa.types.is_large_string(column.type)
        ):
            columns.append(column)
            continue
        try:
            columns.append(pc.cast(column, target, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
            raise InvalidInputError(
                f"column {name!r}: cannot write {column.type} values as {spec.dtype}: {e}"
            ) from None
    return pa.Table.from_arrays(columns, names=table.column_names)


def arrow_stream(data: Any) -> Any:
    """An object exposing ``__arrow_c_stream__`` with the rows of ``data``: a pyarrow Table,
    RecordBatch or RecordBatchReader, a pandas or Polars DataFrame, or anything else with the
    Arrow PyCapsule stream interface."""
    if isinstance(data, (pa.Table, pa.RecordBatchReader)):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if hasattr(data, "__arrow_c_stream__"):
        return data
    if hasattr(data, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(data)])
    raise InvalidInputError(
        "write: expected a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or Polars "
        f"DataFrame, or an object with __arrow_c_stream__; got {type(data).__name__}"
    )


def keys_of(keys: Any) -> Any:
    """A list of str or an Arrow string array, from a list, tuple, NumPy array, pandas Series,
    pyarrow (chunked) array or any iterable of str."""
    if isinstance(keys, list):
        return keys
    if isinstance(keys, str):
        raise InvalidInputError("keys: expected a list of keys, got one str")
    if isinstance(keys, pa.ChunkedArray):
        return keys.combine_chunks()
    if isinstance(keys, pa.Array) or hasattr(keys, "__arrow_c_array__"):
        return keys
    if type(keys).__module__.split(".")[0] == "numpy":
        try:
            return pa.array(keys, type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InvalidInputError(f"keys: a NumPy array of str is expected: {e}") from None
    try:
        return list(keys)
    except TypeError:
        raise InvalidInputError(
            f"keys: expected a list of str, a NumPy array or an Arrow array; got {type(keys).__name__}"
        ) from None


def columns_of(columns: Sequence[str]) -> list[str]:
    if isinstance(columns, str):
        raise InvalidInputError("columns: expected a list of column names, got one str")
    out = list(columns)
    for c in out:
        if not isinstance(c, str):
            raise InvalidInputError(f"columns: a column name must be a str, got {c!r}")
    return out


def key_table(keys: Any) -> pa.Table:
    """Generation-2 keys as a pyarrow Table of key columns: a Table, a RecordBatch, or a
    mapping of key column name to values (Python ints become int64, str utf8)."""
    if isinstance(keys, pa.Table):
        return keys
    if isinstance(keys, pa.RecordBatch):
        return pa.Table.from_batches([keys])
    if isinstance(keys, dict) or hasattr(keys, "items"):
        try:
            return pa.table(dict(keys))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
            raise InvalidInputError(f"keys: {e}") from None
    raise InvalidInputError(
        f"keys: expected a pyarrow Table or RecordBatch, or a mapping of key column to values, "
        f"got {type(keys).__name__}"
    )


def ca_pem(ca_cert: str | os.PathLike[str] | bytes | None) -> bytes | None:
    """A client's ``ca_cert``: PEM bytes as they are, a path read, None as None."""
    if ca_cert is None or isinstance(ca_cert, bytes):
        return ca_cert
    try:
        with open(ca_cert, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidInputError(f"ca_cert: cannot read {os.fspath(ca_cert)!r}: {e}") from None
