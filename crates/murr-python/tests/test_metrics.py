"""``GET /metrics`` read by the Prometheus project's own text parser (prometheus-client), after
reads and writes from Python over both transports: every family parses, with the types and
label sets the README's Monitoring section lists."""

from __future__ import annotations

import urllib.request

import pyarrow as pa
from prometheus_client.parser import text_string_to_metric_families

from murr import ColumnSchema, DType, TableSchema
from murr.sync import Murr


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics") as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(family, **labels) -> float:
    """The family's value for ``labels``: a counter's total, a histogram's count, a gauge."""
    names = {family.name, family.name + "_total", family.name + "_count"}
    for s in family.samples:
        if s.name in names and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample of {family.name} with {labels}: {family.samples}")


def test_prometheus_parses_the_scrape(server) -> None:
    schema = TableSchema(
        columns={
            "id": ColumnSchema(dtype=DType.UTF8, nullable=False, key=True),
            "score": ColumnSchema(dtype=DType.FLOAT32),
        }
    )
    http = Murr.connect(server.http_url)
    flight = Murr.connect(server.grpc_url)
    http.create_table("t", schema)
    http.write("t", pa.table({"id": ["a", "b", "c"], "score": pa.array([1, 2, 3], pa.float32())}))
    for db in (http, flight):
        for _ in range(3):
            db.read_keyed("t", {"id": ["a", "zz"]}, ["score"])
    families = scrape(server.http_url)
    kinds = {name: f.type for name, f in families.items() if name.startswith("murr_")}
    for name, kind in {
        "murr_http_requests": "counter",
        "murr_http_request_duration_seconds": "histogram",
        "murr_http_open_connections": "gauge",
        "murr_flight_calls": "counter",
        "murr_flight_call_duration_seconds": "histogram",
        "murr_fetch_keys": "counter",
        "murr_fetch_keys_found": "counter",
        "murr_rows_written": "counter",
        "murr_table_bytes": "gauge",
        "murr_table_segments": "gauge",
        "murr_merges": "counter",
        "murr_process_resident_memory_bytes": "gauge",
    }.items():
        assert kinds.get(name) == kind, (name, kinds.get(name))
    assert value(families["murr_fetch_keys"], table="t") == 12
    assert value(families["murr_fetch_keys_found"], table="t") == 6
    assert value(families["murr_rows_written"], table="t") == 3
    assert value(families["murr_flight_calls"], method="do_get", code="OK") == 3
    fetches = value(
        families["murr_http_request_duration_seconds"], route="/api/v1/table/{name}/fetch"
    )
    assert fetches == 3
    for db in (http, flight):
        db.close()
