//! The load generator's HTTP/1.1 client: one keep-alive connection, one request at a time, the
//! request written in one piece and the answer read just far enough to know its status.
//!
//! On two cores the load generator shares the CPU with the server it measures and with
//! Postgres. A general client (reqwest) plus building each body as a JSON document cost about as
//! much CPU per request as the service itself, which the measured server then did not get. This
//! costs a few microseconds: the body is a template with the delivery id spliced in, signed
//! once per request (every body is still unique and signed).

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The sample body split around its delivery id.
#[derive(Clone)]
pub struct Template {
    head: Vec<u8>,
    tail: Vec<u8>,
}

const MARK: &str = "@@DELIVERY@@";

impl Template {
    pub fn new() -> Self {
        let body = crate::sample_body(MARK);
        let at = body
            .windows(MARK.len())
            .position(|w| w == MARK.as_bytes())
            .expect("the sample body holds its delivery id");
        Template {
            head: body[..at].to_vec(),
            tail: body[at + MARK.len()..].to_vec(),
        }
    }

    /// The body for `delivery` (plain ASCII, so the JSON stays valid).
    pub fn body(&self, delivery: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(delivery.as_bytes());
        out.extend_from_slice(&self.tail);
    }
}

pub struct Conn {
    addr: String,
    host: String,
    path: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    read: Vec<u8>,
}

impl Conn {
    /// `base` is `http://host:port`.
    pub fn new(base: &str, path: &str) -> Self {
        let host = base.trim_start_matches("http://").to_string();
        Conn {
            addr: host.clone(),
            host,
            path: path.to_string(),
            stream: None,
            request: Vec::with_capacity(4096),
            read: Vec::with_capacity(1024),
        }
    }

    /// POSTs a signed GitHub delivery; returns the status, or an error after which the next
    /// call reconnects.
    pub async fn post(&mut self, delivery: &str, signature: &str, body: &[u8]) -> io::Result<u16> {
        self.request.clear();
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             x-github-event: issues\r\nx-github-delivery: {delivery}\r\n\
             x-hub-signature-256: {signature}\r\ncontent-length: {}\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        self.request.extend_from_slice(head.as_bytes());
        self.request.extend_from_slice(body);
        let result = self.exchange().await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self) -> io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.read.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(&self.request).await?;
        let end = loop {
            if let Some(at) = find(&self.read, b"\r\n\r\n") {
                break at + 4;
            }
            fill(stream, &mut self.read).await?;
        };
        let head = std::str::from_utf8(&self.read[..end])
            .map_err(|_| io::Error::other("answer head is not UTF-8"))?
            .to_ascii_lowercase();
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other("no status line"))?;
        let length = head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        if let Some(n) = length {
            while self.read.len() < end + n {
                fill(stream, &mut self.read).await?;
            }
            self.read.drain(..end + n);
        } else if head.contains("transfer-encoding: chunked") {
            loop {
                if let Some(at) = find(&self.read[end..], b"0\r\n\r\n") {
                    self.read.drain(..end + at + 5);
                    break;
                }
                fill(stream, &mut self.read).await?;
            }
        } else {
            self.read.drain(..end);
        }
        if head.contains("connection: close") {
            self.stream = None;
        }
        Ok(status)
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
