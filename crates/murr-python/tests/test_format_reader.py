"""docs/format.md is enough to read murr's segments from another language: a reader written from
it alone (segment_reader.py, Python) reads every row of a segment that `murr segment build` made
from a pyarrow-written Parquet file, equal to the Parquet data, and finds every key through the
segment's index."""

from __future__ import annotations

import json
import random
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import server_binary
from segment_reader import Segment

ROWS = 3000


def table() -> pa.Table:
    rng = random.Random(7)
    ids = [f"item-{i:05}" for i in range(ROWS)]
    names = ["x" * rng.randrange(0, 200) + str(i) for i in range(ROWS)]
    columns = {
        "id": pa.array(ids),
        "name": pa.array(names),
        "score": pa.array([None if i % 7 == 0 else i / 4 for i in range(ROWS)], pa.float32()),
        "n": pa.array([i * 1_000_003 - 5 for i in range(ROWS)], pa.int64()),
        "flag": pa.array([i % 3 == 0 for i in range(ROWS)]),
    }
    # Mostly-null columns: murr stores them sparse (a record per row of their valid values).
    for c in range(4):
        columns[f"rare{c}"] = pa.array(
            [float(i * 10 + c) if rng.random() < 0.05 else None for i in range(ROWS)], pa.float64()
        )
    return pa.table(columns)


SCHEMA = {
    "key": "id",
    "columns": {
        "id": {"dtype": "utf8", "nullable": False},
        "name": {"dtype": "utf8"},
        "score": {"dtype": "float32"},
        "n": {"dtype": "int64"},
        "flag": {"dtype": "bool"},
        **{f"rare{c}": {"dtype": "float64"} for c in range(4)},
    },
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("format")
    data = table()
    pq.write_table(data, tmp / "items.parquet", row_group_size=1000)
    (tmp / "schema.json").write_text(json.dumps(SCHEMA))
    run = subprocess.run(
        [str(server_binary()), "segment", "build", "--schema", str(tmp / "schema.json"), str(tmp / "items.parquet"), str(tmp / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    files = sorted((tmp / "out").glob("*.murr"))
    assert len(files) == 1
    return data, files[0].read_bytes()


def test_a_reader_written_from_the_format_document_reads_every_row(built):
    data, file = built
    seg = Segment(file)
    assert seg.version == 5
    assert seg.rows == ROWS
    by_name = {c.name: c for c in seg.columns}
    assert set(by_name) == set(SCHEMA["columns"])
    kinds = {c.name: c.kind for c in seg.columns}
    # The file exercises every scalar storage kind the document describes.
    assert kinds["id"] == 2, kinds  # inline
    assert kinds["name"] == 1, kinds  # variable
    assert kinds["score"] == 0, kinds  # fixed
    assert {kinds[f"rare{c}"] for c in range(4)} == {4}, kinds  # sparse
    expected = data.to_pydict()
    # Rows are in the file in the order written; the key column names each row.
    positions = {k: i for i, k in enumerate(expected["id"])}
    for r in range(seg.rows):
        i = positions[seg.value(by_name["id"], r)]
        for name, column in by_name.items():
            got = seg.value(column, r)
            want = expected[name][i]
            if isinstance(want, float) and got is not None:
                assert got == pytest.approx(want, rel=1e-6), (name, r)
            else:
                assert got == want, (name, r, got, want)


def test_the_reader_finds_keys_through_the_segment_s_index(built):
    data, file = built
    seg = Segment(file)
    id_col = next(c for c in seg.columns if c.name == "id")
    n_col = next(c for c in seg.columns if c.name == "n")
    for i, key in enumerate(data.column("id").to_pylist()):
        r = seg.find(key.encode())
        assert r is not None, key
        assert seg.value(id_col, r) == key
        assert seg.value(n_col, r) == i * 1_000_003 - 5
    for missing in ["item-99999", "", "item-0000", "item-000000"]:
        assert seg.find(missing.encode()) is None


def test_the_reader_refuses_a_damaged_file(built):
    _, file = built
    damaged = bytearray(file)
    damaged[200] ^= 0x01
    with pytest.raises(ValueError, match="body checksum"):
        Segment(bytes(damaged))
    with pytest.raises(ValueError, match="magic|footer"):
        Segment(file[:-5])
