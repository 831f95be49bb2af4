//! Proves Movim answers the way a browser would: a real RFC 6455 handshake to `/ws/` (with the
//! Origin the daemon checks) and `GET /infos`. Both speak raw HTTP over a `TcpStream` on purpose: an
//! HTTP client library would hide the exact status and headers a self-hoster needs to see, and the
//! probe must be able to aim at one container's address while presenting the public `Host`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::future::BoxFuture;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// The GUID every RFC 6455 server appends to the client's key before hashing (RFC 6455 §1.3).
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Responses are for diagnosis, not content: stop reading past this.
const MAX_RESPONSE: usize = 256 * 1024;

/// How long a refused handshake's body may take to arrive.
const REFUSAL_BODY_WAIT: Duration = Duration::from_secs(2);

/// How many body bytes an error message quotes.
const QUOTED_BODY: usize = 200;

/// How long the probe listens after a 101. Real Movim (Ratchet) upgrades every Origin, then its
/// `onOpen` closes an untrusted one at once: an upgrade proves the Origin trusted only once this
/// moment has passed with the websocket still open.
pub const OPEN_WATCH: Duration = Duration::from_millis(1200);

/// What the daemon did with the websocket in the moment after the 101.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterOpen {
    /// Still open when the probe closed it (real Movim stays silent on a trusted websocket).
    #[default]
    Stayed,
    /// The daemon closed it at once (with its close frame's code when it sent one): how Movim
    /// refuses an Origin it does not trust.
    Closed { code: Option<u16> },
}

/// What the server said to a websocket upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub status: u16,
    /// `Sec-WebSocket-Accept` was present and matched our key.
    pub accept_valid: bool,
    /// The response body when the server refused (nginx's error page, the daemon's message); empty
    /// on a 101.
    pub body: String,
    /// After a valid 101: whether the daemon kept the websocket open.
    pub after_open: AfterOpen,
}

impl Handshake {
    /// The daemon accepted the websocket: `101` with the accept hash it can only compute from our
    /// key, and it kept the websocket open (it trusts the Origin).
    #[must_use]
    pub fn is_upgraded(&self) -> bool {
        self.status == 101 && self.accept_valid && self.after_open == AfterOpen::Stayed
    }

    /// A valid 101 that the daemon closed at once: it refused the Origin.
    #[must_use]
    pub fn origin_refused(&self) -> bool {
        self.status == 101 && self.accept_valid && self.after_open != AfterOpen::Stayed
    }

    /// One line for a report: the status and what it means, including a 101 whose accept hash is
    /// wrong (something answered that is not a websocket server speaking for our key).
    #[must_use]
    pub fn describe(&self) -> String {
        if self.status == 101 && !self.accept_valid {
            return "HTTP 101 but with a wrong Sec-WebSocket-Accept: whatever answered is not a conforming websocket server".to_owned();
        }
        if let AfterOpen::Closed { code } = self.after_open {
            let code = code.map_or_else(
                || "without a close frame".to_owned(),
                |c| format!("code {c}"),
            );
            return format!(
                "HTTP 101, then the daemon closed the websocket at once ({code}): it does not \
                 trust the Origin, because the host in DAEMON_URL differs from the public host the \
                 browser uses"
            );
        }
        format!("HTTP {}: {}", self.status, Self::explain(self.status))
    }

    /// What this status means for someone hosting Movim, with where to look.
    #[must_use]
    pub fn explain(status: u16) -> &'static str {
        match status {
            101 => "the daemon accepted the websocket",
            426 => {
                "the request reached the daemon without its Upgrade headers: the reverse proxy in \
                 front drops `Upgrade`/`Connection` (proxy_set_header Upgrade $http_upgrade; \
                 proxy_set_header Connection \"upgrade\" in nginx)"
            }
            502 => {
                "nginx could not reach the daemon: it is down, or DAEMON_INTERFACE is not 0.0.0.0 \
                 (see the daemon's logs)"
            }
            403 => {
                "the proxy in front of the daemon refused the request (Movim itself answers 101 to \
                 every Origin and closes an untrusted one)"
            }
            404 => "the proxy has no `/ws/` location forwarding to the daemon",
            504 => {
                "the proxy timed out reaching the daemon: it is down or its address changed since \
                 web started (restart web after recreating the daemon)"
            }
            _ => "unexpected answer to a websocket handshake",
        }
    }
}

/// Whether `host` resolves (to at least one address) within `timeout`.
pub async fn resolves(host: &str, port: u16, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => addrs.next().is_some(),
        _ => false,
    }
}

/// Why an HTTPS request failed: the client could not be set up, or the request (its error chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    Client(String),
    Request(Vec<String>),
}

/// `GET https://<host>/infos` the way a browser would validate it (chain, name, dates), at `via`
/// instead of where the name resolves when given, trusting `ca_pem` besides the system roots: the
/// HTTP status.
pub async fn https_status(
    host: &str,
    via: Option<std::net::IpAddr>,
    ca_pem: Option<&[u8]>,
) -> Result<u16, TlsFailure> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(8))
        .user_agent(concat!("movim-setup/", env!("CARGO_PKG_VERSION")));
    if let Some(ip) = via {
        builder = builder.resolve(host, SocketAddr::new(ip, 443));
    }
    if let Some(pem) = ca_pem
        && let Ok(certs) = reqwest::Certificate::from_pem_bundle(pem)
    {
        builder = builder.tls_certs_merge(certs);
    }
    let client = builder
        .build()
        .map_err(|e| TlsFailure::Client(e.to_string()))?;
    match client.get(format!("https://{host}/infos")).send().await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => {
            let mut chain = vec![e.to_string()];
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                chain.push(s.to_string());
                src = s.source();
            }
            Err(TlsFailure::Request(chain))
        }
    }
}

/// What this tool asks of Movim through web: the websocket handshake a browser makes, and
/// `/infos`. [`Http`] is the real one; tests drive the same code with a fake.
pub trait WebProbe: Send + Sync {
    /// [`websocket_handshake`].
    fn handshake<'a>(
        &'a self,
        addr: SocketAddr,
        host: &'a str,
        origin: &'a str,
        path: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<Handshake>>;

    /// [`infos`].
    fn infos<'a>(
        &'a self,
        addr: SocketAddr,
        host: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<Infos>>;

    /// [`resolves`], on port 443.
    fn resolves<'a>(&'a self, host: &'a str, timeout: Duration) -> BoxFuture<'a, bool>;

    /// [`https_status`].
    fn https_status<'a>(
        &'a self,
        host: &'a str,
        via: Option<std::net::IpAddr>,
        ca_pem: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<u16, TlsFailure>>;
}

/// Plain TCP to web, as a browser would reach it.
pub struct Http;

impl WebProbe for Http {
    fn handshake<'a>(
        &'a self,
        addr: SocketAddr,
        host: &'a str,
        origin: &'a str,
        path: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<Handshake>> {
        Box::pin(websocket_handshake(addr, host, origin, path, timeout))
    }

    fn infos<'a>(
        &'a self,
        addr: SocketAddr,
        host: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, anyhow::Result<Infos>> {
        Box::pin(infos(addr, host, timeout))
    }

    fn resolves<'a>(&'a self, host: &'a str, timeout: Duration) -> BoxFuture<'a, bool> {
        Box::pin(resolves(host, 443, timeout))
    }

    fn https_status<'a>(
        &'a self,
        host: &'a str,
        via: Option<std::net::IpAddr>,
        ca_pem: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<u16, TlsFailure>> {
        Box::pin(https_status(host, via, ca_pem))
    }
}

/// Performs a client handshake to `path` at `addr`, presenting `host` and `origin` as a browser on
/// the public site would, then closes politely. Only transport failures are errors; any HTTP answer
/// comes back as a [`Handshake`] for the caller to judge.
///
/// # Errors
/// Connection refused, timeout, or a response that is not HTTP.
pub async fn websocket_handshake(
    addr: SocketAddr,
    host: &str,
    origin: &str,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<Handshake> {
    let deadline = Instant::now() + timeout;
    let key = BASE64.encode(rand::random::<[u8; 16]>());
    let request = format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Origin: {origin}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         User-Agent: movim-setup\r\n\
         \r\n"
    );
    let what = || format!("websocket handshake to http://{addr}{path} (Host: {host})");

    let mut stream = connect(addr, deadline).await.with_context(what)?;
    within(deadline, stream.write_all(request.as_bytes()))
        .await
        .with_context(what)?;
    let (head, rest) = read_head(&mut stream, deadline).await.with_context(what)?;

    let accept_valid = head
        .header("sec-websocket-accept")
        .is_some_and(|v| v == accept_for(&key));

    if head.status == 101 {
        let after_open = if accept_valid {
            watch_open(&mut stream, rest, deadline.min(Instant::now() + OPEN_WATCH)).await
        } else {
            AfterOpen::Stayed
        };
        // We never speak websocket beyond the handshake: a masked close (code 1000, RFC 6455 §5.5.1)
        // lets the daemon release the connection instead of timing it out. Errors don't matter here.
        let _ = within(deadline, stream.write_all(&close_frame())).await;
        return Ok(Handshake {
            status: 101,
            accept_valid,
            body: String::new(),
            after_open,
        });
    }
    // A refusal's body often says why (nginx error page, the daemon's reason), but a late or
    // unframed one must neither turn a clear status into an error nor hold the caller for the whole
    // timeout: give it a moment and keep what arrived.
    let mut raw = rest;
    let body_deadline = deadline.min(Instant::now() + REFUSAL_BODY_WAIT);
    let _ = read_body(&mut stream, &head, &mut raw, body_deadline).await;
    let body = decode_body(&head, raw);
    Ok(Handshake {
        status: head.status,
        accept_valid,
        body: String::from_utf8_lossy(&body).into_owned(),
        after_open: AfterOpen::Stayed,
    })
}

/// Listens on an upgraded websocket until `until`: a close frame or the end of the connection is
/// the daemon refusing it; silence, or any other frame, is a websocket kept open.
async fn watch_open<R: AsyncRead + Unpin>(
    stream: &mut R,
    mut buf: Vec<u8>,
    until: Instant,
) -> AfterOpen {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(&first) = buf.first() {
            if first & 0x0f != 0x8 {
                return AfterOpen::Stayed;
            }
            // A server's close frame is unmasked; its payload starts with the 2-byte code.
            if buf.len() >= 4 || buf.get(1).is_some_and(|len| len & 0x7f < 2) {
                let code = (buf.len() >= 4 && buf[1] & 0x7f >= 2)
                    .then(|| u16::from_be_bytes([buf[2], buf[3]]));
                return AfterOpen::Closed { code };
            }
        }
        match timeout_at(until, stream.read(&mut chunk)).await {
            Err(_) => return AfterOpen::Stayed,
            Ok(Ok(0) | Err(_)) => return AfterOpen::Closed { code: None },
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What `GET /infos` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Infos {
    /// The Movim version the running code reports (compare with the lock file).
    pub version: String,
    /// The whole document (daemon counters and the rest), for doctor's `--json`.
    pub raw: serde_json::Value,
}

/// `GET /infos` at `addr`, presenting `host`. HTTP/1.0 so that the server closes after one plain
/// (unchunked) response and we can read to EOF.
///
/// # Errors
/// Transport failures, a status other than 200 (quoted with the start of the body), or a body that
/// is not JSON with a string `version`.
pub async fn infos(addr: SocketAddr, host: &str, timeout: Duration) -> anyhow::Result<Infos> {
    let deadline = Instant::now() + timeout;
    let what = || format!("GET http://{addr}/infos (Host: {host})");
    let request = format!(
        "GET /infos HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\
         User-Agent: movim-setup\r\nConnection: close\r\n\r\n"
    );
    let mut stream = connect(addr, deadline).await.with_context(what)?;
    within(deadline, stream.write_all(request.as_bytes()))
        .await
        .with_context(what)?;
    let (head, rest) = read_head(&mut stream, deadline).await.with_context(what)?;
    let mut raw = rest;
    read_body(&mut stream, &head, &mut raw, deadline)
        .await
        .with_context(what)?;
    let body = decode_body(&head, raw);

    if head.status != 200 {
        let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]).into_owned();
        bail!("{} answered {}: {}", what(), head.status, quoted.trim());
    }
    let raw: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("{} did not return JSON", what()))?;
    let version = raw
        .get("version")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| anyhow!("{} returned JSON without a string `version`", what()))?
        .to_owned();
    Ok(Infos { version, raw })
}

/// `base64(sha1(key + GUID))`, the value a server must echo in `Sec-WebSocket-Accept`.
fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// A client close frame: FIN + opcode 8, masked (clients must mask, RFC 6455 §5.3), payload = 1000.
fn close_frame() -> [u8; 8] {
    let mask: [u8; 4] = rand::random();
    let code = 1000u16.to_be_bytes();
    [
        0x88,
        0x80 | 2,
        mask[0],
        mask[1],
        mask[2],
        mask[3],
        code[0] ^ mask[0],
        code[1] ^ mask[1],
    ]
}

async fn within<T, E>(
    deadline: Instant,
    fut: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match timeout_at(deadline, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => bail!("timed out"),
    }
}

async fn connect(addr: SocketAddr, deadline: Instant) -> anyhow::Result<TcpStream> {
    match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            bail!("connection to {addr} refused: nothing listens there (is the container running?)")
        }
        Ok(Err(e)) => Err(anyhow!(e).context(format!("cannot connect to {addr}"))),
        Err(_) => bail!("connecting to {addr} timed out"),
    }
}

/// The status line and headers of a response.
#[derive(Debug)]
struct Head {
    status: u16,
    /// Names lower-cased, values trimmed.
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .map(|n| n.min(MAX_RESPONSE))
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// Reads up to the blank line; returns the parsed head and whatever body bytes came with it.
async fn read_head<R: AsyncRead + Unpin>(
    stream: &mut R,
    deadline: Instant,
) -> anyhow::Result<(Head, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = parse_head(&buf[..end])?;
            return Ok((head, buf[end + 4..].to_vec()));
        }
        if buf.len() > MAX_RESPONSE {
            bail!("response headers longer than {MAX_RESPONSE} bytes");
        }
        let n = within(deadline, stream.read(&mut chunk))
            .await
            .context("waiting for the response")?;
        if n == 0 {
            if buf.is_empty() {
                bail!("the server closed the connection without answering");
            }
            bail!("the server closed the connection in the middle of the response headers");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_head(bytes: &[u8]) -> anyhow::Result<Head> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        bail!("not an HTTP response: {status_line:?}");
    };
    if !version.starts_with("HTTP/") {
        bail!("not an HTTP response: {status_line:?}");
    }
    let status = code
        .parse::<u16>()
        .with_context(|| format!("bad status in {status_line:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(Head { status, headers })
}

/// Reads the raw body into `raw` until the head's framing says it is complete (`Content-Length`,
/// the last chunk) or the server closes. On an error, `raw` keeps what arrived.
async fn read_body<R: AsyncRead + Unpin>(
    stream: &mut R,
    head: &Head,
    raw: &mut Vec<u8>,
    deadline: Instant,
) -> anyhow::Result<()> {
    let length = head.content_length();
    let chunked = head.is_chunked();
    let mut chunk = [0u8; 4096];
    loop {
        let complete = length.is_some_and(|n| raw.len() >= n)
            || (chunked && dechunk(raw).is_some())
            || raw.len() >= MAX_RESPONSE;
        if complete {
            return Ok(());
        }
        let n = within(deadline, stream.read(&mut chunk))
            .await
            .context("reading the response body")?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&chunk[..n]);
    }
}

/// The body without its framing, as much of it as arrived.
fn decode_body(head: &Head, mut raw: Vec<u8>) -> Vec<u8> {
    if head.is_chunked() {
        return dechunk(&raw).unwrap_or_else(|| dechunk_partial(&raw));
    }
    if let Some(n) = head.content_length() {
        raw.truncate(n);
    }
    raw
}

/// The decoded body once the terminating zero-size chunk has arrived, `None` before.
fn dechunk(raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut rest = raw;
    loop {
        let line_end = find(rest, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let size = usize::from_str_radix(&size_text, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        // A size near usize::MAX must not overflow: such a chunk never fits what arrived.
        let end = size.checked_add(2)?;
        if rest.len() < end {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[end..];
    }
}

/// Whatever complete chunks arrived before the connection closed.
fn dechunk_partial(raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut rest = raw;
    while let Some(line_end) = find(rest, b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let Ok(size) =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
        else {
            break;
        };
        rest = &rest[line_end + 2..];
        let take = size.min(rest.len());
        body.extend_from_slice(&rest[..take]);
        match size.checked_add(2) {
            Some(end) if size != 0 && rest.len() >= end => rest = &rest[end..],
            _ => break,
        }
    }
    body
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    const SECOND: Duration = Duration::from_secs(5);

    /// How the test server answers a request, given the request's `Sec-WebSocket-Key`.
    #[derive(Clone, Copy)]
    enum Answer {
        Upgrade,
        /// Ratchet's answer to an untrusted Origin: 101, then a close frame (1000), then EOF.
        UpgradeThenClose,
        WrongAccept,
        UpgradeRequired,
        Infos,
        InfosChunked,
        NotFound,
        NotJson,
    }

    /// A one-connection HTTP server on 127.0.0.1:0; returns its address and, when it finishes, the
    /// request it received and the bytes the client sent after the headers.
    async fn serve(answer: Answer) -> (SocketAddr, tokio::task::JoinHandle<(String, Vec<u8>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let head = read_request(&mut sock).await;
            // The request's headers, reconstructed for assertions.
            let request = head_text(&head);
            let key = head
                .header("sec-websocket-key")
                .unwrap_or_default()
                .to_owned();
            let response = match answer {
                Answer::Upgrade => format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    accept_for(&key)
                ),
                Answer::UpgradeThenClose => format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nX-Powered-By: Ratchet/1.0.3\r\n\
                     Sec-WebSocket-Accept: {}\r\n\r\n",
                    accept_for(&key)
                ),
                Answer::WrongAccept => "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
                    .to_owned(),
                Answer::UpgradeRequired => "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 16\r\n\
                     Connection: keep-alive\r\n\r\nUpgrade Required"
                    .to_owned(),
                Answer::Infos => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n\
                     {\"version\":\"0.29.2\",\"population\":3}"
                    .to_owned(),
                Answer::InfosChunked => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     b\r\n{\"version\":\r\n9\r\n\"0.30.1\"}\r\n0\r\n\r\n"
                    .to_owned(),
                Answer::NotFound => {
                    "HTTP/1.1 404 Not Found\r\n\r\n<html>no such page</html>".to_owned()
                }
                Answer::NotJson => "HTTP/1.0 200 OK\r\n\r\n<html>php error</html>".to_owned(),
            };
            sock.write_all(response.as_bytes()).await.unwrap();
            if matches!(answer, Answer::UpgradeThenClose) {
                // Movim's `onOpen` for an untrusted Origin: a close frame, code 1000.
                sock.write_all(&[0x88, 0x02, 0x03, 0xe8]).await.unwrap();
            }
            // Responses without a length end when the server closes its side, as HTTP/1.0 servers
            // do; the 426 keeps the connection open like a keep-alive server, to prove the client
            // stops at Content-Length instead of waiting for EOF.
            if matches!(
                answer,
                Answer::Infos | Answer::NotFound | Answer::NotJson | Answer::UpgradeThenClose
            ) {
                sock.shutdown().await.unwrap();
            }
            // Collect what the client sends afterwards (the close frame) until it hangs up.
            let mut after = Vec::new();
            let _ = tokio::time::timeout(SECOND, sock.read_to_end(&mut after)).await;
            (request, after)
        });
        (addr, task)
    }

    /// Reads a request's head; the status field of the result is unused.
    async fn read_request(sock: &mut tokio::net::TcpStream) -> Head {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(sock.read(&mut byte).await.unwrap(), 1, "request cut short");
            buf.push(byte[0]);
        }
        let text = String::from_utf8(buf).unwrap();
        let headers = text
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Head { status: 0, headers }
    }

    fn head_text(head: &Head) -> String {
        head.headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect()
    }

    /// For responses without a length the server must close; this variant closes right after
    /// writing, as an HTTP/1.0 server does.
    async fn serve_and_close(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            read_request(&mut sock).await;
            sock.write_all(response.as_bytes()).await.unwrap();
        });
        addr
    }

    #[test]
    fn accept_matches_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn close_frame_is_masked_code_1000() {
        let f = close_frame();
        assert_eq!(f[0], 0x88);
        assert_eq!(f[1], 0x82);
        assert_eq!([f[6] ^ f[2], f[7] ^ f[3]], [0x03, 0xe8]);
    }

    #[tokio::test]
    async fn a_correct_101_is_an_upgrade_and_the_client_closes() {
        let (addr, server) = serve(Answer::Upgrade).await;
        let hs = websocket_handshake(addr, "movim.test", "https://movim.test", "/ws/", SECOND)
            .await
            .unwrap();
        assert_eq!(
            hs,
            Handshake {
                status: 101,
                accept_valid: true,
                body: String::new(),
                after_open: AfterOpen::Stayed,
            }
        );
        assert!(hs.is_upgraded() && !hs.origin_refused());
        let (request, after) = server.await.unwrap();
        for header in [
            "host: movim.test",
            "origin: https://movim.test",
            "upgrade: websocket",
            "connection: Upgrade",
            "sec-websocket-version: 13",
        ] {
            assert!(request.contains(header), "{header} missing from\n{request}");
        }
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("sec-websocket-key: "))
            .unwrap();
        assert_eq!(BASE64.decode(key).unwrap().len(), 16);
        assert_eq!(after.len(), 8, "a masked close frame, then EOF");
        assert_eq!(after[0], 0x88);
    }

    #[tokio::test]
    async fn a_101_closed_at_once_is_a_refused_origin_naming_daemon_url() {
        let (addr, _server) = serve(Answer::UpgradeThenClose).await;
        let hs = websocket_handshake(addr, "movim.test", "https://movim.test", "/ws/", SECOND)
            .await
            .unwrap();
        assert_eq!(hs.after_open, AfterOpen::Closed { code: Some(1000) });
        assert!(!hs.is_upgraded() && hs.origin_refused());
        assert!(hs.describe().contains("DAEMON_URL"), "{}", hs.describe());
    }

    #[tokio::test]
    async fn a_101_with_the_wrong_accept_is_not_an_upgrade() {
        let (addr, _server) = serve(Answer::WrongAccept).await;
        let hs = websocket_handshake(addr, "movim.test", "https://movim.test", "/ws/", SECOND)
            .await
            .unwrap();
        assert_eq!(hs.status, 101);
        assert!(!hs.accept_valid);
        assert!(!hs.is_upgraded());
    }

    #[tokio::test]
    async fn a_426_comes_back_with_its_body_and_meaning() {
        let (addr, _server) = serve(Answer::UpgradeRequired).await;
        let hs = websocket_handshake(addr, "movim.test", "https://movim.test", "/ws/", SECOND)
            .await
            .unwrap();
        assert_eq!(hs.status, 426);
        assert!(!hs.is_upgraded());
        assert_eq!(hs.body, "Upgrade Required");
        assert!(Handshake::explain(426).contains("Upgrade headers"));
        assert!(Handshake::explain(502).contains("DAEMON_INTERFACE"));
        assert!(Handshake::explain(403).contains("proxy"));
        assert!(Handshake::explain(404).contains("/ws/"));
    }

    #[tokio::test]
    async fn an_unframed_refusal_keeps_its_body_without_waiting_for_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            read_request(&mut sock).await;
            sock.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n<h1>502 Bad Gateway</h1>")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let started = Instant::now();
        let hs = websocket_handshake(
            addr,
            "movim.test",
            "https://movim.test",
            "/ws/",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(hs.status, 502);
        assert_eq!(hs.body, "<h1>502 Bad Gateway</h1>");
    }

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = websocket_handshake(addr, "movim.test", "https://movim.test", "/ws/", SECOND)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("refused"), "{err:#}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(SECOND).await;
            drop(sock);
        });
        let err = infos(addr, "movim.test", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("timed out"), "{err:#}");
    }

    #[tokio::test]
    async fn infos_reads_the_version() {
        let (addr, server) = serve(Answer::Infos).await;
        let got = infos(addr, "movim.test", SECOND).await;
        let got = got.unwrap();
        assert_eq!(got.version, "0.29.2");
        assert_eq!(got.raw["population"], 3);
        let (request, _) = server.await.unwrap();
        assert!(request.contains("host: movim.test"));
    }

    #[tokio::test]
    async fn infos_understands_chunked_bodies() {
        let addr = serve_and_close(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             b\r\n{\"version\":\r\n9\r\n\"0.30.1\"}\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(
            infos(addr, "movim.test", SECOND).await.unwrap().version,
            "0.30.1"
        );
        let (addr, _server) = serve(Answer::InfosChunked).await;
        assert_eq!(
            infos(addr, "movim.test", SECOND).await.unwrap().version,
            "0.30.1"
        );
    }

    #[test]
    fn a_chunk_size_near_the_maximum_is_an_incomplete_body_not_a_panic() {
        let raw = b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n";
        assert_eq!(dechunk(raw), None);
        // What arrived after the size line, as far as it goes.
        assert_eq!(dechunk_partial(raw), b"abc\r\n0\r\n\r\n");
    }

    #[tokio::test]
    async fn infos_errors_quote_the_status_and_body() {
        let (addr, _server) = serve(Answer::NotFound).await;
        let err = format!("{:#}", infos(addr, "movim.test", SECOND).await.unwrap_err());
        assert!(err.contains("404") && err.contains("no such page"), "{err}");

        let (addr, _server) = serve(Answer::NotJson).await;
        let err = format!("{:#}", infos(addr, "movim.test", SECOND).await.unwrap_err());
        assert!(err.contains("did not return JSON"), "{err}");

        let addr = serve_and_close("HTTP/1.0 200 OK\r\n\r\n{\"population\":1}").await;
        let err = format!("{:#}", infos(addr, "movim.test", SECOND).await.unwrap_err());
        assert!(err.contains("without a string `version`"), "{err}");
    }
}
