"""Generation 2 of the API from Python, against the real server binary: murr's own
``murr.client`` (the 0.3 client's names), upstream murr's 0.3.1 client (a client we did not
write), and ``Murr.read_keyed`` / ``Murr.compact`` on every backend."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import murr.client
import v2_scenarios
from murr import ColumnSchema, DType, InvalidInputError, TableSchema

TESTS = Path(__file__).resolve().parent


def test_murr_client_runs_every_scenario(server) -> None:
    done = asyncio.run(v2_scenarios.run_all(murr.client, server.http_url))
    assert done == [s.__name__ for s in v2_scenarios.SCENARIOS]


def upstream_client() -> Path:
    folder = os.environ.get("MURRDB_UPSTREAM_CLIENT")
    if folder and (Path(folder) / "murr" / "client" / "_client.py").exists():
        return Path(folder)
    if os.environ.get("CI"):
        pytest.fail("CI must install upstream murr's client: cargo xtask test does")
    pytest.skip("upstream murr's client is not installed (cargo xtask test installs it)")


# Upstream's client is a package named `murr` too: a fresh interpreter takes `murr` from its
# folder, before anything imports ours.
BOOTSTRAP = """
import asyncio, json, sys, types
folder, tests, url = sys.argv[1:4]
murr = types.ModuleType("murr")
murr.__path__ = [folder + "/murr"]
sys.modules["murr"] = murr
sys.path.insert(0, tests)
import murr.client as c
assert c.__file__.startswith(folder), c.__file__
import v2_scenarios
print(json.dumps(asyncio.run(v2_scenarios.run_all(c, url))))
"""


def test_upstream_client_runs_every_scenario(server) -> None:
    folder = upstream_client()
    out = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(folder), str(TESTS), server.http_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [s.__name__ for s in v2_scenarios.SCENARIOS]


def test_murr_client_lists_both_generations(server) -> None:
    """murr's own client reads a server holding both generations' tables; upstream's 0.3 client
    rejects the generation-1 schemas in such a list (its models forbid a top-level key), as
    docs/api.md says."""

    async def run() -> None:
        async with murr.client.Client(server.http_url) as client:
            v1 = TableSchema(
                key="id",
                columns={"id": ColumnSchema(DType.UTF8, nullable=False), "x": ColumnSchema(DType.INT64)},
            )
            await client.create_table("old", v1)
            await client.create_table("new", v2_scenarios._users(murr.client))
            tables = await client.list_tables()
            assert tables["old"] == v1 and tables["old"].key_columns == ["id"]
            assert tables["new"].key is None and tables["new"].key_columns == ["id"]
            await client.write("old", pa.table({"id": ["a"], "x": [5]}))
            got = await client.read("old", {"id": ["z", "a"]}, columns=["x"])
            assert got.to_pydict() == {"_idx": [1], "x": [5]}
            await client.close()

    asyncio.run(run())


def test_read_keyed_and_compact_on_every_backend(db) -> None:
    schema = TableSchema(
        columns={
            "user": ColumnSchema(DType.UTF8, nullable=False, key=True),
            "item": ColumnSchema(DType.UINT32, nullable=False, key=True),
            "emb": ColumnSchema("fixed_size_list<float32, 2>"),
        }
    )
    db.create_table("r", schema)
    assert db.get_schema("r") == schema
    db.write(
        "r",
        pa.table(
            {
                "user": ["a", "a", "b"],
                "item": pa.array([1, 2, 1], pa.uint32()),
                "emb": pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.float32(), 2)),
            }
        ),
    )
    db.compact("r")
    got = db.read_keyed(
        "r", {"user": ["b", "a", "zz"], "item": pa.array([1, 2, 1], pa.uint8())}, ["emb"]
    )
    assert got.to_pydict() == {"_idx": [0, 1], "emb": [[5.0, 6.0], [3.0, 4.0]]}
    with pytest.raises(InvalidInputError, match="item"):
        db.read_keyed("r", {"user": ["a"]}, ["emb"])
    with pytest.raises(InvalidInputError, match="key"):
        db.read("r", ["a"], ["emb"])
