"""Table schemas: the same field names and JSON as the HTTP API's schema.

``TableSchema(key="id", columns={"id": ColumnSchema(dtype=DType.UTF8, nullable=False), ...})``

Parametrised types are strings in the API's spelling, made by :func:`timestamp`,
:func:`list_of` and :func:`fixed_size_list` (``"fixed_size_list<float32, 768>"``).

The models follow pydantic's method names (``model_dump``, ``model_dump_json``,
``model_validate``, ``model_validate_json``) without depending on pydantic.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

__all__ = [
    "DType",
    "ColumnSchema",
    "TableSchema",
    "timestamp",
    "list_of",
    "fixed_size_list",
]


class DType(str, enum.Enum):
    """A column's type, as the API spells it."""

    UTF8 = "utf8"
    BOOL = "bool"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    FLOAT16 = "float16"
    BINARY = "binary"
    DATE32 = "date32"

    def __str__(self) -> str:
        return self.value


_NUMERIC = "int8|int16|int32|int64|uint8|uint16|uint32|uint64|float16|float32|float64"
_TIMESTAMP = r"timestamp\[(s|ms|us|ns)(, ?[A-Za-z0-9_+/:-]{1,64})?\]"
_SCALAR = "|".join(d.value for d in DType)
_PARAMETRISED = re.compile(
    rf"^({_TIMESTAMP}|list<({_SCALAR}|{_TIMESTAMP})>|fixed_size_list<({_NUMERIC}), ?[0-9]{{1,5}}>)$"
)

#: A column type: a :class:`DType` or a parametrised type's name.
DTypeLike = Union[DType, str]


def timestamp(unit: str = "us", tz: str | None = None) -> str:
    """``timestamp[unit]`` or ``timestamp[unit, tz]``: unit is s, ms, us or ns."""
    return f"timestamp[{unit}, {tz}]" if tz else f"timestamp[{unit}]"


def list_of(item: DTypeLike) -> str:
    """``list<item>``: lists of any length (and null lists and items)."""
    return f"list<{item}>"


def fixed_size_list(item: DTypeLike, n: int) -> str:
    """``fixed_size_list<item, n>``: exactly ``n`` numbers per row, an embedding."""
    return f"fixed_size_list<{item}, {n}>"


def _dtype(value: Any) -> DTypeLike:
    try:
        return DType(value)
    except ValueError:
        pass
    if isinstance(value, str) and _PARAMETRISED.match(value.strip()):
        return value.strip()
    known = ", ".join(d.value for d in DType)
    raise ValueError(
        f"dtype {value!r}: expected one of {known}, timestamp[unit(, tz)], list<T> or "
        "fixed_size_list<T, N>"
    )


@dataclass(frozen=True)
class ColumnSchema:
    """One column: its type and whether it may hold nulls (default: it may)."""

    dtype: DTypeLike
    nullable: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", _dtype(self.dtype))
        if not isinstance(self.nullable, bool):
            raise ValueError(f"nullable {self.nullable!r}: expected True or False")

    def model_dump(self) -> dict[str, Any]:
        return {"dtype": str(self.dtype), "nullable": self.nullable}

    @classmethod
    def model_validate(cls, obj: Any) -> "ColumnSchema":
        if isinstance(obj, ColumnSchema):
            return obj
        if not isinstance(obj, Mapping) or "dtype" not in obj:
            raise ValueError(f"a column schema is {{'dtype': ..., 'nullable': ...}}, got {obj!r}")
        unknown = set(obj) - {"dtype", "nullable"}
        if unknown:
            raise ValueError(f"column schema: unknown fields {sorted(unknown)}")
        return cls(dtype=obj["dtype"], nullable=obj.get("nullable", True))


_TTL = re.compile(r"^([0-9]+[smhd])+$")


def check_ttl(ttl: Any) -> None:
    """Raises ValueError unless ``ttl`` is None, a positive whole number of seconds, or a
    duration string such as ``"7d"``, ``"12h"`` or ``"1d12h"`` (the server checks the limit)."""
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, (int, str)):
        raise ValueError(f"ttl {ttl!r}: expected seconds or a duration such as '7d'")
    if isinstance(ttl, int) and ttl <= 0:
        raise ValueError(f"ttl {ttl}: expected a positive number of seconds")
    if isinstance(ttl, str) and not (ttl.isdigit() or _TTL.match(ttl)):
        raise ValueError(f"ttl {ttl!r}: expected seconds or a duration such as '7d', '12h'")


@dataclass(frozen=True)
class TableSchema:
    """A table: its key column's name, every column (the key among them), and how long rows
    live: ``ttl`` in seconds, or a string such as ``"7d"`` or ``"12h"`` (the server answers
    seconds); None keeps rows until they are written again."""

    key: str
    columns: dict[str, ColumnSchema] = field(default_factory=dict)
    ttl: int | str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"key {self.key!r}: expected a column name")
        check_ttl(self.ttl)
        if not isinstance(self.columns, Mapping):
            raise ValueError("columns: expected a mapping of column name to ColumnSchema")
        object.__setattr__(
            self,
            "columns",
            {str(name): ColumnSchema.model_validate(c) for name, c in self.columns.items()},
        )

    def model_dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "columns": {n: c.model_dump() for n, c in self.columns.items()},
        }
        if self.ttl is not None:
            out["ttl"] = self.ttl
        return out

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump())

    @classmethod
    def model_validate(cls, obj: Any) -> "TableSchema":
        if isinstance(obj, TableSchema):
            return obj
        if not isinstance(obj, Mapping) or "key" not in obj:
            raise ValueError(f"a table schema is {{'key': ..., 'columns': {{...}}}}, got {obj!r}")
        unknown = set(obj) - {"key", "columns", "ttl"}
        if unknown:
            raise ValueError(f"table schema: unknown fields {sorted(unknown)}")
        return cls(key=obj["key"], columns=dict(obj.get("columns", {})), ttl=obj.get("ttl"))

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> "TableSchema":
        return cls.model_validate(json.loads(text))
