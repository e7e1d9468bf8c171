//! The test harness the service's HTTP tests share: the router on an ephemeral port over a private copy of the
//! CLI's fixture data directory (`crates/consentry/tests/fixtures/datadir-v1`), driven by test-support's plain
//! HTTP/1.1 client (moved here from `member_api.rs`, which uses it too).

#![allow(dead_code)]

use consentry_app::keys::Role;
use consentry_app::{DataDir, Session};
use consentry_test_support::cli::copy_dir;
pub use consentry_test_support::http::{Response, request};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A member of the fixture's ledger (FR, adult, opt-in policy).
pub const A: u64 = 5;
/// Another member of the fixture's ledger.
pub const B: u64 = 6;
pub const JOBS: &str = "train_ai_system.job_recommendations";
/// Its newest notice is version 2; version 1 is stale.
pub const REPLIES: &str = "train_ai_system.reply_suggestions";

/// A service on an ephemeral port over its own copy of the fixture; stopped (gracefully) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub session: Arc<Session>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let (dir, data) = Server::fixture();
        Server::on(dir, &data, consentry_server::router)
    }

    pub fn on(dir: tempfile::TempDir, data: &Path, app: impl FnOnce(Arc<Session>) -> axum::Router) -> Server {
        Server::with_session(dir, Session::open(DataDir::new(data), None).unwrap(), app)
    }

    /// A fresh copy of the fixture data directory in a temporary directory: (the temporary directory, the data).
    pub fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../consentry/tests/fixtures/datadir-v1"), &data);
        (dir, data)
    }

    /// The service over a session the test set up (e.g. with platform tokens configured).
    pub fn with_session(
        dir: tempfile::TempDir,
        session: Session,
        app: impl FnOnce(Arc<Session>) -> axum::Router,
    ) -> Server {
        let session = Arc::new(session);
        let router = app(Arc::clone(&session));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Server { addr, session, stop: Some(stop), thread: Some(thread), dir }
    }

    pub fn token(&self, member: u64) -> String {
        self.session.mint_member_token(member, 3600, consentry_ledger::now()).unwrap().token
    }

    pub fn get(&self, path: &str, token: &str) -> Response {
        request(self.addr, "GET", path, &[("Authorization", &format!("Bearer {token}"))], b"")
    }

    pub fn put(&self, path: &str, token: &str, extra: &[(&str, &str)], body: &str) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        headers.extend_from_slice(extra);
        request(self.addr, "PUT", path, &headers, body.as_bytes())
    }

    pub fn choose(&self, token: &str, purpose: &str, state: &str, notice: u32, extra: &[(&str, &str)]) -> Response {
        let body = format!(r#"{{"state": "{state}", "notice_version": {notice}}}"#);
        self.put(&format!("/v1/me/consents/{purpose}"), token, extra, &body)
    }

    pub fn ledger_len(&self) -> u64 {
        self.session.ledger().unwrap().store().len().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asserts an RFC 9457 problem with `status` and type slug `slug`; returns its body.
pub fn problem(r: &Response, status: u16, slug: &str) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{r:?}");
    let body = r.json();
    assert_eq!(body["type"], format!("https://consentry.dev/problems/{slug}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    body
}

impl Server {
    /// A new API key of `role`; its secret.
    pub fn api_key(&self, role: Role) -> String {
        self.session.create_api_key(role, "test", consentry_ledger::now()).unwrap().secret
    }

    /// A POST with a JSON body (empty: none) and extra headers.
    pub fn post(&self, path: &str, token: &str, extra: &[(&str, &str)], body: &str) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        headers.extend_from_slice(extra);
        request(self.addr, "POST", path, &headers, body.as_bytes())
    }

    /// The data directory the service runs on.
    pub fn data(&self) -> &DataDir {
        self.session.dir()
    }
}

/// The JSON body of a 2xx answer.
pub fn ok(r: &Response) -> Value {
    assert!((200..300).contains(&r.status), "{} {}", r.status, String::from_utf8_lossy(&r.body));
    r.json()
}

/// A member whose data is in a live model of the fixture.
pub fn member_in_live_model(s: &Server) -> u64 {
    (1..=200)
        .find(|m| {
            s.session
                .member_lineage(*m)
                .is_ok_and(|l| l.models.iter().any(|x| x.status.to_string() == "live" && x.removed_at.is_none()))
        })
        .expect("the fixture has a live model with members")
}
