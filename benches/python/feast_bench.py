"""`cargo xtask bench --python` (second part): Feast's `get_online_features` with murr's online store
against Feast's Redis online store, in one run.

One Feast repo per store (file offline store; the same Parquet file of `--entities` drivers x 10
float32 features, materialized into both), then `--requests` calls of `get_online_features` for
1000 random drivers x the 10 features, alternating murr and Redis call by call. Two times per
call: end to end, and inside the store's per-feature-view read (`_read_features_per_fv`: the
read plus building Feast's response, which each store does its own way). murr is the release
`murr` binary over HTTP; Redis is `redis-server` with Feast's `redis` online store.

Prints a markdown table and the ratios against the goals (read <= 0.3x Redis's, end to end
<= 0.5x); writes JSON to `--out`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureStore

FEATURES = [f"f{c}" for c in range(10)]
START = datetime(2026, 11, 1, tzinfo=timezone.utc)

DEFINITIONS = """
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float32

driver = Entity(name="driver", join_keys=["driver_id"])
stats = FeatureView(
    name="stats",
    entities=[driver],
    ttl=timedelta(days=3650),
    schema=[Field(name=f"f{c}", dtype=Float32) for c in range(10)],
    source=FileSource(path="DATA", timestamp_field="event_timestamp"),
)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def repo(root: Path, data: Path, online_store: str) -> Path:
    root.mkdir(parents=True)
    (root / "feature_store.yaml").write_text(
        textwrap.dedent(
            f"""\
            project: bench
            registry: {root}/registry.db
            provider: local
            offline_store:
              type: file
            entity_key_serialization_version: 3
            """
        )
        + online_store
    )
    (root / "features.py").write_text(DEFINITIONS.replace("DATA", str(data)))
    feast = Path(sys.executable).parent / "feast"
    for args in (["apply"], ["materialize", "2026-10-01T00:00:00", "2026-12-31T00:00:00"]):
        done = subprocess.run([str(feast), "-c", str(root), *args], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"feast {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return root


class Timed:
    """Wraps a store's `_read_features_per_fv`, keeping the last call's seconds."""

    def __init__(self, store: FeatureStore) -> None:
        online = store._get_provider().online_store
        inner = online._read_features_per_fv
        self.last = 0.0

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.last = time.perf_counter() - t

        online._read_features_per_fv = timed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--murr-bin", required=True)
    p.add_argument("--entities", type=int, default=100_000)
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--out", default="target/bench/feast.json")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="murr-feast-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        rng = np.random.default_rng(1)
        n = args.entities
        table = pa.table(
            {
                "driver_id": pa.array(np.arange(n, dtype=np.int64)),
                "event_timestamp": pa.array([START] * n, pa.timestamp("us", tz="UTC")),
                **{f: pa.array(rng.random(n, dtype=np.float32)) for f in FEATURES},
            }
        )
        data = tmp / "drivers.parquet"
        pq.write_table(table, data)

        murr_log = open(tmp / "murr.log", "w")
        murr = subprocess.Popen(
            [args.murr_bin, "--data-dir", str(tmp / "murr-data"), "--port", "0", "--no-grpc"],
            stdout=murr_log,
            stderr=subprocess.STDOUT,
        )
        procs.append(murr)
        deadline = time.time() + 30
        url = None
        while url is None and time.time() < deadline:
            m = re.search(r"murr listening http=(\S+)", (tmp / "murr.log").read_text())
            url = f"http://{m.group(1)}" if m else None
            time.sleep(0.05)
        if url is None:
            sys.exit("murr did not start: " + (tmp / "murr.log").read_text())
        redis_port = free_port()
        redis_bin = shutil.which("redis-server")
        if redis_bin is None:
            sys.exit("redis-server is not installed (apt-get install redis-server)")
        procs.append(
            subprocess.Popen(
                [redis_bin, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )
        )
        time.sleep(0.3)

        t = time.perf_counter()
        murr_repo = repo(
            tmp / "murr-repo", data, f"online_store:\n  type: murr.feast.MurrOnlineStore\n  endpoint: {url}\n"
        )
        murr_load = time.perf_counter() - t
        t = time.perf_counter()
        redis_repo = repo(
            tmp / "redis-repo",
            data,
            f"online_store:\n  type: redis\n  connection_string: 127.0.0.1:{redis_port}\n",
        )
        redis_load = time.perf_counter() - t

        stores = {"murr": FeatureStore(repo_path=str(murr_repo)), "redis": FeatureStore(repo_path=str(redis_repo))}
        timers = {name: Timed(s) for name, s in stores.items()}
        refs = [f"stats:{f}" for f in FEATURES]
        total: dict[str, list[float]] = {"murr": [], "redis": []}
        inner: dict[str, list[float]] = {"murr": [], "redis": []}
        warm = max(3, args.requests // 10)
        for i in range(args.requests + warm):
            rows = [{"driver_id": int(d)} for d in rng.integers(0, n, args.keys)]
            answers = {}
            for name in ("murr", "redis") if i % 2 else ("redis", "murr"):
                t = time.perf_counter()
                answers[name] = stores[name].get_online_features(features=refs, entity_rows=rows)
                took = time.perf_counter() - t
                if i >= warm:
                    total[name].append(took)
                    inner[name].append(timers[name].last)
            if i == warm:
                a, b = (answers[k].to_dict() for k in ("murr", "redis"))
                assert a == b, "murr and Redis answer the same"
        result = {
            "entities": n,
            "keys": args.keys,
            "features": len(FEATURES),
            "requests": args.requests,
            "materialize_s": {"murr": murr_load, "redis": redis_load},
        }
        print(f"\nFeast get_online_features, {args.keys} entities x {len(FEATURES)} float32 features, {n} entities, {args.requests} calls each\n")
        print("| store | end to end p50 ms | p99 ms | store read p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        for name in ("murr", "redis"):
            e2e = sorted(total[name])
            read = sorted(inner[name])
            q = lambda xs, f: xs[min(len(xs) - 1, int(f * len(xs)))] * 1e3  # noqa: E731
            result[name] = {
                "e2e_p50_ms": statistics.median(e2e) * 1e3,
                "e2e_p99_ms": q(e2e, 0.99),
                "read_p50_ms": statistics.median(read) * 1e3,
                "read_p99_ms": q(read, 0.99),
            }
            r = result[name]
            print(f"| {name} | {r['e2e_p50_ms']:.2f} | {r['e2e_p99_ms']:.2f} | {r['read_p50_ms']:.2f} | {r['read_p99_ms']:.2f} |")
        read_ratio = result["murr"]["read_p50_ms"] / result["redis"]["read_p50_ms"]
        e2e_ratio = result["murr"]["e2e_p50_ms"] / result["redis"]["e2e_p50_ms"]
        result["read_ratio"] = read_ratio
        result["e2e_ratio"] = e2e_ratio
        print(f"\nstore read: murr {read_ratio:.2f}x Redis's (goal <= 0.3x)")
        print(f"end to end: murr {e2e_ratio:.2f}x Redis's (goal <= 0.5x)")
        print(f"materialize: murr {murr_load:.1f} s, Redis {redis_load:.1f} s (feast apply + materialize, CLI)")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
