//! The hot path's connection: HTTP/1.1 keep-alive straight on a TCP socket.
//! A request is bytes rendered beforehand (shared when it never varies), so
//! sending is one write; the answer is read into a buffer that lives as long
//! as the connection and parsed in place (httparse, the parser hyper itself
//! uses), with Content-Length, chunked and read-to-close bodies. No
//! per-request task, channel or header map: this is what lets one core keep
//! up with wrk.

use super::outcome::{Answer, ErrClass, Outcome, classify};
use bytes::{Buf, Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Larger response heads are refused (a misbehaving server, not an answer).
const MAX_HEAD: usize = 64 * 1024;
/// Larger bodies are refused rather than held in memory (a transport
/// error): what a virtual user's connection can hold, so that a server whose
/// body never ends costs each connection at most this much.
pub const MAX_BODY: usize = 1024 * 1024;
/// A connection's buffer above this size is given back when it closes
/// (after a large answer), not kept for the connection's next life.
const KEEP_BUFFER: usize = 64 * 1024;
/// Headers parsed per answer; more is a transport error.
const MAX_HEADERS: usize = 96;

/// How the body of an answer is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    /// Until the server closes the connection (HTTP/1.0 style).
    Close,
}

/// What the head of an answer says, copied out of the buffer.
#[derive(Debug)]
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    close: bool,
    headers: Option<hyper::HeaderMap>,
}

/// Parses an answer's head from `buf`: None while incomplete.
fn parse_head(buf: &[u8], head_request: bool, keep: bool) -> Result<Option<Head>, ErrClass> {
    // Uninitialised slots: nothing to zero per answer on the hot path.
    let mut hs = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut r, buf, &mut hs)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(ErrClass::Transport),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrClass::Transport),
    };
    let status = r.code.unwrap_or(0);
    let mut length: Option<usize> = None;
    let mut bad_length = false;
    let mut encoded = false;
    let mut chunked = false;
    let (mut saw_close, mut saw_keep_alive) = (false, false);
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            // Digits only (RFC 9112 §6.2); copies must agree.
            let v = h.value.trim_ascii();
            let n = (!v.is_empty() && v.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
                .flatten();
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(l)) if n == l => {}
                _ => bad_length = true,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding of the last header decides (§6.3).
            encoded = true;
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let t = token.trim_ascii();
                saw_close |= t.eq_ignore_ascii_case(b"close");
                saw_keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let http10 = r.version == Some(0);
    // Once said, close is not taken back by a keep-alive beside it.
    let mut close = saw_close || (http10 && !saw_keep_alive);
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::None
    } else if encoded {
        // Transfer-Encoding wins over Content-Length (§6.3); an answer with
        // both, or with an encoding on HTTP/1.0, ends the connection (§6.1).
        close |= length.is_some() || bad_length || http10;
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else if bad_length {
        return Err(ErrClass::Transport);
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(ErrClass::Transport);
        }
        Framing::Length(n)
    } else {
        Framing::Close
    };
    let headers = keep.then(|| {
        let mut m = hyper::HeaderMap::with_capacity(r.headers.len());
        for h in r.headers.iter() {
            if let (Ok(k), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(h.name.as_bytes()),
                hyper::header::HeaderValue::from_bytes(h.value),
            ) {
                m.append(k, v);
            }
        }
        m
    });
    Ok(Some(Head {
        status,
        len,
        framing,
        close: close || framing == Framing::Close,
        headers,
    }))
}

/// A chunked body decoded as it arrives: every call takes what the buffer
/// holds and consumes it, so a body in many small chunks costs linear time
/// and the buffer stays small.
#[derive(Debug, Default)]
struct Chunked {
    body: Vec<u8>,
    /// The last (zero-size) chunk was seen; trailers follow.
    last: bool,
}

impl Chunked {
    /// Consumes complete chunks (and trailers) from `buf`; true when the
    /// body is complete.
    fn feed(&mut self, buf: &mut BytesMut) -> Result<bool, ErrClass> {
        while !self.last {
            let (line, size) = match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete(x)) => x,
                // A size line (with extensions) longer than a head is not an answer.
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                    return Err(ErrClass::Transport);
                }
                Ok(httparse::Status::Partial) => return Ok(false),
                Err(_) => return Err(ErrClass::Transport),
            };
            let size = usize::try_from(size).map_err(|_| ErrClass::Transport)?;
            if size > MAX_BODY - self.body.len() {
                return Err(ErrClass::Transport);
            }
            if size == 0 {
                buf.advance(line);
                self.last = true;
                break;
            }
            // size <= MAX_BODY: no overflow.
            let need = line + size + 2;
            if buf.len() < need {
                return Ok(false);
            }
            if &buf[line + size..need] != b"\r\n" {
                return Err(ErrClass::Transport);
            }
            self.body.extend_from_slice(&buf[line..line + size]);
            buf.advance(need);
        }
        // Trailer lines up to an empty one.
        loop {
            let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
                if buf.len() > MAX_HEAD {
                    return Err(ErrClass::Transport);
                }
                return Ok(false);
            };
            buf.advance(eol + 2);
            if eol == 0 {
                return Ok(true);
            }
        }
    }
}

/// How to speak TLS to an https:// target: the shared client settings
/// and the name the certificate must hold.
#[derive(Clone)]
pub struct Tls {
    pub connector: tokio_rustls::TlsConnector,
    pub name: rustls::pki_types::ServerName<'static>,
}

/// A connection's byte stream: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// One virtual user's connection, reopened after errors and closes.
pub struct Conn {
    addr: SocketAddr,
    tls: Option<Tls>,
    stream: Option<Stream>,
    buf: BytesMut,
    last_used: Instant,
}

impl Conn {
    pub fn new(addr: SocketAddr, tls: Option<Tls>) -> Conn {
        Conn {
            addr,
            tls,
            stream: None,
            buf: BytesMut::new(),
            last_used: Instant::now(),
        }
    }

    fn close(&mut self) {
        self.stream = None;
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::new();
        } else {
            self.buf.clear();
        }
    }

    /// Whether an idle kept-alive connection is still usable: a server
    /// that closed it (a keep-alive timeout) has sent FIN, which a
    /// non-blocking read sees. Back to back, the last answer would have said
    /// `Connection: close`, so the look is only taken after a pause.
    fn still_open(&mut self, now: Instant) -> bool {
        let Some(s) = self.stream.as_mut() else {
            return false;
        };
        if now.saturating_duration_since(self.last_used) < Duration::from_millis(200) {
            return true;
        }
        let mut probe = [0u8; 1];
        match s {
            Stream::Plain(s) => match s.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                // Closed, reset, or bytes nobody asked for: start afresh.
                _ => false,
            },
            // TLS bytes cannot be peeked at underneath rustls: one poll
            // without a waker tells an idle session (pending) from a
            // closed one (end of stream, close_notify, an error).
            Stream::Tls(t) => {
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let mut rb = tokio::io::ReadBuf::new(&mut probe);
                matches!(
                    tokio::io::AsyncRead::poll_read(std::pin::Pin::new(&mut **t), &mut cx, &mut rb),
                    std::task::Poll::Pending
                )
            }
        }
    }

    /// When the last request ended.
    pub fn finished(&self) -> Instant {
        self.last_used
    }

    async fn open(&mut self) -> Result<(), ErrClass> {
        self.close();
        let stream = TcpStream::connect(self.addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                ErrClass::Refused
            } else {
                ErrClass::Transport
            }
        })?;
        let _ = stream.set_nodelay(true);
        self.stream = Some(match &self.tls {
            None => Stream::Plain(stream),
            Some(t) => Stream::Tls(Box::new(
                t.connector
                    .connect(t.name.clone(), stream)
                    .await
                    .map_err(|_| ErrClass::Transport)?,
            )),
        });
        Ok(())
    }

    /// Reads more of the answer; Ok(false) when the server closed.
    async fn fill(&mut self) -> Result<bool, ErrClass> {
        let s = self.stream.as_mut().ok_or(ErrClass::Transport)?;
        // Start small and double: a trivial answer fits in 1 KB, and with
        // 10,000 virtual users a fixed 16 KB each was 160 MB of buffers.
        if self.buf.capacity() - self.buf.len() < 256 {
            self.buf.reserve(self.buf.len().max(1024));
        }
        let r = match s {
            Stream::Plain(s) => s.read_buf(&mut self.buf).await,
            Stream::Tls(t) => t.read_buf(&mut self.buf).await,
        };
        match r {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(_) => Err(ErrClass::Transport),
        }
    }

    /// Reads more of an answer that is not complete yet: the server closing
    /// now is a transport error.
    async fn fill_more(&mut self) -> Result<(), ErrClass> {
        if self.fill().await? {
            Ok(())
        } else {
            Err(ErrClass::Transport)
        }
    }

    async fn exchange(
        &mut self,
        req: &[u8],
        head_request: bool,
        keep: bool,
        now: Instant,
    ) -> Result<(Outcome, Option<Answer>), ErrClass> {
        if !self.still_open(now) {
            // Boxed: connecting (and a TLS handshake) is rare, and its state
            // inline would be carried by every virtual user's task.
            Box::pin(self.open()).await?;
        }
        if self.buf.capacity() > KEEP_BUFFER {
            // A large answer's buffer is not kept for the small ones after it.
            self.buf = BytesMut::new();
        }
        self.buf.clear();
        match self.stream.as_mut().ok_or(ErrClass::Transport)? {
            Stream::Plain(s) => s.write_all(req).await,
            // rustls holds written bytes until flushed.
            Stream::Tls(t) => match t.write_all(req).await {
                Ok(()) => t.flush().await,
                e => e,
            },
        }
        .map_err(|_| ErrClass::Transport)?;
        let head = loop {
            match parse_head(&self.buf, head_request, keep)? {
                // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                Some(h) if (100..200).contains(&h.status) && h.status != 101 => {
                    self.buf.advance(h.len);
                }
                Some(h) => break h,
                None => {
                    self.fill_more().await?;
                }
            }
        };
        self.buf.advance(head.len);
        let body = match head.framing {
            Framing::None => Bytes::new(),
            Framing::Length(n) => {
                while self.buf.len() < n {
                    self.fill_more().await?;
                }
                self.buf.split_to(n).freeze()
            }
            Framing::Chunked => {
                let mut dec = Chunked::default();
                while !dec.feed(&mut self.buf)? {
                    self.fill_more().await?;
                }
                Bytes::from(dec.body)
            }
            Framing::Close => {
                while self.fill().await? {
                    if self.buf.len() > MAX_BODY {
                        return Err(ErrClass::Transport);
                    }
                }
                self.buf.split().freeze()
            }
        };
        // Bytes beyond the answer were never asked for (no pipelining):
        // the connection is out of step, so it is not reused.
        if head.close || !self.buf.is_empty() || head.status == 101 {
            self.close();
        }
        let outcome = classify(head.status, &body);
        let answer = match (head.headers, outcome) {
            (Some(headers), Outcome::Ok(_)) => Some(Answer { headers, body }),
            // An error's body names its cause (the witness keeps a few).
            (h, Outcome::Err { .. }) if !body.is_empty() => Some(Answer {
                headers: h.unwrap_or_default(),
                body,
            }),
            _ => None,
        };
        Ok((outcome, answer))
    }

    /// Sends one rendered request, started at `start` (the caller's clock
    /// reading, so the hot path reads the clock twice per request), within
    /// `timeout`; the connection is dropped after any transport error or
    /// timeout. With `keep`, a successful answer's headers and body come
    /// back too; an error answer's body always does (its headers with
    /// `keep`). `head_request`: the request was a HEAD (its answer has no
    /// body). When it ended is [`Conn::finished`].
    pub async fn send(
        &mut self,
        req: &[u8],
        head_request: bool,
        start: Instant,
        timeout: Duration,
        keep: bool,
    ) -> (Outcome, Option<Answer>) {
        let r = tokio::time::timeout_at(
            (start + timeout).into(),
            self.exchange(req, head_request, keep, start),
        )
        .await;
        self.last_used = Instant::now();
        match r {
            Ok(Ok(r)) => r,
            Ok(Err(c)) => {
                self.close();
                (Outcome::err(c), None)
            }
            Err(_) => {
                self.close();
                (Outcome::err(ErrClass::Timeout), None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_framing() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
            false,
            false,
        )
        .expect("parses")
        .expect("complete");
        assert_eq!(
            (h.status, h.len, h.framing, h.close),
            (200, 38, Framing::Length(3), false)
        );
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false, false)
                .expect("partial is fine")
                .is_none()
        );
        let h = parse_head(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\nETag: x\r\n\r\n",
            false,
            true,
        )
        .expect("parses")
        .expect("complete");
        assert_eq!((h.framing, h.close), (Framing::Chunked, true));
        assert_eq!(h.headers.expect("kept")["etag"], "x");
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", false, false)
            .expect("parses")
            .expect("complete");
        assert_eq!((h.framing, h.close), (Framing::Close, true));
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            true,
            false,
        )
        .expect("parses")
        .expect("complete");
        assert_eq!(h.framing, Framing::None, "HEAD answers carry no body");
        let framing_close = |head: &[u8]| {
            let h = parse_head(head, false, false)
                .expect("parses")
                .expect("complete");
            (h.framing, h.close)
        };
        // Transfer-Encoding wins over Content-Length; both: close after.
        assert_eq!(
            framing_close(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 10\r\n\r\n"
            ),
            (Framing::Close, true)
        );
        assert_eq!(
            framing_close(
                b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            (Framing::Chunked, true)
        );
        // close is not taken back by a keep-alive beside it.
        assert_eq!(
            framing_close(
                b"HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n"
            ),
            (Framing::Length(0), true)
        );
        assert_eq!(
            framing_close(
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
            ),
            (Framing::Length(0), false)
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"garbage\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad, false, false).err(),
                Some(ErrClass::Transport),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Feeds `wire` in pieces of `step` bytes, as reads would deliver it.
    fn decode_in_steps(wire: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), ErrClass> {
        let mut dec = Chunked::default();
        let mut buf = BytesMut::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            if dec.feed(&mut buf)? {
                let rest: Vec<u8> = buf.to_vec();
                return Ok((dec.body, rest));
            }
        }
        Err(ErrClass::Timeout) // incomplete
    }

    #[test]
    fn chunked_bodies_with_trailers() {
        let wire = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for step in 1..=wire.len() {
            let (body, rest) = decode_in_steps(wire, step).expect("decodes");
            assert_eq!(body, b"Wikipedia", "step {step}");
            // Bytes after the body stay in the buffer (the caller closes).
            assert!(b"NEXT".starts_with(&rest), "step {step}: {rest:?}");
        }
        assert_eq!(
            decode_in_steps(b"4\r\nWikiXX", 64).err(),
            Some(ErrClass::Transport)
        );
        // A size near usize::MAX is refused, not added up (no overflow, no panic).
        assert_eq!(
            decode_in_steps(b"2\r\nab\r\nfffffffffffffffe\r\n0\r\n\r\n", 64).err(),
            Some(ErrClass::Transport)
        );
        // A megabyte in 16-byte chunks, read 4 KB at a time.
        let mut big = Vec::new();
        for _ in 0..65_536 {
            big.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
        }
        big.extend_from_slice(b"0\r\n\r\n");
        let (body, _) = decode_in_steps(&big, 4096).expect("decodes");
        assert_eq!(body.len(), 1 << 20);
    }

    /// A real socket server answering with each framing in turn on one
    /// connection, then closing: the client reads every body and reuses the
    /// connection until the server says otherwise.
    #[tokio::test]
    async fn reads_every_framing_from_a_real_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let answers: [&[u8]; 3] = [
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nP2024",
                b"HTTP/1.0 200 OK\r\n\r\nuntil close",
            ];
            let (mut s, _) = l.accept().await.expect("accept");
            let mut accepted = 1;
            for a in answers {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await;
                // Split writes: the client must wait for the rest.
                let (x, y) = a.split_at(a.len() / 2);
                let _ = s.write_all(x).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = s.write_all(y).await;
            }
            drop(s);
            // The client has to come back on a new connection.
            let (mut s, _) = l.accept().await.expect("accept again");
            accepted += 1;
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).await;
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            accepted
        });
        let mut c = Conn::new(addr, None);
        let t = Duration::from_secs(5);
        let req = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let (o, a) = c.send(req, false, Instant::now(), t, true).await;
        assert_eq!(o, Outcome::Ok(200));
        assert_eq!(&a.expect("kept").body[..], b"{\"a\":1}");
        let (o, a) = c.send(req, false, Instant::now(), t, false).await;
        assert_eq!(&a.expect("an error's body").body[..], b"P2024");
        assert!(
            matches!(
                o,
                Outcome::Err {
                    class: ErrClass::Server5xx,
                    status: Some(503),
                    pool_timeout: true
                }
            ),
            "{o:?}"
        );
        let (o, a) = c.send(req, false, Instant::now(), t, true).await;
        assert_eq!(o, Outcome::Ok(200));
        assert_eq!(&a.expect("kept").body[..], b"until close");
        assert!(c.stream.is_none(), "closed after a read-to-close body");
        let (o, _) = c.send(req, false, Instant::now(), t, false).await;
        assert_eq!(o, Outcome::Ok(204));
        assert_eq!(server.await.expect("server"), 2, "one reconnect, no more");
    }
}

#[cfg(test)]
mod props;
