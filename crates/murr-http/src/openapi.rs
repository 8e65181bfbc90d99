//! The OpenAPI 3.1 document served at `/openapi.json`.

use murr_api::DType;
use murr_api::auth::Scope;
use serde_json::{Value, json};

#[allow(
    clippy::disallowed_methods,
    reason = "serde_json::json! unwraps internally; its values always serialize"
)]
fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

#[allow(
    clippy::disallowed_methods,
    reason = "serde_json::json! unwraps internally; its values always serialize"
)]
fn name_param() -> Value {
    json!({
        "name": "name", "in": "path", "required": true,
        "description": "Table name: 1 to 128 bytes of A-Z a-z 0-9 _ . -",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"},
        "example": "items"
    })
}

/// The document: every route, dtype, content type and error shape the server has, and the
/// bearer-token scope each route needs when tokens are configured.
#[allow(
    clippy::disallowed_methods,
    reason = "serde_json::json! unwraps internally; its values always serialize"
)]
pub fn document() -> Value {
    let mut doc = routes();
    doc["components"]["securitySchemes"] = json!({"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "A token from server.auth.tokens; each route needs one scope (read, write or admin). With no token configured, the server is open and ignores the header."
    }});
    for (method, path, id) in OPERATION_IDS {
        doc["paths"][*path][*method]["operationId"] = json!(id);
    }
    // A created table's name leads to its other operations: clients and schema-driven testers
    // (schemathesis's stateful phase) follow these links from a create to the calls on it.
    let links: serde_json::Map<String, Value> = OPERATION_IDS
        .iter()
        .filter(|(_, path, id)| path.contains("{name}") && *id != "createTable")
        .map(|(_, _, id)| {
            (
                (*id).to_owned(),
                json!({"operationId": id, "parameters": {"name": "$request.path.name"}}),
            )
        })
        .collect();
    doc["paths"]["/api/v1/table/{name}"]["put"]["responses"]["201"]["links"] = Value::Object(links);
    // Any route that reads a body can time out on it.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            if op.get("requestBody").is_some() {
                op["responses"]["408"] =
                    error_response("The body sent nothing for server.http.body_timeout seconds");
            }
        }
    }
    for (method, path, scope) in crate::ROUTE_SCOPES {
        let op = &mut doc["paths"][*path][*method];
        // Optional security: an open server (the default) answers without a token.
        op["security"] = json!([{}, {"bearer": [scope.name()]}]);
        op["responses"]["401"] = error_response("No valid bearer token (tokens are configured)");
        op["responses"]["403"] = error_response(&format!(
            "The token lacks the scope {scope} that this route needs"
        ));
        if *scope != Scope::Read {
            op["responses"]["507"] =
                error_response("The disk is full: nothing was written; retry once space is freed");
        }
    }
    doc
}

/// Each route's operation id.
const OPERATION_IDS: &[(&str, &str, &str)] = &[
    ("get", "/health", "health"),
    ("get", "/openapi.json", "openapi"),
    ("get", "/metrics", "metrics"),
    ("get", "/api/v1/table", "listTables"),
    ("get", "/api/v1/table/{name}/schema", "getSchema"),
    ("put", "/api/v1/table/{name}", "createTable"),
    ("patch", "/api/v1/table/{name}", "alterTable"),
    ("delete", "/api/v1/table/{name}", "dropTable"),
    ("put", "/api/v1/table/{name}/write", "write"),
    ("post", "/api/v1/table/{name}/fetch", "fetch"),
    ("post", "/api/v1/table/{name}/compact", "compact"),
    ("post", "/api/v1/table/{name}/load", "load"),
    ("get", "/api/v1/table/{name}/load/{id}", "loadStatus"),
];

#[allow(
    clippy::disallowed_methods,
    reason = "serde_json::json! unwraps internally; its values always serialize"
)]
fn routes() -> Value {
    let dtypes: Vec<&str> = DType::ALL.iter().map(|t| t.name()).collect();
    let numeric: Vec<&str> = DType::ALL
        .iter()
        .filter(|t| t.is_numeric())
        .map(|t| t.name())
        .collect();
    let timestamp = r"timestamp\[(s|ms|us|ns)(, ?[A-Za-z0-9_+/:-]{1,64})?\]";
    let item = format!("({}|{timestamp})", dtypes.join("|"));
    let dtype_patterns = [
        format!("^{timestamp}$"),
        format!("^list<{item}>$"),
        format!("^fixed_size_list<({}), ?[0-9]{{1,5}}>$", numeric.join("|")),
    ];
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "murr",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Columnar in-memory cache for ML inference: batch writes of typed columns under a key, batch reads of N keys x M columns as Arrow or JSON. Two API generations on one server: generation 1 (a top-level utf8 \"key\", dense answers) and generation 2 (key columns marked \"key\": true, compound and integer keys, sparse answers led by _idx). docs/api.md in the murr repository is the full reference. Every error answer is {\"error\": message}."
        },
        "paths": {
            "/health": {"get": {
                "summary": "Liveness: 200 once the catalog is loaded; with Accept: application/json, the node's role and (replicas) how fresh its copy of the store is",
                "responses": {"200": {"description": "OK", "content": {
                    "text/plain": {"schema": {"type": "string", "const": "OK"}},
                    "application/json": {"schema": {"type": "object", "required": ["status", "role"], "properties": {
                        "status": {"type": "string", "const": "ok"},
                        "role": {"type": "string", "enum": ["local", "writer", "replica"]},
                        "last_sync_age_seconds": {"type": "number"},
                        "stale": {"type": "boolean"},
                        "sync_error": {"type": "string"}
                    }}}
                }}}
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }},
            "/metrics": {"get": {
                "summary": "Metrics in the Prometheus text format: requests, latencies, keys fetched and found, rows written, table sizes, merges, memory (README: Monitoring). Needs the read scope when tokens are configured, unless server.auth.open_metrics",
                "responses": {"200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/api/v1/table": {"get": {
                "summary": "List tables with their schemas",
                "responses": {"200": {"description": "Table name to schema ({} when there are none)", "content": {"application/json": {"schema": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/TableSchema"}}}}}}
            }},
            "/api/v1/table/{name}/schema": {"get": {
                "summary": "A table's schema",
                "parameters": [name_param()],
                "responses": {
                    "200": {"description": "The schema", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TableSchema"}}}},
                    "404": error_response("No such table"),
                    "503": error_response("The table failed to load")
                }
            }},
            "/api/v1/table/{name}": {
                "put": {
                    "summary": "Create a table",
                    "parameters": [name_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TableSchema"}, "example": {"columns": {"id": {"dtype": "utf8", "nullable": false, "key": true}, "score": {"dtype": "float32"}}}}}},
                    "responses": {
                        "201": {"description": "Created; the schema as stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TableSchema"}}}},
                        "400": error_response("Invalid name or schema (key missing, not utf8 or nullable; bad column name; unknown dtype or field)"),
                        "409": error_response("The table exists, or a create or drop of it is in progress"),
                        "413": error_response("Body over the size limit")
                    }
                },
                "patch": {
                    "summary": "Change a table's schema: add nullable columns after the existing ones (rows written before read null in them; no data is rewritten), set or remove the time to live (it applies to rows already written)",
                    "parameters": [name_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlterTable"}}}},
                    "responses": {
                        "200": {"description": "Changed; the new schema", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TableSchema"}}}},
                        "400": error_response("Malformed body, unknown field, bad column name or dtype, a column that is not nullable, a bad ttl, or nothing to change"),
                        "404": error_response("No such table"),
                        "409": error_response("The table already has a column of that name (a column's type never changes), or another writer committed first"),
                        "413": error_response("Body over the size limit"),
                        "503": error_response("The table failed to load, or storage failed")
                    }
                },
                "delete": {
                    "summary": "Drop a table: the name is free again, its files are reclaimed",
                    "parameters": [name_param()],
                    "responses": {
                        "200": {"description": "Dropped", "content": {"application/json": {"schema": {"type": "object", "properties": {"dropped": {"type": "string"}}}}}},
                        "400": error_response("A table name that does not decode"),
                        "404": error_response("No such table"),
                        "409": error_response("A create or drop of the table is in progress"),
                        "503": error_response("Storage failed")
                    }
                }
            },
            "/api/v1/table/{name}/write": {"put": {
                "summary": "Write rows, atomically: after a 200 every row is readable, after an error none is. The last row of a key wins.",
                "parameters": [name_param()],
                "requestBody": {"required": true, "content": {
                    "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}, "description": "Arrow IPC stream; every batch is written"},
                    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}, "description": "Parquet file; every row group is written"},
                    "application/json": {"schema": {"$ref": "#/components/schemas/Columns"}, "description": "The default when no Content-Type is given", "example": {"columns": {"id": ["a", "b"], "score": [0.5, null]}}}
                }},
                "responses": {
                    "200": {"description": "Written", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WriteResult"}}}},
                    "400": error_response("Malformed body, unknown column, null key, null in a non-nullable column, type that does not widen losslessly, a body cut short or with bytes after its Arrow stream, a dictionary expanding past 1 GiB per batch, a Parquet row group over 2 GiB"),
                    "404": error_response("No such table"),
                    "409": error_response("Another writer committed first"),
                    "413": error_response("Body over the size limit"),
                    "415": error_response("Unsupported Content-Type"),
                    "503": error_response("The table failed to load, or storage failed")
                }
            }},
            "/api/v1/table/{name}/fetch": {"post": {
                "summary": "Read columns for keys. Keys as a list of strings (generation 1): one row per key in request order, nulls for keys never written. Keys by key column, as JSON or as an Arrow IPC stream (generation 2): a sparse answer, a row per key found, led by _idx (uint32, the key's position in the request)",
                "parameters": [name_param()],
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/FetchRequest"}, {"$ref": "#/components/schemas/KeyedFetchRequest"}]}, "example": {"keys": {"id": ["a", "zz"]}, "columns": ["score"]}},
                    "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}, "description": "Generation 2: batches of exactly the key columns (types that widen to the keys' without loss); schema metadata \"columns\" is a JSON list of the columns to return"}
                }},
                "responses": {
                    "200": {"description": "Arrow IPC stream when Accept contains application/vnd.apache.arrow.stream (columns in request order, the table's dtypes, all fields nullable; generation 2 leads with _idx), JSON otherwise", "content": {
                        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {"schema": {"$ref": "#/components/schemas/Columns"}}
                    }},
                    "400": error_response("Malformed request, unknown column, a column asked for twice, a key column missing, extra, null, of a type that does not widen to the key's or a value that does not fit it, a key column or _idx asked for (generation 2), keys as strings for a table whose key is not one utf8 column, or more keys or cells than server.fetch.max_keys / max_cells allow"),
                    "404": error_response("No such table"),
                    "413": error_response("Body over server.http.max_fetch_payload_size"),
                    "503": error_response("The table failed to load")
                }
            }},
            "/api/v1/table/{name}/compact": {"post": {
                "summary": "Merge all of a table's segments into one (dropping rows later writes replaced and expired rows); answers when done",
                "parameters": [name_param()],
                "responses": {
                    "200": {"description": "Compacted", "content": {"application/json": {"schema": {"type": "object", "required": ["compacted", "segments"], "properties": {"compacted": {"type": "string"}, "segments": {"type": "integer"}}}}}},
                    "404": error_response("No such table"),
                    "409": error_response("This node is a read replica"),
                    "503": error_response("The table failed to load, or storage failed")
                }
            }},
            "/api/v1/table/{name}/load": {"post": {
                "summary": "Load Parquet files from object storage (one file, every file under a prefix but those named _* or .*, or a glob) into the table, reading them on the server: replace swaps the table's rows for the files' in one commit, upsert writes them like one write. Readers see the old rows until the load is complete; a failed load commits nothing. Answers at once with the load's status; follow it at Location",
                "parameters": [name_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoadRequest"}, "example": {"url": "s3://bucket/dumps/2026-11-28/", "mode": "replace"}}}},
                "responses": {
                    "202": {"description": "Started", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoadStatus"}}}},
                    "400": error_response("Malformed request, or a URL that names no object store murr reads (file:// included)"),
                    "404": error_response("No such table"),
                    "409": error_response("The table is being loaded already, or this node is a read replica"),
                    "413": error_response("Body over server.http.max_fetch_payload_size"),
                    "503": error_response("The table failed to load")
                }
            }},
            "/api/v1/table/{name}/load/{id}": {"get": {
                "summary": "A load's progress (files, rows, bytes), and once ended, its result or the error that stopped it (naming the file)",
                "parameters": [name_param(), {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The load's status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoadStatus"}}}},
                    "400": error_response("A path that does not decode"),
                    "404": error_response("No such load of this table (a server keeps its last loads' status until it restarts)")
                }
            }}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "LoadRequest": {"type": "object", "required": ["url"], "additionalProperties": false, "properties": {
                "url": {"type": "string", "description": "s3://bucket/prefix/, s3://bucket/dump/part-*.parquet, gs://…, az://…"},
                "mode": {"type": "string", "enum": ["replace", "upsert"], "default": "upsert"}
            }},
            "LoadStatus": {"type": "object", "required": ["id", "table", "url", "mode", "state", "files", "files_done", "rows", "bytes", "seconds", "error", "result"], "properties": {
                "id": {"type": "string"},
                "table": {"type": "string"},
                "url": {"type": "string"},
                "mode": {"type": "string", "enum": ["replace", "upsert"]},
                "state": {"type": "string", "enum": ["running", "done", "failed"]},
                "files": {"type": ["integer", "null"], "description": "Files to read; null until listed"},
                "files_done": {"type": "integer"},
                "rows": {"type": "integer"},
                "bytes": {"type": "integer"},
                "seconds": {"type": "number"},
                "error": {"type": ["string", "null"]},
                "result": {"oneOf": [{"$ref": "#/components/schemas/WriteResult"}, {"type": "null"}]}
            }},
            "DType": {"oneOf": [
                {"type": "string", "enum": dtypes},
                {"type": "string", "pattern": dtype_patterns[0], "description": "A timestamp: a signed 64-bit count of the unit since the epoch, with an optional time zone name (UTC, +05:30, Europe/Paris)"},
                {"type": "string", "pattern": dtype_patterns[1], "description": "A list of any length; lists and items may be null; lists do not nest"},
                {"type": "string", "pattern": dtype_patterns[2], "description": "A list of exactly N numbers (1 to 65536): an embedding"}
            ]},
            "Column": {"type": "object", "required": ["dtype"], "additionalProperties": false, "properties": {
                "dtype": {"$ref": "#/components/schemas/DType"},
                "nullable": {"type": "boolean", "default": true}
            }},
            "Column2": {"type": "object", "required": ["dtype"], "additionalProperties": false, "properties": {
                "dtype": {"$ref": "#/components/schemas/DType"},
                "nullable": {"type": "boolean", "default": true},
                "key": {"type": "boolean", "default": false, "description": "A key column: utf8 or an integer type, not nullable; several make a compound key, in column order"},
                "strict": {"type": "boolean", "default": true, "description": "false: a float32 column takes float64 values, rounded"}
            }},
            "TableSchema": {"oneOf": [{"$ref": "#/components/schemas/TableSchema1"}, {"$ref": "#/components/schemas/TableSchema2"}]},
            "TableSchema1": {"type": "object", "required": ["key", "columns"], "additionalProperties": false, "properties": {
                "key": {"type": "string", "description": "The key column: must be among the columns, utf8 and not nullable"},
                "columns": {"type": "object", "description": "Column name to definition, in column order", "additionalProperties": {"$ref": "#/components/schemas/Column"}},
                "ttl": {"oneOf": [{"$ref": "#/components/schemas/Ttl"}, {"type": "null", "description": "No time to live, as when absent"}]}
            }},
            "TableSchema2": {"type": "object", "required": ["columns"], "additionalProperties": false, "properties": {
                "columns": {"type": "object", "description": "Column name to definition, in column order; at least one key column; _idx is reserved", "additionalProperties": {"$ref": "#/components/schemas/Column2"}},
                "ttl": {"oneOf": [{"$ref": "#/components/schemas/Ttl"}, {"type": "null", "description": "No time to live, as when absent"}]}
            }},
            "Ttl": {"description": "Time to live: rows read as missing this long after they were written. Whole seconds (1 to 100 years), or a string of numbers with units s, m, h, d (\"7d\", \"1d12h\"); answers give seconds. Absent: rows never expire.", "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": murr_api::MAX_TTL_SECS},
                {"type": "string", "pattern": "^([0-9]+[smhd])+$|^[0-9]+$"}
            ]},
            "AlterTable": {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {
                "columns": {"oneOf": [{"type": "object", "description": "New columns, in order; each must be nullable (strict: false only on generation-2 tables)", "additionalProperties": {"$ref": "#/components/schemas/Column2"}}, {"type": "null", "description": "No new columns, as when absent"}]},
                "ttl": {"oneOf": [{"$ref": "#/components/schemas/Ttl"}, {"type": "null", "description": "Remove the time to live"}]}
            }},
            "Columns": {"type": "object", "required": ["columns"], "additionalProperties": false, "properties": {
                "columns": {"type": "object", "description": "Column name to values (all of equal length); null is null", "additionalProperties": {"type": "array", "items": {"type": ["string", "number", "boolean", "null"]}}}
            }},
            "FetchRequest": {"type": "object", "required": ["keys", "columns"], "additionalProperties": false, "properties": {
                "keys": {"type": "array", "items": {"type": "string"}},
                "columns": {"type": "array", "items": {"type": "string"}}
            }},
            "KeyedFetchRequest": {"type": "object", "required": ["keys", "columns"], "additionalProperties": false, "properties": {
                "keys": {"type": "object", "description": "One list per key column (exactly the table's key columns, of equal length); values read by the key column's dtype", "additionalProperties": {"type": "array", "items": {"type": ["string", "integer"]}}},
                "columns": {"type": "array", "items": {"type": "string"}, "description": "Columns to return (not key columns, not _idx)"}
            }},
            "WriteResult": {"type": "object", "required": ["rows"], "properties": {
                "rows": {"type": "integer", "description": "Rows received"},
                "stored": {"type": "integer", "description": "Distinct keys stored"},
                "bytes": {"type": "integer", "description": "Bytes of new segment files"}
            }}
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "serde_json::json! unwraps internally; its values always serialize"
    )]
    fn document_lists_exactly_the_routes() {
        let doc = document();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = crate::ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
        // Every route but the two open ones names its scope.
        let mut scoped: Vec<(String, String)> = crate::ROUTE_SCOPES
            .iter()
            .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        scoped.extend(
            [("get", "/health"), ("get", "/openapi.json")]
                .map(|(m, p)| (m.to_owned(), p.to_owned())),
        );
        scoped.sort();
        assert_eq!(scoped, routes);
        let mut ids: Vec<(String, String)> = OPERATION_IDS
            .iter()
            .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        ids.sort();
        assert_eq!(ids, routes, "every route has an operation id");
        // The project's API reference has a row for every route too.
        let reference = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"));
        for (method, path) in crate::ROUTES {
            let row = format!("| {} | `{path}` |", method.to_uppercase());
            assert!(reference.contains(&row), "docs/api.md lacks the row {row}");
        }
        assert_eq!(
            doc["components"]["schemas"]["DType"]["oneOf"][0]["enum"]
                .as_array()
                .expect("enum")
                .len(),
            DType::ALL.len()
        );
    }
}
