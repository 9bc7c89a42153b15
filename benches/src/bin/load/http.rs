//! One HTTP/1.1 connection per buyer or worker (hyper's low-level client
//! over a `TcpStream`, keep-alive), so a run controls exactly how many
//! connections the shop sees and when they are opened.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

/// Where the shop listens: `http://host[:port][/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// A path prefix before the API's mounts: empty, or `/...` without a
    /// trailing `/`.
    pub base: String,
}

impl Target {
    /// Parses a base URL. Only `http://` (the shop serves plain HTTP).
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!("not an http:// URL: {url:?}"));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(format!("a base URL has no query or fragment: {url:?}"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("not a port: {port:?} in {url:?}"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        if host.is_empty() || host.contains('@') {
            return Err(format!("no host (or credentials) in {url:?}"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            base: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Why a request got no HTTP answer.
#[derive(Debug)]
pub enum Transport {
    Connect(std::io::Error),
    Handshake(hyper::Error),
    /// The connection failed before or while the request was sent or the
    /// answer read (a reset, a close).
    Exchange(hyper::Error),
    Build(hyper::http::Error),
    /// No complete answer within the client's timeout.
    Timeout(Duration),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Handshake(e) => write!(f, "handshake: {e}"),
            Self::Exchange(e) => write!(f, "exchange: {e}"),
            Self::Build(e) => write!(f, "request: {e}"),
            Self::Timeout(after) => write!(f, "no answer within {} s", after.as_secs()),
        }
    }
}

impl Transport {
    /// A short name to tally by.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Handshake(_) => "handshake",
            Self::Exchange(_) => "exchange",
            Self::Build(_) => "request",
            Self::Timeout(_) => "timeout",
        }
    }
}

/// A request: a method, a path below the target's base, a JSON body.
pub struct Req {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
}

impl Req {
    pub fn get(path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn post(path: String, body: &serde_json::Value) -> Self {
        Self::with_body(Method::POST, path, body)
    }

    pub fn put(path: String, body: &serde_json::Value) -> Self {
        Self::with_body(Method::PUT, path, body)
    }

    fn with_body(method: Method, path: String, body: &serde_json::Value) -> Self {
        Self {
            method,
            path,
            body: Some(body.to_string().into_bytes()),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bearer(self, key: &str) -> Self {
        self.header(AUTHORIZATION.as_str(), format!("Bearer {key}"))
    }
}

/// An answer, read whole, and how long it took from sending to the last
/// byte.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Reply {
    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "unexpected {} answer ({e}): {}",
                self.status,
                self.excerpt()
            )
        })
    }

    /// The problem document's `code` and `available`, when the body is one.
    pub fn problem(&self) -> Option<ProblemHead> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The start of the body, for messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut shown: String = text.chars().take(300).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        shown
    }

    /// `STATUS code` (the problem's code when there is one), for messages
    /// and tallies.
    pub fn describe(&self) -> String {
        match self.problem() {
            Some(problem) => format!("{} {}", self.status.as_u16(), problem.code),
            None => self.status.as_u16().to_string(),
        }
    }
}

/// The part of an RFC 9457 problem a load run reads.
#[derive(Debug, Deserialize)]
pub struct ProblemHead {
    pub code: String,
    /// On `insufficient_stock`: how many units were free.
    #[serde(default)]
    pub available: Option<u64>,
}

/// One keep-alive connection to the shop.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    target: Arc<Target>,
    timeout: Duration,
}

impl Conn {
    /// Connects (TCP, then HTTP/1.1) within `timeout`.
    pub async fn open(target: Arc<Target>, timeout: Duration) -> Result<Self, Transport> {
        let connect = async {
            // `[::1]` in a URL, `::1` to connect.
            let host = target.host.trim_start_matches('[').trim_end_matches(']');
            let stream = TcpStream::connect((host, target.port))
                .await
                .map_err(Transport::Connect)?;
            stream.set_nodelay(true).map_err(Transport::Connect)?;
            http1::handshake(TokioIo::new(stream))
                .await
                .map_err(Transport::Handshake)
        };
        let (sender, connection) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| Transport::Timeout(timeout))??;
        // Drives the connection; ends when it closes (an error then shows
        // on the next send).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            target,
            timeout,
        })
    }

    /// Whether the connection can no longer be used.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends `req` and reads the whole answer, within the timeout.
    pub async fn send(&mut self, req: Req) -> Result<Reply, Transport> {
        let mut builder = Request::builder()
            .method(req.method)
            .uri(format!("{}{}", self.target.base, req.path))
            .header(HOST, self.target.authority());
        if req.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body.unwrap_or_default())))
            .map_err(Transport::Build)?;
        let started = Instant::now();
        let exchange = async {
            self.sender.ready().await.map_err(Transport::Exchange)?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(Transport::Exchange)?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(Transport::Exchange)?
                .to_bytes();
            Ok::<_, Transport>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Transport::Timeout(self.timeout))??;
        Ok(Reply {
            status,
            body,
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, base: &str) -> Target {
        Target {
            host: host.to_owned(),
            port,
            base: base.to_owned(),
        }
    }

    #[test]
    fn base_urls() {
        let cases = [
            ("http://127.0.0.1:3100", Ok(target("127.0.0.1", 3100, ""))),
            ("http://127.0.0.1:3100/", Ok(target("127.0.0.1", 3100, ""))),
            (
                "http://localhost/shop/",
                Ok(target("localhost", 80, "/shop")),
            ),
            ("http://[::1]:8080/a/b", Ok(target("[::1]", 8080, "/a/b"))),
            ("http://[::1]", Ok(target("[::1]", 80, ""))),
            (
                "https://shop.example",
                Err("not an http:// URL: \"https://shop.example\"".to_owned()),
            ),
            (
                "http://h:99999",
                Err("not a port: \"99999\" in \"http://h:99999\"".to_owned()),
            ),
            (
                "http://:80",
                Err("no host (or credentials) in \"http://:80\"".to_owned()),
            ),
            (
                "http://u:p@h:80",
                Err("no host (or credentials) in \"http://u:p@h:80\"".to_owned()),
            ),
            (
                "http://h/?x=1",
                Err("a base URL has no query or fragment: \"http://h/?x=1\"".to_owned()),
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(Target::parse(url), expected, "{url}");
        }
        assert_eq!(target("h", 81, "").authority(), "h:81");
    }

    #[test]
    fn replies_describe_their_problem() {
        let reply = Reply {
            status: StatusCode::CONFLICT,
            body: Bytes::from_static(
                br#"{"type":"about:blank#insufficient_stock","code":"insufficient_stock","available":0}"#,
            ),
            elapsed: Duration::ZERO,
        };
        assert_eq!(reply.describe(), "409 insufficient_stock");
        assert_eq!(reply.problem().and_then(|p| p.available), Some(0));
        let plain = Reply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: Bytes::new(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(plain.describe(), "503");
        assert!(plain.json::<serde_json::Value>().is_err());
    }
}
