"""Generation 2 scenarios, written once against the names the ``murr`` 0.3 client exports
(``Client``, ``TableSchema``, ``ColumnSchema``, ``DType``, ``IDX_COLUMN`` and the errors), so
that they run with murr's own ``murr.client`` and with upstream murr's client alike.

Not a test module: ``test_generation2.py`` runs :func:`run_all` in this process with
``murr.client``, and in a subprocess with upstream's client (which is also a package named
``murr``)."""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa


def _name() -> str:
    return "t" + uuid.uuid4().hex[:10]


def _users(c: Any) -> Any:
    return c.TableSchema(
        columns={
            "id": c.ColumnSchema(dtype=c.DType.UTF8, nullable=False, key=True),
            "score": c.ColumnSchema(dtype=c.DType.FLOAT32),
        }
    )


def _user_rows() -> pa.RecordBatch:
    schema = pa.schema([pa.field("id", pa.utf8(), nullable=False), pa.field("score", pa.float32())])
    return pa.RecordBatch.from_pydict({"id": ["a", "b", "c"], "score": [1.0, 2.0, 3.0]}, schema=schema)


def _spread(c: Any, answer: pa.Table, column: str, n: int) -> list:
    """The sparse answer back to one slot per key asked, None for a key not found."""
    out: list = [None] * n
    for i, v in zip(answer.column(c.IDX_COLUMN).to_pylist(), answer.column(column).to_pylist()):
        out[i] = v
    return out


async def _raises(kind: type, call: Any) -> Exception:
    try:
        await call
    except kind as e:  # noqa: PERF203
        return e
    raise AssertionError(f"expected {kind.__name__}")


async def run_all(c: Any, url: str) -> list[str]:
    """Runs every scenario against the server at ``url``; returns their names."""
    done = []
    async with c.Client(url) as client:
        for scenario in SCENARIOS:
            await scenario(c, client)
            done.append(scenario.__name__)
    return done


async def utf8_keys_read_sparse(c: Any, client: Any) -> None:
    t = _name()
    await client.create_table(t, _users(c))
    await client.write(t, _user_rows())
    got = await client.read(t, {"id": ["c", "a"]}, columns=["score"])
    assert isinstance(got, pa.Table)
    assert got.column_names == [c.IDX_COLUMN, "score"]
    assert got.schema.field(c.IDX_COLUMN).type == pa.uint32()
    assert _spread(c, got, "score", 2) == [3.0, 1.0]
    # Keys as an Arrow table and as a record batch.
    got = await client.read(t, pa.table({"id": ["b"]}), columns=["score"])
    assert _spread(c, got, "score", 1) == [2.0]
    got = await client.read(t, pa.RecordBatch.from_pydict({"id": ["b", "c"]}), columns=["score"])
    assert _spread(c, got, "score", 2) == [2.0, 3.0]


async def misses_duplicates_and_nothing_found(c: Any, client: Any) -> None:
    t = _name()
    await client.create_table(t, _users(c))
    await client.write(t, _user_rows())
    got = await client.read(t, {"id": ["nope", "a"]}, columns=["score"])
    assert got.column(c.IDX_COLUMN).to_pylist() == [1]
    assert got.column("score").to_pylist() == [1.0]
    got = await client.read(t, {"id": ["b", "a", "b"]}, columns=["score"])
    assert _spread(c, got, "score", 3) == [2.0, 1.0, 2.0]
    assert got.num_rows == 3
    got = await client.read(t, {"id": ["nope", "nah"]}, columns=["score"])
    assert got.num_rows == 0
    assert got.column_names == [c.IDX_COLUMN, "score"]


async def compound_keys(c: Any, client: Any) -> None:
    t = _name()
    schema = c.TableSchema(
        columns={
            "user": c.ColumnSchema(dtype=c.DType.UTF8, nullable=False, key=True),
            "item": c.ColumnSchema(dtype=c.DType.INT64, nullable=False, key=True),
            "score": c.ColumnSchema(dtype=c.DType.FLOAT64),
        }
    )
    await client.create_table(t, schema)
    await client.write(
        t, pa.table({"user": ["u1", "u1", "u2"], "item": [1, 2, 1], "score": [0.1, 0.2, 0.3]})
    )
    got = await client.read(t, {"user": ["u2", "u1", "u2"], "item": [1, 2, 2]}, columns=["score"])
    assert _spread(c, got, "score", 3) == [0.3, 0.2, None]
    assert (await client.get_schema(t)).key_columns == ["user", "item"]


async def int32_keys_widen_but_never_narrow(c: Any, client: Any) -> None:
    t = _name()
    schema = c.TableSchema(
        columns={
            "id": c.ColumnSchema(dtype=c.DType.INT32, nullable=False, key=True),
            "flag": c.ColumnSchema(dtype=c.DType.BOOL),
        }
    )
    await client.create_table(t, schema)
    await client.write(t, pa.table({"id": pa.array([1, 2], pa.int32()), "flag": [True, False]}))
    got = await client.read(t, {"id": pa.array([2, 1], pa.int32())}, columns=["flag"])
    assert _spread(c, got, "flag", 2) == [False, True]
    got = await client.read(t, {"id": pa.array([2], pa.int8())}, columns=["flag"])
    assert _spread(c, got, "flag", 1) == [False]
    # Python ints are int64; the server never narrows a key type.
    err = await _raises(c.InvalidRequestError, client.read(t, {"id": [2, 1]}, columns=["flag"]))
    assert err.status_code == 400 and "int32" in err.message


async def writes_of_several_batches(c: Any, client: Any) -> None:
    t = _name()
    await client.create_table(t, _users(c))
    more = pa.RecordBatch.from_pydict(
        {"id": ["d", "e"], "score": [4.0, 5.0]}, schema=_user_rows().schema
    )
    await client.write(t, pa.Table.from_batches([_user_rows(), more]))
    got = await client.read(t, {"id": ["a", "e"]}, columns=["score"])
    assert _spread(c, got, "score", 2) == [1.0, 5.0]


async def schemas_list_and_drop(c: Any, client: Any) -> None:
    t = _name()
    schema = c.TableSchema(
        columns={
            "id": c.ColumnSchema(dtype=c.DType.UTF8, nullable=False, key=True),
            "score": c.ColumnSchema(dtype=c.DType.FLOAT32, strict=False),
        }
    )
    await client.create_table(t, schema)
    assert await client.get_schema(t) == schema
    assert (await client.list_tables())[t] == schema
    # strict=False: float64 values go into the float32 column, rounded.
    await client.write(t, pa.table({"id": ["x"], "score": pa.array([0.1], pa.float64())}))
    got = await client.read(t, {"id": ["x"]}, columns=["score"])
    assert got.schema.field("score").type == pa.float32()
    assert abs(got.column("score")[0].as_py() - 0.1) < 1e-6
    await client.drop_table(t)
    assert t not in await client.list_tables()
    err = await _raises(c.TableNotFoundError, client.get_schema(t))
    assert err.status_code == 404


async def a_strict_column_refuses_float64(c: Any, client: Any) -> None:
    t = _name()
    await client.create_table(t, _users(c))
    err = await _raises(
        c.InvalidRequestError,
        client.write(t, pa.table({"id": ["x"], "score": pa.array([0.1], pa.float64())})),
    )
    assert "score" in err.message


async def compact_then_read(c: Any, client: Any) -> None:
    t = _name()
    await client.create_table(t, _users(c))
    await client.write(t, _user_rows())
    await client.write(t, pa.table({"id": ["a"], "score": pa.array([9.0], pa.float32())}))
    await client.compact(t)
    got = await client.read(t, {"id": ["a", "b"]}, columns=["score"])
    assert _spread(c, got, "score", 2) == [9.0, 2.0]


async def refusals(c: Any, client: Any) -> None:
    t = _name()
    await client.create_table(t, _users(c))
    err = await _raises(c.TableAlreadyExistsError, client.create_table(t, _users(c)))
    assert err.status_code == 409
    keyless = c.TableSchema(columns={"score": c.ColumnSchema(dtype=c.DType.FLOAT32)})
    await _raises(c.InvalidRequestError, client.create_table(_name(), keyless))
    reserved = _users(c)
    reserved.columns[c.IDX_COLUMN] = c.ColumnSchema(dtype=c.DType.UINT32)
    err = await _raises(c.InvalidRequestError, client.create_table(_name(), reserved))
    assert c.IDX_COLUMN in err.message
    await _raises(c.TableNotFoundError, client.read(_name(), {"id": ["a"]}, columns=["x"]))
    await client.write(t, _user_rows())
    await _raises(c.InvalidRequestError, client.read(t, {"id": ["b"]}, columns=["id", "score"]))
    await _raises(c.InvalidRequestError, client.read(t, {"key": ["b"]}, columns=["score"]))


SCENARIOS = [
    utf8_keys_read_sparse,
    misses_duplicates_and_nothing_found,
    compound_keys,
    int32_keys_widen_but_never_narrow,
    writes_of_several_batches,
    schemas_list_and_drop,
    a_strict_column_refuses_float64,
    compact_then_read,
    refusals,
]
