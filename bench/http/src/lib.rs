//! The HTTP/1.1 client of the service benchmarks (`bench/serve/loadgen`, `bench/soak/driver`), std only: one
//! keep-alive connection, reconnecting after an error; and the two inputs both read (the server's address, the
//! member tokens file).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// A result with a message for the operator.
pub type Res<T> = Result<T, String>;

/// One keep-alive connection. Bodies are read by `Content-Length` (none: empty) or chunked; an empty `POST` or
/// `PUT` is sent with `Content-Length: 0`.
pub struct Conn {
    addr: SocketAddr,
    read_timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    /// A connection to `addr` (opened on the first call) whose reads time out after `read_timeout`.
    pub fn new(addr: SocketAddr, read_timeout: Duration) -> Conn {
        Conn { addr, read_timeout, stream: None }
    }

    /// Sends one request and reads its response: status and body. Any error drops the connection.
    pub fn call(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> Res<(u16, Vec<u8>)> {
        let out = self.try_call(method, path, headers, body);
        if out.is_err() {
            self.stream = None;
        }
        out
    }

    fn try_call(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> Res<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(self.read_timeout)).map_err(|e| e.to_string())?;
            self.stream = Some(BufReader::with_capacity(64 * 1024, s));
        }
        let r = self.stream.as_mut().ok_or("no connection")?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}", self.addr).into_bytes();
        if !body.is_empty() {
            req.extend_from_slice(
                format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()).as_bytes(),
            );
        } else if method == "POST" || method == "PUT" {
            req.extend_from_slice(b"Content-Length: 0\r\n");
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        r.get_mut().write_all(&req).map_err(|e| e.to_string())?;
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
        let status: u16 =
            line.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut close = false;
        let mut chunked = false;
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("connection closed in the head".into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                let n = n.trim().to_ascii_lowercase();
                if n == "content-length" {
                    length = v.trim().parse::<usize>().ok();
                } else if n == "connection" && v.trim().eq_ignore_ascii_case("close") {
                    close = true;
                } else if n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
        }
        let body = if chunked {
            let mut out = Vec::new();
            loop {
                line.clear();
                r.read_line(&mut line).map_err(|e| e.to_string())?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                    .map_err(|_| format!("bad chunk size {line:?}"))?;
                let mut chunk = vec![0; size + 2];
                r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..size]);
            }
            out
        } else {
            let mut body = vec![0; length.unwrap_or(0)];
            r.read_exact(&mut body).map_err(|e| e.to_string())?;
            body
        };
        if close {
            self.stream = None;
        }
        Ok((status, body))
    }
}

/// The `Authorization` header line of a member token.
pub fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// `HOST:PORT`, with or without `http://` and a trailing `/`.
pub fn addr(s: &str) -> Res<SocketAddr> {
    let s = s.trim_start_matches("http://").trim_end_matches('/');
    s.to_socket_addrs().map_err(|e| format!("{s}: {e}"))?.next().ok_or(format!("{s}: no address"))
}

/// A tokens file: one `MEMBER TOKEN` per line (blank lines skipped).
pub fn tokens(path: &Path) -> Res<Vec<(u64, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (m, t) =
                l.trim().split_once(' ').ok_or(format!("{}: expected `MEMBER TOKEN`, got {l:?}", path.display()))?;
            Ok((m.parse().map_err(|_| format!("{}: bad member id {m:?}", path.display()))?, t.to_string()))
        })
        .collect()
}
