//! The HTTP transport: JSON for the catalog, Arrow IPC streams for writes and fetches.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::RecordBatch;
use reqwest::StatusCode;

use std::borrow::Cow;

use murr_api::{ARROW_STREAM, ErrorAnswer, FetchRequest, WriteAnswer};

use crate::{ClientBuilder, Error, Result, TableSchema, single};

#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    http: reqwest::Client,
    base: String,
}

fn transport(e: &reqwest::Error) -> Error {
    Error::Transport(e.to_string())
}

impl HttpClient {
    pub(crate) fn new(settings: &ClientBuilder) -> Result<Self> {
        let url = &settings.url;
        let base = url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base)
            .map_err(|e| Error::InvalidArgument(format!("server URL {url:?}: {e}")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(bearer) = settings.bearer_header()? {
            headers.insert(reqwest::header::AUTHORIZATION, bearer);
        }
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = &settings.ca {
            let ca = reqwest::Certificate::from_pem(pem)
                .map_err(|e| Error::InvalidArgument(format!("the CA certificate: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
        let http = builder
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .tcp_nodelay(true)
            // The server closes a connection idle for `server.http.header_read_timeout` (30 s by
            // default); dropping it from the pool first keeps a request from being sent on a
            // connection the server is closing at that moment.
            .pool_idle_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| transport(&e))?;
        Ok(HttpClient { http, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The body of a successful answer, or the classified error of a failed one.
    async fn check(resp: reqwest::Response) -> Result<bytes::Bytes> {
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| transport(&e))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_slice::<ErrorAnswer>(&body)
            .map_or_else(|_| String::from_utf8_lossy(&body).into_owned(), |a| a.error);
        Err(match status {
            StatusCode::NOT_FOUND => Error::NotFound(message),
            StatusCode::UNAUTHORIZED => Error::Unauthenticated(message),
            StatusCode::FORBIDDEN => Error::PermissionDenied(message),
            StatusCode::CONFLICT => Error::AlreadyExists(message),
            StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::InvalidArgument(message),
            s if s.is_server_error() => Error::Unavailable(format!("{s}: {message}")),
            s => Error::Protocol(format!("unexpected status {s}: {message}")),
        })
    }

    pub(crate) async fn create_table(&self, name: &str, schema: &TableSchema) -> Result<()> {
        let body = serde_json::to_vec(schema).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let resp = self
            .http
            .put(self.url(&format!("/api/v1/table/{name}")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        Self::check(resp).await.map(drop)
    }

    pub(crate) async fn alter_table(
        &self,
        name: &str,
        change: &murr_api::AlterRequest,
    ) -> Result<TableSchema> {
        let resp = self
            .http
            .patch(self.url(&format!("/api/v1/table/{name}")))
            .header("content-type", "application/json")
            .body(change.to_json(None))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let body = Self::check(resp).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("schema: {e}")))
    }

    pub(crate) async fn drop_table(&self, name: &str) -> Result<()> {
        let resp = self
            .http
            .delete(self.url(&format!("/api/v1/table/{name}")))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        Self::check(resp).await.map(drop)
    }

    pub(crate) async fn list_tables(&self) -> Result<BTreeMap<String, TableSchema>> {
        let resp = self
            .http
            .get(self.url("/api/v1/table"))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let body = Self::check(resp).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("table list: {e}")))
    }

    pub(crate) async fn schema(&self, name: &str) -> Result<TableSchema> {
        let resp = self
            .http
            .get(self.url(&format!("/api/v1/table/{name}/schema")))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let body = Self::check(resp).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("schema: {e}")))
    }

    pub(crate) async fn write(&self, name: &str, batches: &[RecordBatch]) -> Result<u64> {
        let mut body = Vec::new();
        {
            let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut body, &batches[0].schema())
                .map_err(|e| Error::InvalidArgument(format!("encoding Arrow IPC: {e}")))?;
            for b in batches {
                w.write(b)
                    .map_err(|e| Error::InvalidArgument(format!("encoding Arrow IPC: {e}")))?;
            }
            w.finish()
                .map_err(|e| Error::InvalidArgument(format!("encoding Arrow IPC: {e}")))?;
        }
        let resp = self
            .http
            .put(self.url(&format!("/api/v1/table/{name}/write")))
            .header("content-type", ARROW_STREAM)
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let body = Self::check(resp).await?;
        let answer: WriteAnswer = serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("write answer: {e}")))?;
        Ok(answer.rows)
    }

    pub(crate) async fn fetch(
        &self,
        name: &str,
        keys: &[&str],
        columns: &[&str],
    ) -> Result<RecordBatch> {
        let body = serde_json::to_vec(&FetchRequest {
            table: None,
            keys: keys.iter().map(|k| Cow::Borrowed(*k)).collect(),
            columns: columns.iter().map(|c| Cow::Borrowed(*c)).collect(),
        })
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        self.post_fetch(name, "application/json", body).await
    }

    pub(crate) async fn read(
        &self,
        name: &str,
        keys: &RecordBatch,
        columns: &[&str],
    ) -> Result<RecordBatch> {
        let body = murr_api::arrow_body(keys, columns).map_err(Error::InvalidArgument)?;
        self.post_fetch(name, ARROW_STREAM, body).await
    }

    /// POSTs a fetch body of `content_type`, asking for an Arrow answer.
    async fn post_fetch(
        &self,
        name: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> Result<RecordBatch> {
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/table/{name}/fetch")))
            .header("content-type", content_type)
            .header("accept", ARROW_STREAM)
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        arrow_answer(Self::check(resp).await?)
    }

    pub(crate) async fn start_load(
        &self,
        name: &str,
        url: &str,
        mode: murr_api::LoadMode,
    ) -> Result<murr_api::LoadStatus> {
        let request = murr_api::LoadRequest {
            url: url.to_owned(),
            mode,
        };
        let body =
            serde_json::to_vec(&request).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/table/{name}/load")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let body = Self::check(resp).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("load status: {e}")))
    }

    pub(crate) async fn load_status(&self, name: &str, id: &str) -> Result<murr_api::LoadStatus> {
        let resp = self
            .http
            .get(self.url(&format!("/api/v1/table/{name}/load/{id}")))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let body = Self::check(resp).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("load status: {e}")))
    }

    pub(crate) async fn compact(&self, name: &str) -> Result<()> {
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/table/{name}/compact")))
            .send()
            .await
            .map_err(|e| transport(&e))?;
        Self::check(resp).await.map(drop)
    }
}

/// The one batch of an Arrow IPC answer.
fn arrow_answer(body: bytes::Bytes) -> Result<RecordBatch> {
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
        .map_err(|e| Error::Protocol(format!("fetch answer is not Arrow IPC: {e}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Protocol(format!("fetch answer: {e}")))?;
    single(schema, batches)
}
