//! A real murr server (HTTP and Arrow Flight, on 127.0.0.1 ephemeral ports, over a fresh data
//! folder), built by `murr_server::Server` as the binary builds it, for tests that drive it from
//! outside, like `murr-client`'s and the HTTP API's.

pub mod fuzz;
pub mod seaweed;
pub mod tls;

use std::net::SocketAddr;

use murr_server::{Config, Server};

/// A running server; dropping it shuts both front-ends down.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:port`
    pub http_url: String,
    /// `http://127.0.0.1:port` of the Flight service.
    pub flight_url: String,
    /// The Flight address.
    pub flight_addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the default configuration on the current tokio runtime.
    ///
    /// # Panics
    /// When it cannot start: this is test set-up.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `configure` adjusts (addresses and data folder are
    /// set before it is called).
    ///
    /// # Panics
    /// When it cannot start: this is test set-up.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp folder");
        let mut config = Config::default();
        let loopback = "127.0.0.1".parse().expect("address");
        config.server.http.host = loopback;
        config.server.http.port = 0;
        config.server.grpc.host = loopback;
        config.server.grpc.port = 0;
        config.server.shutdown_timeout = 1.0;
        config.storage.cache_dir = dir.path().to_path_buf();
        configure(&mut config);
        let server = Server::bind(config).await.expect("murr starts");
        let http_addr = server.http_addr();
        let flight_addr = server.grpc_addr().expect("Flight is on");
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        tokio::spawn(server.serve(async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        TestServer {
            http_url: format!("http://{http_addr}"),
            flight_url: format!("http://{flight_addr}"),
            flight_addr,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The server's URL for `transport` (`http://127.0.0.1:port`).
    pub fn url(&self, transport: murr_client::Transport) -> &str {
        match transport {
            murr_client::Transport::Http => &self.http_url,
            murr_client::Transport::Flight => &self.flight_url,
        }
    }

    /// A client of the server over `transport`.
    ///
    /// # Panics
    /// Never for the URLs this server has.
    pub fn client(&self, transport: murr_client::Transport) -> murr_client::Client {
        murr_client::Client::builder(self.url(transport))
            .transport(transport)
            .build()
            .expect("client")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}
