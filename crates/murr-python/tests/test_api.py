"""Every method, with the same expectations embedded, over HTTP and over Arrow Flight."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from murr import (
    ClosedError,
    ColumnSchema,
    DType,
    InvalidInputError,
    MurrError,
    TableExistsError,
    TableNotFoundError,
    TableSchema,
)
from murr import aio

ALL_TYPES = {
    DType.BOOL: (pa.bool_(), [True, None, False]),
    DType.INT8: (pa.int8(), [-128, None, 127]),
    DType.INT16: (pa.int16(), [-32768, None, 32767]),
    DType.INT32: (pa.int32(), [-(2**31), None, 2**31 - 1]),
    DType.INT64: (pa.int64(), [-(2**63), None, 2**63 - 1]),
    DType.UINT8: (pa.uint8(), [0, None, 255]),
    DType.UINT16: (pa.uint16(), [0, None, 65535]),
    DType.UINT32: (pa.uint32(), [0, None, 2**32 - 1]),
    DType.UINT64: (pa.uint64(), [0, None, 2**64 - 1]),
    DType.FLOAT32: (pa.float32(), [1.5, None, -0.25]),
    DType.FLOAT64: (pa.float64(), [1e300, None, -2.5]),
    DType.UTF8: (pa.string(), ["", None, "héllo wörld"]),
}


def users() -> TableSchema:
    return TableSchema(
        key="id",
        columns={
            "id": ColumnSchema(dtype=DType.UTF8, nullable=False),
            "score": ColumnSchema(dtype=DType.FLOAT32),
            "clicks": ColumnSchema(dtype=DType.INT64),
        },
    )


def users_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"id": ["a", "b", "c"], "score": [1.0, 2.0, 3.0], "clicks": [10, None, 30]},
        schema=pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("score", pa.float32()),
                pa.field("clicks", pa.int64()),
            ]
        ),
    )


def test_create_list_schema_drop(db):
    db.create_table("users", users())
    db.create_table("other", TableSchema(key="k", columns={"k": ColumnSchema(dtype="utf8", nullable=False)}))
    tables = db.list_tables()
    assert set(tables) == {"users", "other"}
    assert tables["users"] == users()
    assert db.get_schema("users") == users()
    assert db.get_schema("users").columns["score"].dtype is DType.FLOAT32
    db.drop_table("other")
    assert set(db.list_tables()) == {"users"}
    with pytest.raises(TableNotFoundError):
        db.get_schema("other")


def test_round_trip_keeps_order_repeats_and_gives_nulls_for_missing_keys(db):
    db.create_table("users", users())
    assert db.write("users", users_batch()) == 3
    got = db.read("users", ["c", "zz", "a", "c"], ["score", "clicks"])
    assert isinstance(got, pa.RecordBatch)
    assert got.schema.names == ["score", "clicks"]
    assert got.column("score").to_pylist() == [3.0, None, 1.0, 3.0]
    assert got.column("clicks").to_pylist() == [30, None, 10, 30]
    assert db.read("users", [], ["score"]).num_rows == 0


def test_every_type_round_trips_with_nulls(db):
    columns = {"id": ColumnSchema(dtype=DType.UTF8, nullable=False)}
    columns.update({f"c_{t.value}": ColumnSchema(dtype=t) for t in ALL_TYPES})
    db.create_table("types", TableSchema(key="id", columns=columns))
    data = {"id": pa.array(["x", "y", "z"])}
    data.update({f"c_{t.value}": pa.array(v, type=a) for t, (a, v) in ALL_TYPES.items()})
    db.write("types", pa.table(data))
    names = [f"c_{t.value}" for t in ALL_TYPES]
    got = db.read("types", ["z", "y", "x"], names)
    for t, (arrow_type, values) in ALL_TYPES.items():
        col = got.column(f"c_{t.value}")
        assert col.type == arrow_type, t
        assert col.to_pylist() == list(reversed(values)), t


def test_inputs_pandas_polars_capsules_and_readers(db):
    db.create_table("users", users())
    db.write("users", pd.DataFrame({"id": ["p1", "p2"], "score": [0.5, 1.5], "clicks": [1, 2]}))
    db.write("users", pl.DataFrame({"id": ["q1"], "score": [2.5], "clicks": [3]}))

    class Capsule:
        """Only the Arrow PyCapsule stream interface, nothing pyarrow-specific."""

        def __init__(self, table: pa.Table) -> None:
            self.table = table

        def __arrow_c_stream__(self, requested_schema=None):
            return self.table.__arrow_c_stream__(requested_schema)

    db.write("users", Capsule(pa.table({"id": ["r1"], "score": pa.array([3.5], pa.float32())})))
    batch = users_batch()
    db.write("users", pa.RecordBatchReader.from_batches(batch.schema, [batch]))
    got = db.read("users", ["p2", "q1", "r1", "b"], ["score", "clicks"])
    assert got.column("score").to_pylist() == [1.5, 2.5, 3.5, 2.0]
    # A column left out is written as nulls.
    assert got.column("clicks").to_pylist() == [2, 3, None, None]


def test_keys_as_numpy_pyarrow_and_chunked_arrays(db):
    db.create_table("users", users())
    db.write("users", users_batch())
    expected = [2.0, 1.0, None]
    for keys in (
        np.array(["b", "a", "q"]),
        np.array(["b", "a", "q"], dtype=object),
        pa.array(["b", "a", "q"]),
        pa.array(["b", "a", "q"], pa.large_string()),
        pa.chunked_array([["b"], ["a", "q"]]),
        ("b", "a", "q"),
    ):
        assert db.read("users", keys, ["score"]).column(0).to_pylist() == expected, type(keys)
    with pytest.raises(InvalidInputError, match="null"):
        db.read("users", pa.array(["a", None]), ["score"])
    with pytest.raises(InvalidInputError, match="str"):
        db.read("users", ["a", 3], ["score"])


def test_errors_are_classified_and_named(db):
    db.create_table("users", users())
    with pytest.raises(TableExistsError, match="already exists") as e:
        db.create_table("users", users())
    assert isinstance(e.value, ValueError) and isinstance(e.value, MurrError)
    with pytest.raises(TableNotFoundError, match="not found") as e:
        db.read("nope", ["a"], ["x"])
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        db.write("nope", users_batch())
    with pytest.raises(FileNotFoundError):
        db.drop_table("nope")
    with pytest.raises(ValueError, match="nosuch"):
        db.read("users", ["a"], ["nosuch"])
    bad = pa.table({"id": ["a"], "score": ["not a number"]})
    with pytest.raises(InvalidInputError, match="score") as e:
        db.write("users", bad)
    assert isinstance(e.value, ValueError)
    with pytest.raises(InvalidInputError, match="id"):
        db.write("users", pa.table({"id": pa.array([None], pa.string()), "score": pa.array([1.0], pa.float32())}))
    with pytest.raises(ValueError, match="key"):
        db.create_table("bad", TableSchema(key="missing", columns={"id": ColumnSchema(dtype=DType.UTF8)}))
    with pytest.raises(InvalidInputError, match="DataFrame"):
        db.write("users", 42)
    # A DataFrame's columns are cast to the table's types, checked.
    db.create_table("small", TableSchema(key="id", columns={"id": ColumnSchema(dtype=DType.UTF8, nullable=False), "n": ColumnSchema(dtype=DType.INT8)}))
    with pytest.raises(InvalidInputError, match="'n'"):
        db.write("small", pd.DataFrame({"id": ["a"], "n": [1000]}))
    assert db.write("small", pd.DataFrame({"id": ["a"], "n": [-5]})) == 1
    assert db.read("small", ["a"], ["n"]).column(0).to_pylist() == [-5]
    # Nothing of the refused writes landed.
    assert db.read("users", ["a"], ["score"]).column(0).to_pylist() == [None]


def test_a_closed_client_says_so(db):
    db.create_table("users", users())
    db.close()
    with pytest.raises(ClosedError, match="closed"):
        db.read("users", ["a"], ["score"])
    db.close()


def test_context_manager_closes(db):
    with db as m:
        m.create_table("users", users())
    with pytest.raises(ClosedError):
        db.list_tables()


def test_the_asyncio_api(db):
    m = aio.Murr(db)

    async def scenario():
        await m.create_table("users", users())
        assert await m.write("users", users_batch()) == 3
        got = await m.read("users", ["b", "a"], ["score"])
        assert got.column(0).to_pylist() == [2.0, 1.0]
        assert list(await m.list_tables()) == ["users"]
        assert (await m.get_schema("users")) == users()
        # Calls run concurrently on worker threads.
        reads = await asyncio.gather(*(m.read("users", ["c"], ["clicks"]) for _ in range(8)))
        assert all(r.column(0).to_pylist() == [30] for r in reads)
        with pytest.raises(TableNotFoundError):
            await m.read("nope", ["a"], ["x"])
        await m.drop_table("users")
        async with m:
            pass
        with pytest.raises(ClosedError):
            await m.list_tables()

    asyncio.run(scenario())
