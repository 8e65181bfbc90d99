//! A real murr server (HTTP and Arrow Flight, on 127.0.0.1 ephemeral ports, over a fresh data
//! folder) for tests that drive it from outside, like `murr-client`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use murr_directory::MmapDirectory;
use murr_table::{Store, StoreOptions};

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
    /// Starts a server on the current tokio runtime (which must be multi-threaded).
    ///
    /// # Panics
    /// When it cannot start: this is test set-up.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp folder");
        let directory = MmapDirectory::open(dir.path()).expect("opens the data folder");
        let store = Arc::new(
            Store::open(Arc::new(directory), StoreOptions::default()).expect("opens the store"),
        );
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let http = murr_http::bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("binds");
        let http_addr = http.local_addr().expect("address");
        let router = murr_http::router(murr_http::AppState {
            store: Arc::clone(&store),
            config: Arc::new(murr_http::HttpConfig {
                max_payload_size: 1 << 30,
                upload_dir: dir.path().to_path_buf(),
            }),
        });
        tokio::spawn(murr_http::serve(http, router, stopped(rx.clone())));
        let flight = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let flight_addr = flight.local_addr().expect("address");
        let service =
            murr_flight::MurrFlight::new(store, murr_flight::FlightConfig::default()).into_server();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(murr_server::nodelay(flight), stopped(rx)),
        );
        TestServer {
            http_url: format!("http://{http_addr}"),
            flight_url: format!("http://{flight_addr}"),
            flight_addr,
            stop: Some(stop),
            _dir: dir,
        }
    }

    /// A client of the server over `transport`.
    ///
    /// # Panics
    /// Never for the URLs this server has.
    pub fn client(&self, transport: murr_client::Transport) -> murr_client::Client {
        let url = match transport {
            murr_client::Transport::Http => &self.http_url,
            murr_client::Transport::Flight => &self.flight_url,
        };
        murr_client::Client::builder(url.clone())
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
