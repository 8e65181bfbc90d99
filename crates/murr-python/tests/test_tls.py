"""TLS from Python against the real server with ``server.tls``: ``Murr.connect`` over
``https://`` and ``grpc+tls://`` with the test CA (a path or PEM bytes), pyarrow.flight and
urllib (clients we did not write) too; without the CA, the connection is refused."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest
import trustme

import murr
from conftest import Server
from murr import ColumnSchema, DType, TableSchema
from murr.sync import Murr


@pytest.fixture
def tls_server(tmp_path: Path):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    s = Server.with_config(
        tmp_path,
        f"server:\n  tls:\n    cert: {tmp_path / 'server.pem'}\n    key: {tmp_path / 'server.key'}\n",
    )
    s.ca_path = tmp_path / "ca.pem"
    yield s
    s.stop()


def test_both_transports_over_tls(tls_server) -> None:
    # The certificate names 127.0.0.1; the server listens on every address.
    https = "https://127.0.0.1:" + tls_server.http_url.rsplit(":", 1)[1]
    grpcs = "grpc+tls://127.0.0.1:" + tls_server.grpc_url.rsplit(":", 1)[1]
    db = Murr.connect(https, ca_cert=tls_server.ca_path)
    db.create_table(
        "t",
        TableSchema(
            columns={
                "id": ColumnSchema(dtype=DType.UTF8, nullable=False, key=True),
                "score": ColumnSchema(dtype=DType.FLOAT32),
            }
        ),
    )
    db.write("t", pa.table({"id": ["a", "b"], "score": pa.array([0.5, 1.5], pa.float32())}))
    over_flight = Murr.connect(grpcs, ca_cert=tls_server.ca_path.read_bytes())
    got = over_flight.read_keyed("t", {"id": ["b", "zz"]}, ["score"])
    assert got.to_pydict() == {"_idx": [0], "score": [1.5]}
    # Clients we did not write.
    context = ssl.create_default_context(cafile=str(tls_server.ca_path))
    with urllib.request.urlopen(https + "/api/v1/table", context=context) as r:
        assert list(json.loads(r.read())) == ["t"]
    client = flight.connect(grpcs, tls_root_certs=tls_server.ca_path.read_bytes())
    ticket = flight.Ticket(json.dumps({"table": "t", "keys": ["a"], "columns": ["score"]}).encode())
    assert client.do_get(ticket).read_all().to_pydict() == {"score": [0.5]}
    # Without the CA: refused, as a connection error.
    with pytest.raises(murr.MurrConnectionError):
        Murr.connect(https, timeout=5).list_tables()
    with pytest.raises(murr.MurrConnectionError):
        Murr.connect(grpcs, timeout=5).list_tables()
    with pytest.raises(murr.InvalidInputError, match="ca_cert"):
        Murr.connect(https, ca_cert="/nonexistent/ca.pem")
    for m in (db, over_flight):
        m.close()
