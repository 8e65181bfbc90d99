"""murr as Feast's online store (``murr.feast.MurrOnlineStore``), against Feast's own SQLite
online store on the same repo: a real Feast repo in a temporary folder (file offline store on
Parquet), ``feast apply`` and ``feast materialize`` run as Feast's CLI, then
``get_online_features`` compared value for value; with the real ``murr`` server and with the
engine embedded in this process. Dropping a feature view drops its table; a write older than
the stored row of its entity is ignored (Feast's freshness rule)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast import FeatureStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from conftest import Server
from murr.sync import Murr

FEAST = Path(sys.executable).parent / "feast"
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
DRIVERS = 60

DEFINITIONS = """
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource
from feast.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp

driver = Entity(name="driver", join_keys=["driver_id"])
customer = Entity(name="customer", join_keys=["customer_id"])

driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="rank", dtype=Int32),
        Field(name="active", dtype=Bool),
        Field(name="city", dtype=String),
        Field(name="avatar", dtype=Bytes),
        Field(name="embedding", dtype=Array(Float32)),
        Field(name="vector", dtype=Array(Float32), vector_length=3),
        Field(name="tags", dtype=Array(String)),
        Field(name="seen", dtype=UnixTimestamp),
    ],
    source=FileSource(path="{data}/drivers.parquet", timestamp_field="event_timestamp", created_timestamp_column="created"),
)
"""

PAIRS = """
pair_stats = FeatureView(
    name="pair_stats",
    entities=[driver, customer],
    ttl=timedelta(days=3650),
    schema=[Field(name="orders", dtype=Int64), Field(name="spend", dtype=Float64)],
    source=FileSource(path="{data}/pairs.parquet", timestamp_field="event_timestamp", created_timestamp_column="created"),
)
"""

DRIVER_FEATURES = [
    f"driver_stats:{f}"
    for f in ["conv_rate", "acc_rate", "trips", "rank", "active", "city", "avatar", "embedding", "vector", "tags", "seen"]
]


def write_data(data: Path) -> None:
    """Two versions of each driver (the later one wins), nulls here and there, negative numbers,
    and pairs of (driver, customer) for the compound key."""
    rng = np.random.default_rng(7)
    rows = []
    for version in range(2):
        for d in range(DRIVERS):
            ts = START + timedelta(days=version, minutes=d)
            rows.append(
                {
                    "driver_id": d,
                    "event_timestamp": ts,
                    "created": ts + timedelta(seconds=1),
                    "conv_rate": None if d % 7 == 3 else float(np.float32(rng.random())),
                    "acc_rate": float(rng.random() * 100 - 50),
                    "trips": int(rng.integers(-(2**40), 2**40)) if d % 5 else None,
                    "rank": int(rng.integers(-1000, 1000)),
                    "active": bool(d % 2),
                    "city": None if d % 11 == 0 else f"city-{d}-{version}",
                    "avatar": bytes([d, version, 255]),
                    "embedding": [float(x) for x in rng.random(4).astype(np.float32)],
                    "vector": None if d % 13 == 5 else [float(x) for x in rng.random(3).astype(np.float32)],
                    "tags": [f"t{d}", f"v{version}"],
                    "seen": ts - timedelta(hours=d),
                }
            )
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("driver_id", pa.int64()),
                ("event_timestamp", pa.timestamp("us", tz="UTC")),
                ("created", pa.timestamp("us", tz="UTC")),
                ("conv_rate", pa.float32()),
                ("acc_rate", pa.float64()),
                ("trips", pa.int64()),
                ("rank", pa.int32()),
                ("active", pa.bool_()),
                ("city", pa.string()),
                ("avatar", pa.binary()),
                ("embedding", pa.list_(pa.float32())),
                ("vector", pa.list_(pa.float32())),
                ("tags", pa.list_(pa.string())),
                ("seen", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )
    pq.write_table(table, data / "drivers.parquet")
    pairs = pd.DataFrame(
        {
            "driver_id": [d for d in range(10) for _ in range(3)],
            "customer_id": [c for _ in range(10) for c in range(3)],
            "event_timestamp": [START + timedelta(hours=i) for i in range(30)],
            "created": [START + timedelta(hours=i) for i in range(30)],
            "orders": list(range(30)),
            "spend": [i * 1.5 for i in range(30)],
        }
    )
    pairs.to_parquet(data / "pairs.parquet")


def make_repo(root: Path, online_store: str, pairs: bool = True) -> Path:
    repo = root
    repo.mkdir(parents=True, exist_ok=True)
    data = repo / "data"
    data.mkdir(exist_ok=True)
    if not (data / "drivers.parquet").exists():
        write_data(data)
    (repo / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: murr_test
            registry: {repo}/data/registry.db
            provider: local
            offline_store:
              type: file
            entity_key_serialization_version: 3
            """
        )
        + online_store
    )
    definitions = DEFINITIONS + (PAIRS if pairs else "")
    (repo / "features.py").write_text(definitions.replace("{data}", str(data)))
    return repo


def feast_cli(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [str(FEAST), "-c", str(repo), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"feast {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def apply_and_materialize(repo: Path) -> None:
    feast_cli(repo, "apply")
    feast_cli(repo, "materialize", "2026-10-01T00:00:00", "2026-12-31T00:00:00")


def online(repo: Path) -> dict:
    """What get_online_features answers for the driver view (drivers that exist and not, one
    asked twice) and the compound-key view."""
    store = FeatureStore(repo_path=str(repo))
    drivers = [0, 3, 11, 59, 7, 1000, 3, -1]
    single = store.get_online_features(
        features=DRIVER_FEATURES, entity_rows=[{"driver_id": d} for d in drivers]
    ).to_dict()
    pairs = store.get_online_features(
        features=["pair_stats:orders", "pair_stats:spend"],
        entity_rows=[{"driver_id": d, "customer_id": c} for d, c in [(0, 0), (9, 2), (4, 1), (4, 7)]],
        full_feature_names=True,
    ).to_dict()
    # The generic read (what Feast's other paths call), row by row.
    online_store = store._get_provider().online_store
    view = store.get_feature_view("driver_stats")
    keys = [EntityKeyProto(join_keys=["driver_id"], entity_values=[ValueProto(int64_val=d)]) for d in (5, 6, 999)]
    asked = ["conv_rate", "city", "tags", "seen", "avatar"]
    read = online_store.online_read(store.config, view, keys, asked)
    # (SQLite's answers every feature, asked or not.)
    rows = [(ts, {k: values[k].SerializeToString() for k in asked} if values else None) for ts, values in read]
    both = store.get_online_features(
        features=["driver_stats:trips", "pair_stats:orders"],
        entity_rows=[{"driver_id": d, "customer_id": 1} for d in [2, 5, 500]],
    ).to_dict()
    return {"single": single, "pairs": pairs, "both": both, "online_read": rows}


@pytest.fixture(scope="module")
def sqlite_answer(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("feast-sqlite")
    repo = make_repo(
        root / "repo", f"online_store:\n  type: sqlite\n  path: {root}/online.db\n"
    )
    apply_and_materialize(repo)
    return online(repo)


def test_feast_on_the_murr_server_answers_as_feasts_sqlite_store(tmp_path: Path, sqlite_answer, monkeypatch):
    server = Server(tmp_path / "server")
    try:
        online_store = f"online_store:\n  type: murr.feast.MurrOnlineStore\n  endpoint: {server.http_url}\n"
        repo = make_repo(tmp_path / "repo", online_store)
        apply_and_materialize(repo)
        answer = online(repo)
        assert answer["single"]["driver_id"] == [0, 3, 11, 59, 7, 1000, 3, -1]
        assert answer["single"]["city"][:4] == [None, "city-3-1", None, "city-59-1"]
        assert answer["single"]["conv_rate"][1] is None and answer["single"]["trips"][5] is None
        assert answer == sqlite_answer

        db = Murr.connect(server.http_url)
        tables = db.list_tables()
        assert {"murr_test.driver_stats", "murr_test.pair_stats"} <= set(tables)
        assert str(tables["murr_test.driver_stats"].columns["embedding"].dtype) == "list<float32>"
        assert str(tables["murr_test.driver_stats"].columns["vector"].dtype) == "fixed_size_list<float32, 3>"

        # Freshness: a write older than the stored row changes nothing; a newer one replaces it.
        store = FeatureStore(repo_path=str(repo))
        before = store.get_online_features(
            features=["driver_stats:trips"], entity_rows=[{"driver_id": 1}, {"driver_id": 2}]
        ).to_dict()["trips"]
        late = START + timedelta(days=5)
        store.write_to_online_store(
            "driver_stats",
            pd.DataFrame(
                {
                    "driver_id": [1, 2],
                    "event_timestamp": [START - timedelta(days=5), late],
                    "created": [late, late],
                    "conv_rate": np.array([0.5, 0.5], dtype=np.float32),
                    "acc_rate": [1.0, 2.0],
                    "trips": [111, 222],
                    "rank": np.array([1, 2], dtype=np.int32),
                    "active": [True, False],
                    "city": ["late", "late"],
                    "avatar": [b"x", b"y"],
                    "embedding": [[1.0], [2.0]],
                    "vector": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
                    "tags": [["a"], ["b"]],
                    "seen": [late, late],
                }
            ),
        )
        after = store.get_online_features(
            features=["driver_stats:trips"], entity_rows=[{"driver_id": 1}, {"driver_id": 2}]
        ).to_dict()["trips"]
        assert after == [before[0], 222]

        # A write in parts (three rows each): the freshness rule holds across the parts.
        monkeypatch.setattr("murr.feast.WRITE_ROWS", 3)
        drivers = [d for d in range(200, 210) for _ in range(2)]
        times = [late + timedelta(minutes=(1 if i % 4 == 1 else -1) * i) for i in range(20)]
        store.write_to_online_store(
            "driver_stats",
            pd.DataFrame(
                {
                    "driver_id": drivers,
                    "event_timestamp": times,
                    "created": times,
                    "conv_rate": np.zeros(20, dtype=np.float32),
                    "acc_rate": [0.0] * 20,
                    "trips": list(range(20)),
                    "rank": np.zeros(20, dtype=np.int32),
                    "active": [True] * 20,
                    "city": ["x"] * 20,
                    "avatar": [b"x"] * 20,
                    "embedding": [[1.0]] * 20,
                    "vector": [[1.0, 2.0, 3.0]] * 20,
                    "tags": [["a"]] * 20,
                    "seen": times,
                }
            ),
        )
        newest = {}
        for i, (d, t) in enumerate(zip(drivers, times)):
            if d not in newest or t > times[newest[d]]:
                newest[d] = i
        got = store.get_online_features(
            features=["driver_stats:trips"], entity_rows=[{"driver_id": d} for d in range(200, 210)]
        ).to_dict()["trips"]
        assert got == [newest[d] for d in range(200, 210)]

        # Dropping a feature view drops its table.
        make_repo(tmp_path / "repo", online_store, pairs=False)
        feast_cli(repo, "apply")
        assert "murr_test.pair_stats" not in db.list_tables()
        assert "murr_test.driver_stats" in db.list_tables()
        db.close()
    finally:
        server.stop()


def test_feast_on_the_embedded_engine_answers_as_feasts_sqlite_store(tmp_path: Path, sqlite_answer):
    repo = make_repo(
        tmp_path / "repo",
        f"online_store:\n  type: murr.feast.MurrOnlineStore\n  path: {tmp_path}/murr\n",
    )
    # The CLI's process opens the folder, writes and exits; then this process opens it.
    apply_and_materialize(repo)
    assert online(repo) == sqlite_answer


def test_a_store_needs_an_endpoint_or_a_path(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", "online_store:\n  type: murr.feast.MurrOnlineStore\n")
    done = subprocess.run([str(FEAST), "-c", str(repo), "apply"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "set either endpoint" in done.stdout + done.stderr


def test_keys_built_a_column_at_a_time_are_feasts_serialized_entity_keys():
    from feast.infra.key_encoding_utils import serialize_entity_key

    from murr.feast import _murr_keys

    columns = {
        "user": [ValueProto(int64_val=v) for v in (0, -1, 2**62, 7)],
        "country": [ValueProto(string_val=v) for v in ("fr", "", "日本", "fr")],
        "shard": [ValueProto(int32_val=v) for v in (-5, 0, 2**31 - 1, 3)],
        "blob": [ValueProto(bytes_val=v) for v in (b"", b"\x00", b"xyz", b"\xff" * 20)],
        "at": [ValueProto(unix_timestamp_val=v) for v in (0, 1, -1, 1700000000)],
    }
    for names in (["user"], ["country"], ["user", "country"], list(columns), ["shard", "blob", "at"]):
        subset = {n: columns[n] for n in names}
        want = [
            serialize_entity_key(
                EntityKeyProto(join_keys=names, entity_values=[subset[n][i] for n in names]),
                entity_key_serialization_version=3,
            ).hex()
            for i in range(4)
        ]
        assert _murr_keys(subset, 4, 3) == want, names
    # Values of mixed kinds in one column take Feast's own path.
    mixed = {"id": [ValueProto(int64_val=1), ValueProto(string_val="1")]}
    assert _murr_keys(mixed, 2, 3) == [
        serialize_entity_key(EntityKeyProto(join_keys=["id"], entity_values=[v]), 3).hex() for v in mixed["id"]
    ]
