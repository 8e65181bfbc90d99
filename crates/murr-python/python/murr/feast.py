"""A Feast online store on murr: ``pip install 'murrdb[feast]'``, then in ``feature_store.yaml``::

    online_store:
      type: murr.feast.MurrOnlineStore
      endpoint: http://127.0.0.1:8080      # a murr server (grpc://host:port for Arrow Flight)
      # path: /var/cache/murr-feast         # or: murr's engine in this process, on this folder
      # token: ...                          # for a server with server.auth.tokens

Each feature view is one murr table, ``<project>.<feature view>``: the entity key (Feast's
serialized entity key, compound keys included, as hex) is the table's key, each feature a typed
column (Feast's scalar and list types map to murr's; other types are kept as serialized Feast
values in a binary column), and ``_feast_event_ts`` / ``_feast_created_ts`` keep the rows'
timestamps. A write keeps only rows newer than the stored row of their entity (Feast's
freshness rule, as in its Redis store). ``get_online_features`` reads N entities x M features of
a feature view with one murr request, and builds Feast's response from the Arrow answer in bulk
rather than value by value.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

try:
    from feast import Entity, FeatureView, RepoConfig
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.online_store import OnlineStore
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus, GetOnlineFeaturesResponse
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
    from feast.protos.feast.types.Value_pb2 import Value as ValueProto
    from feast.protos.feast.types.Value_pb2 import ValueType as KeyType
    from feast.repo_config import FeastConfigBaseModel
    from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
    from feast.value_type import ValueType
    from feast import utils as feast_utils
    from google.protobuf.timestamp_pb2 import Timestamp
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError(
        "murr.feast needs Feast: pip install 'murrdb[feast]' (or pip install feast)"
    ) from e

from murr.errors import TableExistsError, TableNotFoundError
from murr.schema import ColumnSchema, TableSchema
from murr.sync import Murr

__all__ = ["MurrOnlineStore", "MurrOnlineStoreConfig"]

KEY = "_feast_entity_key"
EVENT_TS = "_feast_event_ts"
CREATED_TS = "_feast_created_ts"
_TS = "timestamp[us, UTC]"


class MurrOnlineStoreConfig(FeastConfigBaseModel):
    """``online_store:`` settings of ``feature_store.yaml``: ``endpoint`` (a murr server) or
    ``path`` (murr's engine in this process), not both."""

    type: Literal["murr.feast.MurrOnlineStore"] = "murr.feast.MurrOnlineStore"
    endpoint: Optional[str] = None
    """``http://host:port`` or ``grpc://host:port`` (``https://``, ``grpc+tls://`` with TLS)."""
    path: Optional[str] = None
    """A folder for murr's embedded engine (one process at a time opens it)."""
    token: Optional[str] = None
    """A bearer token, for a server with ``server.auth.tokens``."""
    timeout: float = 30.0
    """Seconds each call to a server may take."""


# Feast's value types that map to a murr column: (murr dtype, Arrow type, Value field).
_SCALARS: Dict[ValueType, Tuple[str, pa.DataType, str]] = {
    ValueType.INT32: ("int32", pa.int32(), "int32_val"),
    ValueType.INT64: ("int64", pa.int64(), "int64_val"),
    ValueType.FLOAT: ("float32", pa.float32(), "float_val"),
    ValueType.DOUBLE: ("float64", pa.float64(), "double_val"),
    ValueType.BOOL: ("bool", pa.bool_(), "bool_val"),
    ValueType.STRING: ("utf8", pa.string(), "string_val"),
    ValueType.BYTES: ("binary", pa.binary(), "bytes_val"),
}
_LISTS: Dict[ValueType, ValueType] = {
    ValueType.INT32_LIST: ValueType.INT32,
    ValueType.INT64_LIST: ValueType.INT64,
    ValueType.FLOAT_LIST: ValueType.FLOAT,
    ValueType.DOUBLE_LIST: ValueType.DOUBLE,
    ValueType.BOOL_LIST: ValueType.BOOL,
    ValueType.STRING_LIST: ValueType.STRING,
    ValueType.BYTES_LIST: ValueType.BYTES,
}


def _column_type(value_type: ValueType, vector_length: int = 0) -> Tuple[str, pa.DataType]:
    """The murr dtype and Arrow type of a feature of ``value_type``: the matching type (an
    embedding, a float list with a ``vector_length``, as a fixed-size list), or binary holding
    the serialized Feast value for types murr has no column type for."""
    if value_type in _SCALARS:
        dtype, arrow, _ = _SCALARS[value_type]
        return dtype, arrow
    if value_type in (ValueType.FLOAT_LIST, ValueType.DOUBLE_LIST) and vector_length > 0:
        dtype, arrow, _ = _SCALARS[_LISTS[value_type]]
        return f"fixed_size_list<{dtype}, {vector_length}>", pa.list_(arrow, vector_length)
    if value_type in _LISTS:
        dtype, arrow, _ = _SCALARS[_LISTS[value_type]]
        return f"list<{dtype}>", pa.list_(arrow)
    if value_type == ValueType.UNIX_TIMESTAMP:
        return _TS, pa.timestamp("us", tz="UTC")
    return "binary", pa.binary()


def _value_type(field: Any) -> ValueType:
    return field.dtype.to_value_type()


def _field_type(field: Any) -> Tuple[str, pa.DataType]:
    return _column_type(_value_type(field), getattr(field, "vector_length", 0) or 0)


def _table_name(config: RepoConfig, table: FeatureView) -> str:
    return f"{config.project}.{table.name}"


def _schema(table: FeatureView) -> TableSchema:
    columns: Dict[str, ColumnSchema] = {KEY: ColumnSchema(dtype="utf8", nullable=False)}
    for field in table.features:
        columns[field.name] = ColumnSchema(dtype=_field_type(field)[0])
    columns[EVENT_TS] = ColumnSchema(dtype=_TS)
    columns[CREATED_TS] = ColumnSchema(dtype=_TS)
    return TableSchema(key=KEY, columns=columns)


_engines: Dict[str, Murr] = {}
_engines_lock = threading.Lock()


def _micros(ts: Optional[datetime]) -> Optional[int]:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


# Protobuf wire format, for building Feast's response a column at a time (parsing one message
# of 1000 values is far cheaper than making 1000 messages in Python).
_VARINT_LIMITS = np.array([1 << (7 * i) for i in range(1, 10)], dtype=np.uint64)


def _varints(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The varint encoding of each of ``values`` (uint64): a (n, 10) byte matrix and lengths."""
    v = values.astype(np.uint64, copy=True)
    lengths = 1 + (v[:, None] >= _VARINT_LIMITS[None, :]).sum(axis=1)
    out = np.zeros((len(v), 10), dtype=np.uint8)
    for i in range(10):
        byte = (v & np.uint64(0x7F)).astype(np.uint8)
        more = i + 1 < lengths
        out[:, i] = np.where(more, byte | 0x80, byte)
        v >>= np.uint64(7)
    return out, lengths


def _pack(matrix: np.ndarray, lengths: np.ndarray) -> bytes:
    """The first ``lengths[i]`` bytes of each row of ``matrix``, concatenated."""
    mask = np.arange(matrix.shape[1])[None, :] < lengths[:, None]
    return matrix[mask].tobytes()


def _length_delimited(field: int, payload: np.ndarray, lengths: np.ndarray) -> bytes:
    """Each row's payload as repeated field ``field`` (payloads under 128 bytes)."""
    n, width = payload.shape
    matrix = np.zeros((n, width + 2), dtype=np.uint8)
    matrix[:, 0] = (field << 3) | 2
    matrix[:, 1] = lengths
    matrix[:, 2:] = payload
    return _pack(matrix, lengths + 2)


def _fixed_values(tag: int, raw: np.ndarray, valid: np.ndarray) -> bytes:
    """``values`` entries of a FeatureVector: Value messages holding one fixed-width field."""
    n = len(valid)
    width = raw.shape[1] + 1
    payload = np.zeros((n, width), dtype=np.uint8)
    payload[:, 0] = tag
    payload[:, 1:] = raw
    return _length_delimited(1, payload, np.where(valid, width, 0))


def _varint_values(tag: int, ints: np.ndarray, valid: np.ndarray) -> bytes:
    """``values`` entries holding one varint field (negative numbers take ten bytes)."""
    encoded, lengths = _varints(ints.astype(np.int64).view(np.uint64))
    payload = np.zeros((len(valid), 11), dtype=np.uint8)
    payload[:, 0] = tag
    payload[:, 1:] = encoded
    return _length_delimited(1, payload, np.where(valid, lengths + 1, 0))


def _timestamps(micros: np.ndarray, valid: np.ndarray) -> bytes:
    """``event_timestamps`` entries: Timestamp messages (zero fields left out)."""
    seconds = np.floor_divide(micros, 1_000_000)
    nanos = (micros - seconds * 1_000_000) * 1000
    s_enc, s_len = _varints(seconds.view(np.uint64))
    n_enc, n_len = _varints(nanos.astype(np.uint64))
    s_len = np.where(valid & (seconds != 0), s_len, 0)
    n_len = np.where(valid & (nanos != 0), n_len, 0)
    n = len(micros)
    payload = np.zeros((n, 22), dtype=np.uint8)
    # seconds (field 1) then nanos (field 2), each only when not zero.
    payload[:, 0] = np.where(s_len > 0, 0x08, 0)
    at = np.where(s_len > 0, 1, 0)
    for i in range(10):
        take = i < s_len
        payload[np.arange(n)[take], at[take] + i] = s_enc[take, i]
    at = at + s_len
    payload[np.arange(n)[n_len > 0], at[n_len > 0]] = 0x10
    at = at + np.where(n_len > 0, 1, 0)
    for i in range(10):
        take = i < n_len
        payload[np.arange(n)[take], at[take] + i] = n_enc[take, i]
    lengths = at + n_len
    return _length_delimited(3, payload, lengths)


def _statuses(present: np.ndarray) -> bytes:
    """The packed ``statuses`` field: PRESENT or NOT_FOUND for each row."""
    body = np.where(present, FieldStatus.PRESENT, FieldStatus.NOT_FOUND).astype(np.uint8).tobytes()
    length, n = _varints(np.array([len(body)], dtype=np.uint64))
    return b"\x12" + _pack(length, n) + body


def _values_bytes(column: pa.Array, value_type: ValueType, rows: np.ndarray) -> Optional[bytes]:
    """The ``values`` entries for ``column``'s values at ``rows`` (-1: not found), built in
    bulk for fixed-width and integer types; None for the types built value by value."""
    arrow = column.type
    found = rows >= 0
    taken = column.take(pa.array(np.where(found, rows, 0), pa.int64())) if len(column) else None
    if taken is None:
        valid = np.zeros(len(rows), dtype=bool)
    else:
        valid = found & ~np.asarray(taken.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_float32(arrow) and value_type == ValueType.FLOAT:
        raw = np.asarray(taken.fill_null(0).to_numpy(), dtype="<f4") if taken is not None else np.zeros(len(rows), "<f4")
        return _fixed_values(0x35, raw.view(np.uint8).reshape(-1, 4), valid)
    if pa.types.is_float64(arrow) and value_type == ValueType.DOUBLE:
        raw = np.asarray(taken.fill_null(0).to_numpy(), dtype="<f8") if taken is not None else np.zeros(len(rows), "<f8")
        return _fixed_values(0x29, raw.view(np.uint8).reshape(-1, 8), valid)
    if pa.types.is_int64(arrow) and value_type == ValueType.INT64:
        ints = np.asarray(taken.fill_null(0).to_numpy(), dtype=np.int64) if taken is not None else np.zeros(len(rows), np.int64)
        return _varint_values(0x20, ints, valid)
    if pa.types.is_int32(arrow) and value_type == ValueType.INT32:
        ints = np.asarray(taken.fill_null(0).to_numpy(), dtype=np.int64) if taken is not None else np.zeros(len(rows), np.int64)
        return _varint_values(0x18, ints, valid)
    if pa.types.is_boolean(arrow) and value_type == ValueType.BOOL:
        bools = np.asarray(taken.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.uint8) if taken is not None else np.zeros(len(rows), np.uint8)
        return _fixed_values(0x38, bools.reshape(-1, 1), valid)
    return None


def _value_protos(column: pa.Array, value_type: ValueType) -> List[ValueProto]:
    """One Feast Value per row of ``column`` (an empty Value for null)."""
    values = column.to_pylist()
    if pa.types.is_binary(column.type) and value_type not in _SCALARS:
        return [ValueProto.FromString(v) if v is not None else ValueProto() for v in values]
    if value_type == ValueType.UNIX_TIMESTAMP:
        return [
            ValueProto(unix_timestamp_val=int(v.timestamp())) if v is not None else ValueProto()
            for v in values
        ]
    present = [v for v in values if v is not None]
    protos = iter(python_values_to_proto_values(present, value_type)) if present else iter(())
    return [next(protos) if v is not None else ValueProto() for v in values]


def _python_values(protos: Sequence[ValueProto], value_type: ValueType, arrow: pa.DataType) -> pa.Array:
    """A column of ``arrow`` type from Feast values (serialized whole for binary fallbacks)."""
    if arrow == pa.binary() and value_type not in _SCALARS:
        return pa.array(
            [p.SerializeToString() if p.WhichOneof("val") is not None else None for p in protos],
            pa.binary(),
        )
    out: List[Any] = []
    for p in protos:
        if p.WhichOneof("val") in (None, "null_val"):
            out.append(None)
        elif value_type == ValueType.UNIX_TIMESTAMP:
            out.append(int(p.unix_timestamp_val) * 1_000_000)
        else:
            out.append(feast_value_type_to_python_type(p))
    return pa.array(out, arrow)


# Entity key values Feast serializes at a fixed width: (Value field, ValueType, NumPy dtype).
_FIXED_KEYS = {
    "int64_val": (KeyType.INT64, "<i8"),
    "int32_val": (KeyType.INT32, "<i4"),
    "unix_timestamp_val": (KeyType.UNIX_TIMESTAMP, "<i8"),
}


def _u32(n: int) -> bytes:
    return int(n).to_bytes(4, "little")


def _murr_keys(columns: Dict[str, Sequence[ValueProto]], rows: int, version: int) -> List[str]:
    """The murr key of each row: Feast's ``serialize_entity_key`` of the row's join key values
    (``columns``: join key name to one value per row), as hex, built a column at a time for
    integer and string keys (the same bytes; the tests hold the two equal) and by Feast's
    function for any other."""
    names = sorted(columns)
    kinds = []
    for name in names:
        values = columns[name]
        kind = values[0].WhichOneof("val") if rows else None
        if version < 3 or any(v.WhichOneof("val") != kind for v in values):
            kind = None
        if kind not in _FIXED_KEYS and kind not in ("string_val", "bytes_val"):
            return [
                serialize_entity_key(
                    EntityKeyProto(join_keys=names, entity_values=[columns[n][i] for n in names]),
                    entity_key_serialization_version=version,
                ).hex()
                for i in range(rows)
            ]
        kinds.append(kind)
    head = [_u32(len(names))]
    for name in names:
        encoded = name.encode("utf8")
        head += [_u32(KeyType.STRING), _u32(len(encoded)), encoded]
    parts: List[List[bytes]] = [[b"".join(head)] * rows]
    for name, kind in zip(names, kinds):
        values = columns[name]
        if kind in _FIXED_KEYS:
            value_type, dtype = _FIXED_KEYS[kind]
            numbers = np.array([getattr(v, kind) for v in values], dtype=dtype)
            width = numbers.dtype.itemsize
            block = np.zeros((rows, 8 + width), dtype=np.uint8)
            block[:, :4] = np.frombuffer(_u32(value_type), dtype=np.uint8)
            block[:, 4:8] = np.frombuffer(_u32(width), dtype=np.uint8)
            block[:, 8:] = numbers.view(np.uint8).reshape(rows, width)
            flat = block.tobytes()
            step = 8 + width
            parts.append([flat[i * step : (i + 1) * step] for i in range(rows)])
        else:
            value_type = _u32(KeyType.STRING if kind == "string_val" else KeyType.BYTES)
            raw = [v.string_val.encode("utf8") for v in values] if kind == "string_val" else [v.bytes_val for v in values]
            parts.append([value_type + _u32(len(r)) + r for r in raw])
    return [b"".join(row).hex() for row in zip(*parts)]


#: Rows of a Feast write sent in one murr write (after one read of their stored event times).
WRITE_ROWS = 50_000


def _write_part(
    db: Murr,
    name: str,
    table: FeatureView,
    version: int,
    data: Sequence[Tuple[EntityKeyProto, Dict[str, ValueProto], datetime, Optional[datetime]]],
) -> None:
    """Writes the rows of ``data`` newer than their entity's stored row (Feast's freshness
    rule: a row replaces its entity's only if its event time is later than the stored row's
    and than an earlier row of ``data``)."""
    keys = [serialize_entity_key(k, entity_key_serialization_version=version).hex() for k, _, _, _ in data]
    event = [_micros(ts) for _, _, ts, _ in data]
    latest: Dict[str, int] = {}
    unique = list(dict.fromkeys(keys))
    stored = db.read(name, unique, [EVENT_TS]).column(0).cast(pa.int64()).to_pylist()
    for k, ts in zip(unique, stored):
        if ts is not None:
            latest[k] = ts
    chosen: Dict[str, int] = {}
    for i, (k, ts) in enumerate(zip(keys, event)):
        t = ts if ts is not None else 0
        if k in latest and t <= latest[k]:
            continue
        latest[k] = t
        chosen[k] = i
    rows = list(chosen.values())
    if not rows:
        return
    columns: Dict[str, pa.Array] = {KEY: pa.array([keys[i] for i in rows], pa.string())}
    for field in table.features:
        protos = [data[i][1].get(field.name, ValueProto()) for i in rows]
        columns[field.name] = _python_values(protos, _value_type(field), _field_type(field)[1])
    ts_type = pa.timestamp("us", tz="UTC")
    columns[EVENT_TS] = pa.array([event[i] for i in rows], pa.int64()).cast(ts_type)
    columns[CREATED_TS] = pa.array([_micros(data[i][3]) for i in rows], pa.int64()).cast(ts_type)
    db.write(name, pa.table(columns))


class MurrOnlineStore(OnlineStore):
    """Feast's online store on murr: see the module's documentation."""

    def _murr(self, config: RepoConfig) -> Murr:
        store: MurrOnlineStoreConfig = config.online_store
        if (store.endpoint is None) == (store.path is None):
            raise ValueError(
                "online_store (murr.feast.MurrOnlineStore): set either endpoint (a murr server) or path (an embedded engine)"
            )
        where = store.endpoint or os.path.abspath(store.path or "")
        with _engines_lock:
            db = _engines.get(where)
            if db is None:
                if store.endpoint is not None:
                    db = Murr.connect(store.endpoint, timeout=store.timeout, token=store.token)
                else:
                    db = Murr.start_local(where)
                _engines[where] = db
        return db

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        db = self._murr(config)
        for table in tables_to_keep:
            name = _table_name(config, table)
            wanted = _schema(table)
            try:
                db.create_table(name, wanted)
            except TableExistsError:
                have = db.get_schema(name)
                new = {n: c for n, c in wanted.columns.items() if n not in have.columns}
                if new:
                    db.add_columns(name, new)
        self._drop(config, tables_to_delete)

    def _drop(self, config: RepoConfig, tables: Sequence[FeatureView]) -> None:
        """Drops the tables of ``tables`` (those that exist)."""
        db = self._murr(config)
        for table in tables:
            try:
                db.drop_table(_table_name(config, table))
            except TableNotFoundError:
                pass

    def teardown(
        self,
        config: RepoConfig,
        tables: Sequence[FeatureView],
        entities: Sequence[Entity],
    ) -> None:
        self._drop(config, tables)

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: List[Tuple[EntityKeyProto, Dict[str, ValueProto], datetime, Optional[datetime]]],
        progress: Optional[Callable[[int], Any]],
    ) -> None:
        db = self._murr(config)
        name = _table_name(config, table)
        # In parts: each part's read of stored event times stays under the server's max_keys.
        for start in range(0, len(data), WRITE_ROWS):
            part = data[start : start + WRITE_ROWS]
            _write_part(db, name, table, config.entity_key_serialization_version, part)
            if progress:
                progress(len(part))

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: List[EntityKeyProto],
        requested_features: Optional[List[str]] = None,
    ) -> List[Tuple[Optional[datetime], Optional[Dict[str, ValueProto]]]]:
        db = self._murr(config)
        features = requested_features or [f.name for f in table.features]
        types = {f.name: _value_type(f) for f in table.features}
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, entity_key_serialization_version=version).hex() for k in entity_keys]
        batch = db.read(_table_name(config, table), keys, [*features, EVENT_TS])
        event = batch.column(len(features)).to_pylist()
        columns = [_value_protos(batch.column(i), types[f]) for i, f in enumerate(features)]
        out: List[Tuple[Optional[datetime], Optional[Dict[str, ValueProto]]]] = []
        for row, ts in enumerate(event):
            if ts is None:
                out.append((None, None))
            else:
                ts = ts.replace(tzinfo=timezone.utc)
                out.append((ts, {f: columns[i][row] for i, f in enumerate(features)}))
        return out

    def _read_features_per_fv(
        self,
        config: RepoConfig,
        grouped_refs: List,
        join_key_values: Dict,
        entity_name_to_join_key_map: Dict,
        online_features_response: GetOnlineFeaturesResponse,
        full_feature_names: bool,
        include_feature_view_version_metadata: bool,
    ) -> None:
        """One murr read per feature view, and Feast's response built from the Arrow answer a
        column at a time (the generic path makes a Python object per value)."""
        db = self._murr(config)
        version = config.entity_key_serialization_version
        for table, requested in grouped_refs:
            columns = feast_utils._get_table_entity_values(
                table, entity_name_to_join_key_map, join_key_values
            )
            output_len = max((len(v) for v in columns.values()), default=0)
            if not columns or any(len(v) != output_len for v in columns.values()):
                raise KeyError(
                    f"feature view {table.name}: every row needs a value for each join key "
                    f"(of entities {', '.join(table.entities)}); got {', '.join(f'{k}: {len(v)}' for k, v in columns.items())}"
                )
            # One read per distinct entity; each output row points at its entity's row.
            row_keys = _murr_keys(columns, output_len, version)
            position: Dict[str, int] = {}
            source = np.fromiter(
                (position.setdefault(k, len(position)) for k in row_keys), dtype=np.int64, count=output_len
            )
            batch = db.read(_table_name(config, table), list(position), [*requested, EVENT_TS])
            event = batch.column(len(requested)).cast(pa.int64())
            found_unique = ~np.asarray(event.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            micros = np.asarray(event.fill_null(0).to_numpy(), dtype=np.int64)
            found = found_unique[source]
            rows = np.where(found, source, -1)
            timestamps = _timestamps(micros[source], found)
            statuses = _statuses(found)

            name = table.projection.name_to_use()
            refs = [f"{name}__{f}" if full_feature_names else f for f in requested]
            online_features_response.metadata.feature_names.val.extend(refs)
            if include_feature_view_version_metadata:
                fv_name = table.projection.name_alias or table.projection.name
                known = [m.name for m in online_features_response.metadata.feature_view_metadata]
                if fv_name not in known:
                    meta = online_features_response.metadata.feature_view_metadata.add()
                    meta.name = fv_name
                    meta.version = getattr(table, "current_version_number", 0) or 0
            types = {f.name: _value_type(f) for f in table.features}
            for i, feature in enumerate(requested):
                column = batch.column(i)
                encoded = _values_bytes(column, types[feature], rows)
                if encoded is None:
                    per_unique = _value_protos(column, types[feature])
                    empty = ValueProto()
                    vector = GetOnlineFeaturesResponse.FeatureVector(
                        values=[per_unique[r] if r >= 0 else empty for r in rows.tolist()]
                    )
                    encoded = vector.SerializeToString()
                # Parsed in place: appending a parsed vector would copy it.
                online_features_response.results.add().MergeFromString(
                    encoded + statuses + timestamps
                )
