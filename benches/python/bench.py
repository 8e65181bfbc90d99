"""`cargo xtask bench --python`: murr's Python package against redis-py, in one run.

A table of `--rows` keys (default 10M) x 10 non-null float32 columns is loaded into a murr folder
with the embedded engine, and into Redis as packed 40-byte blobs (all 10 floats of a key). Each
backend then answers `--requests` reads of 1000 random existing keys (seeded), each turned into a
pandas DataFrame of 10 float32 columns:

- murr embedded: `Murr.start_local(folder).read(...)` (a pyarrow RecordBatch), and the same
  `.to_pandas()`; beside it, what pandas alone charges to wrap a ready 1000 x 10 array;
- murr remote: the release `murr` binary on the same folder, through `Murr.connect` over HTTP and
  over Arrow Flight, `.to_pandas()`;
- Redis: redis-py `MGET` of the 1000 blobs, decoded with NumPy (`np.frombuffer`) into the same
  DataFrame.

The remote clients and Redis are timed in alternation, request by request. Then `murr-bench
--murr-only` times the Rust in-process fetch on the same folder (the embedded goal's baseline),
and the embedded engine's reads (RecordBatch) are timed with 1 and 4 threads (the GIL is released
during a fetch; pandas' conversion holds it).

Prints a markdown table and the ratios against the goals; writes JSON to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import redis

from murr import ColumnSchema, DType, TableSchema
from murr.sync import Murr

COLUMNS = [f"f{c}" for c in range(10)]
TABLE = "bench"


def key(i: int) -> str:
    return f"k{i:010d}"


def keys_of(ids: np.ndarray) -> list[str]:
    return [key(int(i)) for i in ids]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(samples_s: list[float]) -> dict[str, float]:
    us = sorted(x * 1e6 for x in samples_s)
    return {
        "mean_us": statistics.fmean(us),
        "p50_us": us[len(us) // 2],
        "p99_us": us[min(len(us) - 1, int(len(us) * 0.99))],
    }


def load_murr(folder: Path, rows: int, chunk: int = 1_000_000) -> float:
    """Writes the table with the embedded engine; returns rows/s."""
    schema = TableSchema(
        key="id",
        columns={"id": ColumnSchema(dtype=DType.UTF8, nullable=False)}
        | {c: ColumnSchema(dtype=DType.FLOAT32, nullable=False) for c in COLUMNS},
    )
    arrow_schema = pa.schema(
        [pa.field("id", pa.string(), nullable=False)]
        + [pa.field(c, pa.float32(), nullable=False) for c in COLUMNS]
    )
    rng = np.random.default_rng(7)

    def batches():
        for start in range(0, rows, chunk):
            end = min(rows, start + chunk)
            values = rng.random((end - start, 10), dtype=np.float32)
            ids = pa.array([key(i) for i in range(start, end)], pa.string())
            yield pa.RecordBatch.from_arrays(
                [ids] + [pa.array(values[:, c]) for c in range(10)], schema=arrow_schema
            )

    started = time.perf_counter()
    with Murr.start_local(folder) as db:
        db.create_table(TABLE, schema)
        db.write(TABLE, pa.RecordBatchReader.from_batches(arrow_schema, batches()))
    return rows / (time.perf_counter() - started)


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="murr-bench-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def load(self, rows: int, chunk: int = 10_000) -> float:
        rng = np.random.default_rng(7)
        started = time.perf_counter()
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, rows, chunk):
            end = min(rows, start + chunk)
            values = rng.random((end - start, 10), dtype=np.float32)
            blobs = {key(start + i): values[i].tobytes() for i in range(end - start)}
            pipe.mset(blobs)
            if len(pipe) >= 10:
                pipe.execute()
        pipe.execute()
        return rows / (time.perf_counter() - started)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class MurrServer:
    LISTENING = re.compile(r"murr listening http=(\S+) grpc=(\S+)")

    def __init__(self, binary: Path, folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MURR_")}
        env["RUST_LOG"] = "info"
        self.proc = subprocess.Popen(
            [str(binary), "--data-dir", str(folder), "--port", "0", "--grpc-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        found = threading.Event()
        self.urls: dict[str, str] = {}

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                m = self.LISTENING.search(line)
                if m:
                    self.urls["http"] = f"http://{m.group(1)}"
                    self.urls["grpc"] = f"grpc://{m.group(2)}"
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(600) or not self.urls:
            raise RuntimeError("murr did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def redis_frame(client: redis.Redis, keys: list[str]) -> pd.DataFrame:
    blobs = client.mget(keys)
    values = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, 10)
    return pd.DataFrame(values, columns=COLUMNS, copy=False)


def threads_throughput(db: Murr, requests: list[list[str]], threads: int, seconds: float) -> float:
    """Reads/s of `threads` threads reading for `seconds`."""
    done = [0] * threads
    stop = threading.Event()

    def worker(n: int) -> None:
        i = n
        while not stop.is_set():
            db.read(TABLE, requests[i % len(requests)], COLUMNS)
            done[n] += 1
            i += threads

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return sum(done) / seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--murr-bin", type=Path, default=Path("target/release/murr"))
    p.add_argument("--murr-bench", type=Path, default=Path("target/release/murr-bench"))
    p.add_argument("--out", type=Path, default=Path("target/bench/python.json"))
    p.add_argument("--thread-seconds", type=float, default=5.0)
    a = p.parse_args()

    rng = np.random.default_rng(20_251_127)
    requests = [keys_of(rng.integers(0, a.rows, 1000)) for _ in range(a.requests)]
    report: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="murr-bench-python-"))
    folder = work / "data"
    try:
        print(f"bench: {a.rows} rows x 10 float32, {a.requests} requests of 1000 keys", file=sys.stderr)
        report["murr load (embedded)"] = {"rows_per_s": load_murr(folder, a.rows)}

        print("bench: timing murr embedded", file=sys.stderr)
        with Murr.start_local(folder) as db:
            for r in requests[: max(1, len(requests) // 10)]:
                db.read(TABLE, r, COLUMNS).to_pandas()
            arrow, frames, floor = [], [], []
            for r in requests:
                t = time.perf_counter()
                batch = db.read(TABLE, r, COLUMNS)
                arrow.append(time.perf_counter() - t)
                assert batch.num_rows == 1000
                t = time.perf_counter()
                df = db.read(TABLE, r, COLUMNS).to_pandas()
                frames.append(time.perf_counter() - t)
                assert df.shape == (1000, 10)
                # What pandas alone charges for a DataFrame of a ready 1000 x 10 array (the
                # Redis path builds its DataFrame this way).
                values = np.zeros((1000, 10), dtype=np.float32)
                t = time.perf_counter()
                pd.DataFrame(values, columns=COLUMNS, copy=False)
                floor.append(time.perf_counter() - t)
            report["murr embedded (RecordBatch)"] = stats(arrow)
            report["murr embedded"] = stats(frames)
            report["pandas DataFrame of a ready array"] = stats(floor)
            one = threads_throughput(db, requests, 1, a.thread_seconds)
            four = threads_throughput(db, requests, 4, a.thread_seconds)
            report["murr embedded threads"] = {
                "reads_per_s_1_thread": one,
                "reads_per_s_4_threads": four,
                "cores": os.cpu_count(),
            }

        print("bench: loading Redis blobs", file=sys.stderr)
        server = MurrServer(a.murr_bin, folder)
        rds = RedisServer()
        try:
            report["redis load (pipelined MSET)"] = {"rows_per_s": rds.load(a.rows)}
            http = Murr.connect(server.urls["http"])
            flight = Murr.connect(server.urls["grpc"])
            backends = {
                "murr remote HTTP": lambda k: http.read(TABLE, k, COLUMNS).to_pandas(),
                "murr remote Flight": lambda k: flight.read(TABLE, k, COLUMNS).to_pandas(),
                "redis-py MGET + NumPy": lambda k: redis_frame(rds.client, k),
            }
            print("bench: timing murr HTTP, murr Flight and redis-py in alternation", file=sys.stderr)
            for r in requests[: max(1, len(requests) // 10)]:
                for f in backends.values():
                    f(r)
            samples = {name: [] for name in backends}
            for r in requests:
                for name, f in backends.items():
                    t = time.perf_counter()
                    df = f(r)
                    samples[name].append(time.perf_counter() - t)
                    assert df.shape == (1000, 10), name
            for name, s in samples.items():
                report[name] = stats(s)
            http.close()
            flight.close()
        finally:
            rds.stop()
            server.stop()

        print("bench: timing the Rust in-process fetch on the same folder (murr-bench --murr-only)", file=sys.stderr)
        rust_out = work / "rust.json"
        subprocess.run(
            [str(a.murr_bench), "--murr-only", "--data", str(folder), "--rows", str(a.rows),
             "--requests", str(a.requests), "--wide-rows", "1000", "--murr-bin", str(a.murr_bin),
             "--out", str(rust_out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        rust = json.loads(rust_out.read_text())["backends"]["murr in-process"]["last_byte"]
        report["murr Rust in-process"] = {"mean_us": rust["mean"], "p50_us": rust["p50"], "p99_us": rust["p99"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    redis_us = report["redis-py MGET + NumPy"]["mean_us"]
    threads = report["murr embedded threads"]
    targets = [
        ("remote HTTP / redis-py", report["murr remote HTTP"]["mean_us"] / redis_us, "<= 0.3"),
        ("remote Flight / redis-py", report["murr remote Flight"]["mean_us"] / redis_us, "<= 0.3"),
        ("embedded RecordBatch / Rust in-process", report["murr embedded (RecordBatch)"]["mean_us"] / report["murr Rust in-process"]["mean_us"], "<= 1.5"),
        ("embedded DataFrame / Rust in-process", report["murr embedded"]["mean_us"] / report["murr Rust in-process"]["mean_us"], "<= 1.5"),
        ("embedded 4 threads / 1 thread (RecordBatch reads/s)", threads["reads_per_s_4_threads"] / threads["reads_per_s_1_thread"], "> 1"),
    ]
    print(f"\n{a.rows} rows x 10 float32; {a.requests} reads of 1000 random keys into a pandas DataFrame\n")
    print("| backend | mean µs | p50 µs | p99 µs |")
    print("|---|---|---|---|")
    for name, r in report.items():
        if "mean_us" in r:
            print(f"| {name} | {r['mean_us']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} |")
    print(f"\nembedded RecordBatch reads/s: 1 thread {threads['reads_per_s_1_thread']:.0f}, 4 threads {threads['reads_per_s_4_threads']:.0f} ({threads['cores']} cores)")
    print("\n| target | measured | goal |")
    print("|---|---|---|")
    for name, v, goal in targets:
        print(f"| {name} | {v:.3f} | {goal} |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({
        "rows": a.rows,
        "requests": a.requests,
        "backends": report,
        "targets": [{"target": n, "measured": v, "goal": g} for n, v, g in targets],
    }, indent=2))
    print(f"\nwritten to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
