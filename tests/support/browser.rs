//! A browser on Movim's websocket, for the tests that log in through it: the session's trusted
//! handshake (public Origin and session cookie), masked text frames out, server frames in, and the
//! messages Movim's login page sends.

#![allow(dead_code)] // each test module uses a different part of this helper

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What comes next on an open websocket.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A frame from the server: opcode and payload.
    Frame(u8, Vec<u8>),
    /// The server closed the TCP connection.
    Eof,
    /// Nothing within the time given.
    Silence,
}

/// Reads the next unmasked server frame (small payloads only), waiting at most `patience`; `buf`
/// holds bytes already read (what followed the 101) and keeps what follows the frame.
pub fn next(stream: &mut TcpStream, buf: &mut Vec<u8>, patience: Duration) -> Next {
    let deadline = Instant::now() + patience;
    let mut chunk = [0u8; 4096];
    loop {
        if buf.len() >= 2 {
            let len = usize::from(buf[1] & 0x7f);
            assert!(len < 126, "unexpectedly long frame from the daemon");
            if buf.len() >= 2 + len {
                let frame = Next::Frame(buf[0] & 0x0f, buf[2..2 + len].to_vec());
                buf.drain(..2 + len);
                return frame;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Next::Silence;
        }
        stream
            .set_read_timeout(Some(left))
            .expect("the read timeout is set");
        match stream.read(&mut chunk) {
            Ok(0) => return Next::Eof,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Next::Silence;
            }
            Err(_) => return Next::Eof,
        }
    }
}

/// Sends a masked text frame (clients must mask, RFC 6455 §5.3).
pub fn send_text(stream: &mut TcpStream, payload: &str) {
    let mask: [u8; 4] = rand::random();
    let bytes = payload.as_bytes();
    let mut frame = vec![0x81u8];
    match bytes.len() {
        n if n < 126 => frame.push(0x80 | u8::try_from(n).expect("small")),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).expect("under 64 KiB").to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(bytes.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).expect("a text frame is sent");
}

/// A fresh `MOVIM_SESSION_ID`: 32 alphanumerics, as Movim's `generateKey(32)` makes them.
pub fn session_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..32)
        .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()]))
        .collect()
}

/// The next text frame as JSON, within `patience`; panics on anything else.
pub fn next_json(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    patience: Duration,
) -> serde_json::Value {
    match next(stream, buf, patience) {
        Next::Frame(0x1, payload) => serde_json::from_slice(&payload)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&payload))),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The trusted browser connection of session `sid` to `/ws/` at `addr`, as the page on `host`
/// opens it (`Origin: https://host`, the session cookie): the stream and what followed the 101,
/// or why there was no 101.
pub fn try_browser_at(
    addr: SocketAddr,
    host: &str,
    sid: &str,
) -> Result<(TcpStream, Vec<u8>), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /ws/ HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: https://{host}\r\nCookie: MOVIM_SESSION_ID={sid}\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection ended during the handshake".to_owned());
        }
        got.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        return Err(head);
    }
    Ok((stream, got[end + 4..].to_vec()))
}

/// The login as the page sends it (`Login_ajaxLogin`): `p` is [FORM, TZ] until v0.32.1, [FORM,
/// SID, TZ] from v0.33; the stand-in reads only the username (`jid`).
pub fn login_message(sid: &str, jid: &str) -> String {
    serde_json::json!({
        "func": "message",
        "b": {"w": "Login", "f": "ajaxLogin", "p": [
            {"username": {"value": jid}, "password": {"value": "x"}},
            sid,
            "UTC"
        ]}
    })
    .to_string()
}
