"""The ML data types from Python: pyarrow tables of every type through the embedded engine,
HTTP and Flight; Arrow IPC and Parquet bodies as pyarrow writes them; embeddings into NumPy."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from murr import ColumnSchema, DType, TableSchema, fixed_size_list, list_of, timestamp
from murr.errors import InvalidInputError

UTC = dt.timezone.utc

# dtype -> (the Arrow type murr answers, three values with nulls)
NEW_TYPES = {
    "float16": (pa.float16(), [np.float16(0.5), None, np.float16(-2.25)]),
    "binary": (pa.binary(), [b"\x00\xff", None, b""]),
    "date32": (pa.date32(), [dt.date(2026, 11, 27), None, dt.date(1969, 12, 31)]),
    timestamp("s"): (pa.timestamp("s"), [dt.datetime(2026, 11, 27, 10), None, dt.datetime(1900, 1, 1)]),
    timestamp("ms", "UTC"): (
        pa.timestamp("ms", tz="UTC"),
        [dt.datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC), None, dt.datetime(1970, 1, 1, tzinfo=UTC)],
    ),
    timestamp("ns", "Europe/Paris"): (
        pa.timestamp("ns", tz="Europe/Paris"),
        [pd.Timestamp("2026-11-27T10:00:00.000000001", tz="Europe/Paris"), None, pd.Timestamp(0, tz="Europe/Paris")],
    ),
    list_of("int64"): (pa.list_(pa.int64()), [[1, None, 3], None, []]),
    list_of("utf8"): (pa.list_(pa.string()), [["a", None], [], None]),
    list_of("bool"): (pa.list_(pa.bool_()), [[True, False, None], None, [False]]),
    list_of(timestamp("us", "UTC")): (
        pa.list_(pa.timestamp("us", tz="UTC")),
        [[dt.datetime(2026, 1, 1, tzinfo=UTC)], None, [None]],
    ),
    fixed_size_list("float32", 3): (pa.list_(pa.float32(), 3), [[0.25, -1.5, 3.0], None, [1.0, None, 2.0]]),
    fixed_size_list("int8", 2): (pa.list_(pa.int8(), 2), [[1, -1], [0, 0], None]),
}


def name(dtype: str) -> str:
    return "c_" + re.sub(r"[^A-Za-z0-9]+", "_", dtype).strip("_")


def keyed(**columns: str) -> TableSchema:
    """A table of key ``id`` and ``columns`` (name to dtype)."""
    specs = {"id": ColumnSchema(dtype=DType.UTF8, nullable=False)}
    specs.update({n: ColumnSchema(dtype=t) for n, t in columns.items()})
    return TableSchema(key="id", columns=specs)


def schema() -> TableSchema:
    return keyed(**{name(t): t for t in NEW_TYPES})


def table(keys: list[str]) -> pa.Table:
    data = {"id": pa.array(keys)}
    data.update({name(t): pa.array(v, type=a) for t, (a, v) in NEW_TYPES.items()})
    return pa.table(data)


def test_every_ml_type_round_trips_with_nulls(db):
    db.create_table("ml", schema())
    assert db.get_schema("ml") == schema()
    db.write("ml", table(["x", "y", "z"]))
    got = db.read("ml", ["z", "y", "x", "missing"], [name(t) for t in NEW_TYPES])
    for t, (arrow_type, values) in NEW_TYPES.items():
        col = got.column(name(t))
        assert col.type == arrow_type, t
        want = pa.array(values, type=arrow_type).to_pylist()
        assert col.to_pylist() == list(reversed(want)) + [None], t


def test_an_embedding_reaches_numpy_without_a_copy(db):
    n, dim = 1000, 64
    db.create_table("emb", keyed(v=fixed_size_list("float32", dim)))
    values = np.random.default_rng(7).standard_normal((n, dim), dtype=np.float32)
    keys = [f"k{i}" for i in range(n)]
    # A pandas column of NumPy rows, float64 lists from pyarrow: cast to the table's type.
    frame = pd.DataFrame({"id": keys, "v": list(values.astype(np.float64))})
    db.write("emb", frame)
    wanted = [17, 3, 999, 0]
    got = db.read("emb", [keys[i] for i in wanted], ["v"]).column("v")
    assert got.type == pa.list_(pa.float32(), dim)
    matrix = got.flatten().to_numpy(zero_copy_only=True).reshape(len(wanted), dim)
    assert np.array_equal(matrix, values[wanted])


def test_pandas_writes_are_cast_and_bad_lengths_refused(db):
    db.create_table("emb", keyed(v=fixed_size_list("float32", 3), at=timestamp("ns", "UTC")))
    with pytest.raises(InvalidInputError, match="'v'"):
        db.write("emb", pd.DataFrame({"id": ["a"], "v": [np.ones(2)]}))
    frame = pd.DataFrame({"id": ["a"], "v": [np.ones(3)], "at": [pd.Timestamp("2026-11-27", tz="UTC")]})
    assert db.write("emb", frame) == 1
    got = db.read("emb", ["a"], ["v", "at"])
    assert got.column("v").to_pylist() == [[1.0, 1.0, 1.0]]
    assert got.column("at").to_pylist() == [pd.Timestamp("2026-11-27", tz="UTC")]


def test_schemas_check_type_names():
    with pytest.raises(ValueError, match="fixed_size_list"):
        ColumnSchema(dtype="fixed_size_list<utf8, 3>")
    with pytest.raises(ValueError):
        ColumnSchema(dtype="list<list<int8>>")
    assert ColumnSchema(dtype="timestamp[us, UTC]").model_dump() == {"dtype": "timestamp[us, UTC]", "nullable": True}


def http(server, method: str, path: str, body: bytes, content_type: str, accept: str = "application/json"):
    req = urllib.request.Request(
        server.http_url + path, data=body, method=method, headers={"content-type": content_type, "accept": accept}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_ipc_and_parquet_bodies_as_pyarrow_writes_them(server):
    body = schema().model_dump_json().encode()
    assert http(server, "PUT", "/api/v1/table/ml", body, "application/json")[0] == 201
    ipc_rows, parquet_rows = table(["i0", "i1", "i2"]), table(["p0", "p1", "p2"])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, ipc_rows.schema) as w:
        w.write_table(ipc_rows)
    status, answer = http(server, "PUT", "/api/v1/table/ml/write", sink.getvalue(), "application/vnd.apache.arrow.stream")
    assert status == 200, answer
    # Parquet as pyarrow writes it by default: lists in its 3-level encoding, nanoseconds kept.
    sink = io.BytesIO()
    pq.write_table(parquet_rows, sink)
    status, answer = http(server, "PUT", "/api/v1/table/ml/write", sink.getvalue(), "application/vnd.apache.parquet")
    assert status == 200, answer
    columns = [name(t) for t in NEW_TYPES]
    for keys, want in ((["i0", "i1", "i2"], ipc_rows), (["p0", "p1", "p2"], parquet_rows)):
        request = json.dumps({"keys": keys, "columns": columns}).encode()
        status, answer = http(
            server, "POST", "/api/v1/table/ml/fetch", request, "application/json", "application/vnd.apache.arrow.stream"
        )
        assert status == 200, answer
        got = pa.ipc.open_stream(answer).read_all()
        assert got.equals(want.select(columns)), keys
    # A list for an embedding with the wrong length: a 400 naming the column, nothing stored.
    bad = pa.table({"id": ["b0"], name(fixed_size_list("float32", 3)): pa.array([[1.0, 2.0]], pa.list_(pa.float32()))})
    sink = io.BytesIO()
    pq.write_table(bad, sink)
    status, answer = http(server, "PUT", "/api/v1/table/ml/write", sink.getvalue(), "application/vnd.apache.parquet")
    assert status == 400 and b"c_fixed_size_list_float32_3" in answer, answer


def test_openapi_describes_every_type_name(server):
    status, body = http(server, "GET", "/openapi.json", b"", "application/json")
    assert status == 200
    alternatives = json.loads(body)["components"]["schemas"]["DType"]["oneOf"]
    simple = set(alternatives[0]["enum"])
    patterns = [re.compile(a["pattern"]) for a in alternatives[1:]]
    for t in list(NEW_TYPES) + [d.value for d in DType]:
        assert t in simple or any(p.match(t) for p in patterns), t
    assert not any(p.match("list<list<int8>>") for p in patterns)
