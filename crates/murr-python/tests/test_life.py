"""A table's life from Python: columns added to a live table and a time to live, through the
embedded engine, HTTP and Flight."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest

from murr import ColumnSchema, DType, TableSchema
from murr.errors import InvalidInputError, TableExistsError, TableNotFoundError

SCHEMA = TableSchema(
    key="id",
    columns={
        "id": ColumnSchema(dtype=DType.UTF8, nullable=False),
        "n": ColumnSchema(dtype=DType.INT64),
    },
)


def test_columns_are_added_to_a_live_table(db):
    db.create_table("t", SCHEMA)
    db.write("t", pa.table({"id": ["a", "b"], "n": [1, 2]}))
    schema = db.add_columns("t", {"score": ColumnSchema(dtype=DType.FLOAT32), "tag": {"dtype": "utf8"}})
    assert list(schema.columns) == ["id", "n", "score", "tag"]
    assert db.get_schema("t") == schema
    db.write("t", pa.table({"id": ["c"], "n": [3], "score": pa.array([0.5], pa.float32()), "tag": ["x"]}))
    got = db.read("t", ["a", "c"], ["n", "score", "tag"]).to_pydict()
    assert got == {"n": [1, 3], "score": [None, 0.5], "tag": [None, "x"]}
    with pytest.raises(TableExistsError, match="score"):
        db.add_columns("t", {"score": {"dtype": "float32"}})
    with pytest.raises(InvalidInputError, match="nullable"):
        db.add_columns("t", {"z": {"dtype": "int8", "nullable": False}})
    with pytest.raises(InvalidInputError):
        db.add_columns("t", {})
    with pytest.raises(TableNotFoundError):
        db.add_columns("nope", {"z": {"dtype": "int8"}})
    assert list(db.get_schema("t").columns) == ["id", "n", "score", "tag"]


def test_a_ttl_is_set_changed_and_removed(db):
    db.create_table("t", TableSchema(key="id", columns=SCHEMA.columns, ttl="1h"))
    assert db.get_schema("t").ttl == 3600
    assert db.list_tables()["t"].ttl == 3600
    db.write("t", pa.table({"id": ["a"], "n": [1]}))
    assert db.set_ttl("t", "2d").ttl == 2 * 86400
    with pytest.raises(InvalidInputError, match="ttl"):
        db.set_ttl("t", 0)
    with pytest.raises(InvalidInputError, match="ttl"):
        db.set_ttl("t", "soon")
    # A ttl of 1 s applies to the row written already: it reads as missing within 2 s.
    db.set_ttl("t", 1)
    deadline = time.monotonic() + 5
    while db.read("t", ["a"], ["n"]).to_pydict() != {"n": [None]}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Without a ttl, rows no merge has dropped yet are back.
    schema = db.set_ttl("t", None)
    assert schema.ttl is None
    assert "ttl" not in schema.model_dump()


def test_ttl_spellings_are_checked_before_sending():
    for bad in (0, -1, True, 1.5, "7w", ""):
        with pytest.raises(ValueError):
            TableSchema(key="id", columns=SCHEMA.columns, ttl=bad)
    assert TableSchema.model_validate({"key": "id", "columns": {}, "ttl": "1d12h"}).ttl == "1d12h"
