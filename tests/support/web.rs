//! What a browser would see of a deployment on its loopback port, asked by the tests themselves
//! (never through the tool under test): the websocket as Movim answers it (101 to every Origin,
//! then a close at once for one it does not trust) and the release `/infos` reports.

#![allow(dead_code)] // each test module uses a different part of this helper

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How a websocket handshake through web ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ws {
    /// The status line (`HTTP/1.1 101 Switching Protocols`), or why there was none.
    pub status: String,
    /// After a 101: the daemon closed the websocket within a second and a half (a close frame or
    /// the end of the connection), as Movim does to an Origin it does not trust.
    pub closed_at_once: bool,
}

impl Ws {
    /// The daemon accepted the websocket and kept it: the Origin is trusted.
    pub fn trusted(&self) -> bool {
        self.status.contains(" 101 ") && !self.closed_at_once
    }

    /// The daemon upgraded, then closed at once: the Origin is refused.
    pub fn refused_after_upgrade(&self) -> bool {
        self.status.contains(" 101 ") && self.closed_at_once
    }
}

/// A handshake to `127.0.0.1:port/ws/` with `Host: movim.test` and `origin`, checking the
/// RFC 6455 accept value, then a moment's listening for the daemon's close.
pub fn try_handshake(port: u16, origin: &str) -> std::io::Result<Ws> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET /ws/ HTTP/1.1\r\nHost: movim.test\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let mut closed_at_once = false;
    if status.contains(" 101 ") {
        assert!(
            text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "accept header wrong: {text}"
        );
        s.set_read_timeout(Some(Duration::from_millis(1500)))?;
        let mut frame = [0u8; 64];
        let started = Instant::now();
        closed_at_once = match s.read(&mut frame) {
            Ok(0) => true,
            Ok(_) => frame[0] & 0x0f == 0x8,
            Err(e) => {
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) && started.elapsed() < Duration::from_millis(1500)
            }
        };
    }
    Ok(Ws {
        status,
        closed_at_once,
    })
}

/// [`try_handshake`], which must reach web.
pub fn handshake(port: u16, origin: &str) -> Ws {
    try_handshake(port, origin).expect("websocket handshake through web")
}

/// The `version` `/infos` reports through web, `None` while web cannot answer it.
pub fn infos_version(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET /infos HTTP/1.0\r\nHost: movim.test\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split("\r\n\r\n").nth(1)?;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["version"].as_str().map(str::to_owned)
}
