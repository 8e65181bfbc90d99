"""Table schemas: the same field names and JSON as the HTTP API's schema.

``TableSchema(key="id", columns={"id": ColumnSchema(dtype=DType.UTF8, nullable=False), ...})``

The models follow pydantic's method names (``model_dump``, ``model_dump_json``,
``model_validate``, ``model_validate_json``) without depending on pydantic.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["DType", "ColumnSchema", "TableSchema"]


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

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ColumnSchema:
    """One column: its type and whether it may hold nulls (default: it may)."""

    dtype: DType
    nullable: bool = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "dtype", DType(self.dtype))
        except ValueError:
            known = ", ".join(d.value for d in DType)
            raise ValueError(f"dtype {self.dtype!r}: expected one of {known}") from None
        if not isinstance(self.nullable, bool):
            raise ValueError(f"nullable {self.nullable!r}: expected True or False")

    def model_dump(self) -> dict[str, Any]:
        return {"dtype": self.dtype.value, "nullable": self.nullable}

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


@dataclass(frozen=True)
class TableSchema:
    """A table: its key column's name and every column (the key among them)."""

    key: str
    columns: dict[str, ColumnSchema] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"key {self.key!r}: expected a column name")
        if not isinstance(self.columns, Mapping):
            raise ValueError("columns: expected a mapping of column name to ColumnSchema")
        object.__setattr__(
            self,
            "columns",
            {str(name): ColumnSchema.model_validate(c) for name, c in self.columns.items()},
        )

    def model_dump(self) -> dict[str, Any]:
        return {"key": self.key, "columns": {n: c.model_dump() for n, c in self.columns.items()}}

    def model_dump_json(self) -> str:
        return json.dumps(self.model_dump())

    @classmethod
    def model_validate(cls, obj: Any) -> "TableSchema":
        if isinstance(obj, TableSchema):
            return obj
        if not isinstance(obj, Mapping) or "key" not in obj:
            raise ValueError(f"a table schema is {{'key': ..., 'columns': {{...}}}}, got {obj!r}")
        unknown = set(obj) - {"key", "columns"}
        if unknown:
            raise ValueError(f"table schema: unknown fields {sorted(unknown)}")
        return cls(key=obj["key"], columns=dict(obj.get("columns", {})))

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> "TableSchema":
        return cls.model_validate(json.loads(text))
