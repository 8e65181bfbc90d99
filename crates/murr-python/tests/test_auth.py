"""Bearer tokens from Python: ``Murr.connect(..., token=)`` over HTTP and Flight, and the async
``murr.client.Client(..., token=)``, against the real server with ``server.auth.tokens``; a missing
token and a token without the scope raise the auth errors (both ``PermissionError``s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow as pa
import pytest

import murr
import murr.client
from conftest import Server
from murr import ColumnSchema, DType, TableSchema
from murr.sync import Murr

ADMIN = "py-admin-token-0123456789"
READER = "py-reader-token-0123456789"

SCHEMA = TableSchema(
    columns={
        "id": ColumnSchema(dtype=DType.UTF8, nullable=False, key=True),
        "score": ColumnSchema(dtype=DType.FLOAT32),
    }
)


@pytest.fixture
def guarded(tmp_path: Path):
    s = Server.with_config(
        tmp_path,
        "server:\n  auth:\n    tokens:\n"
        f'      - {{name: ops, token: "{ADMIN}", scopes: [read, write, admin]}}\n'
        f'      - {{name: inference, token: "{READER}", scopes: [read]}}\n',
    )
    yield s
    s.stop()


@pytest.mark.parametrize("transport", ["http", "flight"])
def test_tokens_over_both_transports(guarded, transport) -> None:
    url = guarded.http_url if transport == "http" else guarded.grpc_url
    admin = Murr.connect(url, token=ADMIN)
    reader = Murr.connect(url, token=READER)
    anonymous = Murr.connect(url)
    with pytest.raises(murr.AuthenticationError) as e:
        anonymous.create_table("t", SCHEMA)
    assert isinstance(e.value, PermissionError)
    with pytest.raises(murr.PermissionDeniedError, match="admin") as e:
        reader.create_table("t", SCHEMA)
    assert READER not in str(e.value)
    admin.create_table("t", SCHEMA)
    with pytest.raises(murr.PermissionDeniedError, match="write"):
        reader.write("t", pa.table({"id": ["a"], "score": pa.array([0.5], pa.float32())}))
    admin.write("t", pa.table({"id": ["a"], "score": pa.array([0.5], pa.float32())}))
    got = reader.read_keyed("t", {"id": ["a", "b"]}, ["score"])
    assert got.to_pydict() == {"_idx": [0], "score": [0.5]}
    with pytest.raises(murr.AuthenticationError):
        anonymous.read_keyed("t", {"id": ["a"]}, ["score"])
    with pytest.raises(murr.AuthenticationError):
        Murr.connect(url, token="not-the-token-0123456789").list_tables()
    for m in (admin, reader, anonymous):
        m.close()


def test_async_client_sends_its_token(guarded) -> None:
    async def run() -> None:
        async with murr.client.Client(guarded.http_url, token=ADMIN) as admin:
            await admin.create_table("t", SCHEMA)
        async with murr.client.Client(guarded.http_url, token=READER) as reader:
            assert list(await reader.list_tables()) == ["t"]
            with pytest.raises(murr.client.ForbiddenError) as e:
                await reader.drop_table("t")
            assert e.value.status_code == 403
        async with murr.client.Client(guarded.http_url) as anonymous:
            with pytest.raises(murr.client.UnauthorizedError) as e:
                await anonymous.list_tables()
            assert e.value.status_code == 401

    asyncio.run(run())
