//! A test server on 127.0.0.1 that misbehaves on purpose, one mode at a
//! time (raw TCP with tokio, so it can break HTTP in ways a real HTTP
//! server library never would). Each server runs on a thread of its own and
//! stops when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A well-behaved keep-alive server answering `{"status":"ok"}`.
    Healthy,
    /// The status line and headers, one byte per second.
    SlowHeaders,
    /// A chunked body that never ends (sent as fast as it is read).
    EndlessChunked,
    /// A body with no length that never ends (read-to-close).
    EndlessNoLength,
    /// One header line of 1 MB.
    HugeHeaderLine,
    /// 10,000 headers.
    ManyHeaders,
    /// A chunk size that is not hexadecimal.
    BrokenChunkSize,
    /// Content-Length 1000, ten bytes, then the connection closes.
    CloseMidBody,
    /// A TCP reset (SO_LINGER 0) right after the request arrives.
    ResetAfterRequest,
    /// Bytes that are not HTTP.
    NotHttp,
    /// Every answer redirects to itself.
    RedirectLoop,
    /// Content-Length 1000 with a 15-byte body, the connection left open.
    LengthLonger,
    /// Content-Length 5 with a 15-byte body: the rest poisons the next answer.
    LengthShorter,
    /// `100 Continue`, then nothing.
    ContinueForever,
    /// Garbage where a TLS handshake should be (for https:// URLs).
    TlsGarbage,
    /// Reads the TLS ClientHello and never answers (for https:// URLs).
    TlsStall,
    /// Accepts connections and never reads from them.
    NeverReads,
}

impl Mode {
    /// Every hostile mode (not [`Mode::Healthy`]).
    pub const HOSTILE: [Mode; 16] = [
        Mode::SlowHeaders,
        Mode::EndlessChunked,
        Mode::EndlessNoLength,
        Mode::HugeHeaderLine,
        Mode::ManyHeaders,
        Mode::BrokenChunkSize,
        Mode::CloseMidBody,
        Mode::ResetAfterRequest,
        Mode::NotHttp,
        Mode::RedirectLoop,
        Mode::LengthLonger,
        Mode::LengthShorter,
        Mode::ContinueForever,
        Mode::TlsGarbage,
        Mode::TlsStall,
        Mode::NeverReads,
    ];

    /// The scheme a client should use against this mode.
    pub fn scheme(self) -> &'static str {
        match self {
            Mode::TlsGarbage | Mode::TlsStall => "https",
            _ => "http",
        }
    }
}

/// A running hostile server; stops when dropped.
pub struct Server {
    pub port: u16,
    pub mode: Mode,
    requests: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub fn start(mode: Mode) -> Server {
        let (port_tx, port_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let _ = port_tx.send(l.local_addr().expect("addr").port());
                let accept = async {
                    // Connections that are never read are kept (not dropped).
                    let mut parked = Vec::new();
                    loop {
                        let Ok((s, _)) = l.accept().await else {
                            continue;
                        };
                        if mode == Mode::NeverReads {
                            parked.push(s);
                            continue;
                        }
                        tokio::spawn(serve(s, mode, counter.clone()));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime closes every connection.
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("hostile server port");
        Server {
            port,
            mode,
            requests,
            stop: Some(stop_tx),
        }
    }

    /// How many requests (or TLS connections) it has read so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The base URL (`http://127.0.0.1:PORT` or https for the TLS modes).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.mode.scheme(), self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

const OK_BODY: &[u8] = br#"{"status":"ok"}"#;

/// Reads one request head (up to the blank line), with any body the
/// Content-Length announces. None when the client went away.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 8192];
                let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..total);
            return Some(());
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn ok_head(len: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n")
        .into_bytes()
}

async fn serve(mut s: TcpStream, mode: Mode, requests: Arc<AtomicU64>) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    if matches!(mode, Mode::TlsGarbage | Mode::TlsStall) {
        requests.fetch_add(1, Ordering::SeqCst);
    }
    match mode {
        Mode::TlsGarbage => {
            let mut hello = [0u8; 4096];
            let _ = s.read(&mut hello).await;
            let _ = s.write_all(&garbage(2048)).await;
            let _ = s.shutdown().await;
            return;
        }
        Mode::TlsStall => {
            let mut sink = [0u8; 4096];
            while let Ok(n) = s.read(&mut sink).await {
                if n == 0 {
                    return;
                }
            }
            return;
        }
        _ => {}
    }
    loop {
        if read_request(&mut s, &mut buf).await.is_none() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let answered = match mode {
            Mode::Healthy => {
                let mut a = ok_head(OK_BODY.len());
                a.extend_from_slice(OK_BODY);
                s.write_all(&a).await.is_ok()
            }
            Mode::SlowHeaders => {
                let head = ok_head(OK_BODY.len());
                for b in head {
                    if s.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                return;
            }
            Mode::EndlessChunked => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if s.write_all(head).await.is_err() {
                    return;
                }
                let mut chunk = b"4000\r\n".to_vec();
                chunk.extend(std::iter::repeat_n(b'a', 0x4000));
                chunk.extend_from_slice(b"\r\n");
                while s.write_all(&chunk).await.is_ok() {}
                return;
            }
            Mode::EndlessNoLength => {
                let head =
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n";
                if s.write_all(head).await.is_err() {
                    return;
                }
                let block = vec![b'b'; 0x4000];
                while s.write_all(&block).await.is_ok() {}
                return;
            }
            Mode::HugeHeaderLine => {
                // Built once: the server must misbehave quickly, not slowly.
                static HUGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
                let a = HUGE.get_or_init(|| {
                    let mut a = b"HTTP/1.1 200 OK\r\nx-huge: ".to_vec();
                    a.extend(std::iter::repeat_n(b'h', 1 << 20));
                    a.extend_from_slice(b"\r\n");
                    a.extend(ok_head(OK_BODY.len()).into_iter().skip(17));
                    a.extend_from_slice(OK_BODY);
                    a
                });
                let _ = s.write_all(a).await;
                hold(&mut s).await;
                return;
            }
            Mode::ManyHeaders => {
                static MANY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
                let a = MANY.get_or_init(|| {
                    let mut a = b"HTTP/1.1 200 OK\r\n".to_vec();
                    for i in 0..10_000 {
                        a.extend_from_slice(format!("x-h-{i}: v\r\n").as_bytes());
                    }
                    a.extend(ok_head(OK_BODY.len()).into_iter().skip(17));
                    a.extend_from_slice(OK_BODY);
                    a
                });
                let _ = s.write_all(a).await;
                hold(&mut s).await;
                return;
            }
            Mode::BrokenChunkSize => {
                let a = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{\"status\":\"ok\"}\r\n0\r\n\r\n";
                let _ = s.write_all(a).await;
                hold(&mut s).await;
                return;
            }
            Mode::CloseMidBody => {
                let mut a = ok_head(1000);
                a.extend_from_slice(b"{\"status\":");
                let _ = s.write_all(&a).await;
                let _ = s.shutdown().await;
                return;
            }
            Mode::ResetAfterRequest => {
                reset(s);
                return;
            }
            Mode::NotHttp => {
                let mut a = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec();
                a.extend(garbage(512));
                let _ = s.write_all(&a).await;
                let _ = s.shutdown().await;
                return;
            }
            Mode::RedirectLoop => s
                .write_all(b"HTTP/1.1 302 Found\r\nlocation: /loop\r\ncontent-length: 0\r\n\r\n")
                .await
                .is_ok(),
            Mode::LengthLonger => {
                let mut a = ok_head(1000);
                a.extend_from_slice(OK_BODY);
                let _ = s.write_all(&a).await;
                hold(&mut s).await;
                return;
            }
            Mode::LengthShorter => {
                let mut a = ok_head(5);
                a.extend_from_slice(OK_BODY);
                s.write_all(&a).await.is_ok()
            }
            Mode::ContinueForever => {
                let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
                hold(&mut s).await;
                return;
            }
            Mode::TlsGarbage | Mode::TlsStall | Mode::NeverReads => return,
        };
        if !answered {
            return;
        }
    }
}

/// Closes `s` with a TCP reset: SO_LINGER with a zero timeout, then close.
fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a valid linger struct
    // and its size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

/// Keeps the connection open, reading and discarding, until the client leaves.
async fn hold(s: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = s.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}

/// Bytes that are neither HTTP nor TLS (a fixed pseudo-random sequence).
fn garbage(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Never 0x16 (a TLS handshake record) or a letter of "HTTP".
            match (x >> 24) as u8 {
                0x16 | b'H' | b'T' | b'P' => 0xff,
                b => b,
            }
        })
        .collect()
}
