"""Table schemas: the same field names and JSON as the HTTP API's schema, in both of its
generations:

- generation 1 names one utf8 key column:
  ``TableSchema(key="id", columns={"id": ColumnSchema(dtype=DType.UTF8, nullable=False), ...})``;
- generation 2 marks key columns (utf8 or integers; several make a compound key, in column
  order), and may let a float32 column take float64 values (``strict=False``):
  ``TableSchema(columns={"user": ColumnSchema(dtype=DType.UTF8, nullable=False, key=True),
  "item": ColumnSchema(dtype=DType.INT64, nullable=False, key=True), ...})``.

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
    """One column: its type and whether it may hold nulls (default: it may). In a generation-2
    schema (no ``TableSchema.key``), ``key=True`` makes it a key column (utf8 or an integer
    type, not nullable), and ``strict=False`` lets a float32 column take float64 values,
    rounded."""

    dtype: DTypeLike
    nullable: bool = True
    key: bool = False
    strict: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", _dtype(self.dtype))
        for name in ("nullable", "key", "strict"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} {getattr(self, name)!r}: expected True or False")

    def model_dump(self, *, generation: int | None = None) -> dict[str, Any]:
        """The JSON form: ``key`` and ``strict`` always in generation 2, never in 1, and when
        they differ from their defaults otherwise."""
        out: dict[str, Any] = {"dtype": str(self.dtype), "nullable": self.nullable}
        if generation == 2 or (generation is None and self.key):
            out["key"] = self.key
        if generation == 2 or (generation is None and not self.strict):
            out["strict"] = self.strict
        return out

    @classmethod
    def model_validate(cls, obj: Any) -> "ColumnSchema":
        if isinstance(obj, ColumnSchema):
            return obj
        if not isinstance(obj, Mapping) or "dtype" not in obj:
            raise ValueError(f"a column schema is {{'dtype': ..., 'nullable': ...}}, got {obj!r}")
        unknown = set(obj) - {"dtype", "nullable", "key", "strict"}
        if unknown:
            raise ValueError(f"column schema: unknown fields {sorted(unknown)}")
        return cls(
            dtype=obj["dtype"],
            nullable=obj.get("nullable", True),
            key=obj.get("key", False),
            strict=obj.get("strict", True),
        )


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
    """A table: every column, which make the key, and how long rows live: ``ttl`` in
    seconds, or a string such as ``"7d"`` or ``"12h"`` (the server answers seconds); None keeps
    rows until they are written again.

    ``key`` names the key column of a generation-1 schema; leave it out (None) for generation 2,
    where columns say ``key=True``."""

    key: str | None = None
    columns: dict[str, ColumnSchema] = field(default_factory=dict)
    ttl: int | str | None = None

    def __post_init__(self) -> None:
        if self.key is not None and (not isinstance(self.key, str) or not self.key):
            raise ValueError(f"key {self.key!r}: expected a column name, or None (generation 2)")
        check_ttl(self.ttl)
        if not isinstance(self.columns, Mapping):
            raise ValueError("columns: expected a mapping of column name to ColumnSchema")
        object.__setattr__(
            self,
            "columns",
            {str(name): ColumnSchema.model_validate(c) for name, c in self.columns.items()},
        )

    @property
    def key_columns(self) -> list[str]:
        """The key columns, in key order."""
        if self.key is not None:
            return [self.key]
        return [name for name, column in self.columns.items() if column.key]

    def model_dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.key is not None:
            out["key"] = self.key
            for name, c in self.columns.items():
                if c.key or not c.strict:
                    raise ValueError(
                        f"column {name!r}: key=True and strict=False belong to generation-2 "
                        "schemas (leave TableSchema.key out)"
                    )
        generation = 1 if self.key is not None else 2
        out["columns"] = {n: c.model_dump(generation=generation) for n, c in self.columns.items()}
        if self.ttl is not None:
            out["ttl"] = self.ttl
        return out

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump())

    @classmethod
    def model_validate(cls, obj: Any) -> "TableSchema":
        if isinstance(obj, TableSchema):
            return obj
        if not isinstance(obj, Mapping) or "columns" not in obj:
            raise ValueError(f"a table schema is {{'columns': {{...}}, ...}}, got {obj!r}")
        unknown = set(obj) - {"key", "columns", "ttl"}
        if unknown:
            raise ValueError(f"table schema: unknown fields {sorted(unknown)}")
        return cls(key=obj.get("key"), columns=dict(obj["columns"]), ttl=obj.get("ttl"))

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> "TableSchema":
        return cls.model_validate(json.loads(text))
