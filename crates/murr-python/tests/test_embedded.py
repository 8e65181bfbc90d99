"""The engine in this process: persistence, the folder lock, serving HTTP and Flight from the
same tables, threads, and the GIL."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import urllib.request

import pyarrow as pa
import pytest

from murr import ColumnSchema, DType, InvalidInputError, MurrConnectionError, TableSchema
from murr import aio
from murr.sync import Murr

SCHEMA = TableSchema(
    key="id",
    columns={
        "id": ColumnSchema(dtype=DType.UTF8, nullable=False),
        "v": ColumnSchema(dtype=DType.INT64),
    },
)


def rows(n: int, value: int) -> pa.Table:
    return pa.table({"id": [f"k{i}" for i in range(n)], "v": pa.array([value] * n, pa.int64())})


def test_data_outlives_the_engine(tmp_path):
    first = Murr.start_local(tmp_path)
    first.create_table("t", SCHEMA)
    first.write("t", rows(3, 7))
    del first
    gc.collect()
    second = Murr.start_local(cache_dir=str(tmp_path))
    assert second.read("t", ["k2"], ["v"]).column(0).to_pylist() == [7]
    assert second.get_schema("t") == SCHEMA
    second.close()


def test_one_process_per_folder(tmp_path):
    first = Murr.start_local(tmp_path)
    first.create_table("t", SCHEMA)
    with pytest.raises(InvalidInputError, match="another process|locked") as e:
        Murr.start_local(tmp_path)
    assert str(tmp_path) in str(e.value)
    # The first is untouched.
    first.write("t", rows(2, 1))
    assert first.read("t", ["k1"], ["v"]).column(0).to_pylist() == [1]
    first.close()
    Murr.start_local(tmp_path).close()


def test_the_engine_serves_http_and_flight_from_its_own_tables(tmp_path):
    with Murr.start_local(tmp_path, http_port=0, grpc_port=0) as engine:
        assert engine.http_url.startswith("http://127.0.0.1:")
        assert engine.grpc_url.startswith("grpc://127.0.0.1:")
        with urllib.request.urlopen(engine.http_url + "/health") as resp:
            assert resp.status == 200
        engine.create_table("t", SCHEMA)
        engine.write("t", rows(4, 5))
        for url in (engine.http_url, engine.grpc_url):
            with Murr.connect(url) as remote:
                assert remote.read("t", ["k3", "k2"], ["v"]).column(0).to_pylist() == [5, 5]
                remote.write("t", rows(1, 9))
        # What the remote clients wrote, the engine reads at once.
        assert engine.read("t", ["k0", "k1"], ["v"]).column(0).to_pylist() == [9, 5]
        with urllib.request.urlopen(engine.http_url + "/api/v1/table") as resp:
            assert "t" in json.load(resp)
        url = engine.http_url
    # Closed: the port is released.
    with pytest.raises(MurrConnectionError, match=url.removeprefix("http://")):
        Murr.connect(url, timeout=2).list_tables()


def test_the_asyncio_factory(tmp_path):
    async def scenario():
        m = await aio.Murr.start_local(tmp_path, http_port=0)
        await m.create_table("t", SCHEMA)
        await m.write("t", rows(2, 3))
        remote = await aio.Murr.connect(m.http_url)
        assert (await remote.read("t", ["k1"], ["v"])).column(0).to_pylist() == [3]
        await remote.close()
        await m.close()

    asyncio.run(scenario())


def test_an_unreachable_server_is_a_connection_error_naming_it():
    m = Murr.connect("http://127.0.0.1:9", timeout=2)
    with pytest.raises(ConnectionError, match="127.0.0.1:9"):
        m.list_tables()
    with pytest.raises(MurrConnectionError, match="127.0.0.1:9"):
        Murr.connect("grpc://127.0.0.1:9", timeout=2).read("t", ["a"], ["v"])
    with pytest.raises(InvalidInputError, match="ftp://x"):
        Murr.connect("ftp://x")


def test_readers_see_whole_writes_while_a_writer_writes(tmp_path):
    """Each write sets every key to one value: a read of all keys sees one value, never a mix."""
    n = 2000
    keys = [f"k{i}" for i in range(n)]
    m = Murr.start_local(tmp_path)
    m.create_table("t", SCHEMA)
    m.write("t", rows(n, 0))
    stop = threading.Event()
    seen: list[set] = []
    errors: list[BaseException] = []

    def reader():
        try:
            while not stop.is_set():
                values = set(m.read("t", keys, ["v"]).column(0).to_pylist())
                seen.append(values)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for version in range(1, 30):
        m.write("t", rows(n, version))
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert seen and all(len(s) == 1 for s in seen), [s for s in seen if len(s) != 1][:3]
    assert m.read("t", ["k0"], ["v"]).column(0).to_pylist() == [29]
    m.close()


def test_a_fetch_releases_the_gil(tmp_path):
    """While one thread is inside a large fetch, another thread runs Python code: if the fetch
    held the GIL, no bytecode of the other thread could run between its start and its end."""
    n = 200_000
    m = Murr.start_local(tmp_path)
    m.create_table("t", SCHEMA)
    m.write("t", rows(n, 1))
    keys = pa.array([f"k{i}" for i in range(n)] * 5)
    native = m._native
    spans: list[tuple[float, float]] = []

    def fetch():
        for _ in range(3):
            start = time.perf_counter()
            native.read("t", keys, ["v"])
            spans.append((start, time.perf_counter()))

    ticks: list[float] = []
    t = threading.Thread(target=fetch)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    inside = [x for a, b in spans for x in ticks if a < x < b]
    assert len(spans) == 3
    assert len(inside) > 100, (spans, len(ticks))
    m.close()
