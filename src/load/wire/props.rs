//! Property tests of the answer parser and the chunked decoder: any byte
//! stream, split at any points, gives what one read gives; nothing panics;
//! nothing grows past its bounds. Cases: PROPTEST_CASES (64 here by default;
//! README "Property tests" has the long run).

use super::*;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 64;
    }
    c.failure_persistence = None;
    c
}

/// Cut points of `len` bytes, sorted, deduplicated, inside the stream.
fn pieces(wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    at.push(0);
    at.push(wire.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| wire[w[0]..w[1]].to_vec()).collect()
}

/// What the decoder makes of a stream fed in pieces: the body and what is
/// left after it, an error, or "not complete" (None).
/// A decoded body and the bytes after it.
type Decoded = (Vec<u8>, Vec<u8>);

fn chunked_in_pieces(ps: &[Vec<u8>]) -> Result<Option<Decoded>, ErrClass> {
    let mut dec = Chunked::default();
    let mut buf = BytesMut::new();
    for (i, p) in ps.iter().enumerate() {
        buf.extend_from_slice(p);
        let done = dec.feed(&mut buf)?;
        // Bounds: a partial size or trailer line never holds more than a
        // head's worth; chunk data waits for at most its declared size.
        assert!(dec.body.len() <= MAX_BODY);
        if done {
            // What the server sent after the body, read or not yet read.
            let mut rest = buf.to_vec();
            rest.extend(ps[i + 1..].iter().flatten());
            return Ok(Some((std::mem::take(&mut dec.body), rest)));
        }
    }
    Ok(None)
}

fn chunked_wire(chunks: &[Vec<u8>], ext: bool, trailer: bool) -> (Vec<u8>, Vec<u8>) {
    let mut w = Vec::new();
    let mut body = Vec::new();
    for c in chunks.iter().filter(|c| !c.is_empty()) {
        w.extend_from_slice(format!("{:x}", c.len()).as_bytes());
        if ext {
            w.extend_from_slice(b";name=value");
        }
        w.extend_from_slice(b"\r\n");
        w.extend_from_slice(c);
        w.extend_from_slice(b"\r\n");
        body.extend_from_slice(c);
    }
    w.extend_from_slice(b"0\r\n");
    if trailer {
        w.extend_from_slice(b"X-Checksum: abc\r\n");
    }
    w.extend_from_slice(b"\r\n");
    (w, body)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn chunked_bodies_decode_the_same_however_they_are_split(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..12),
        ext in any::<bool>(),
        trailer in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..24),
    ) {
        let (wire, body) = chunked_wire(&chunks, ext, trailer);
        let whole = chunked_in_pieces(std::slice::from_ref(&wire));
        prop_assert_eq!(&whole, &Ok(Some((body, Vec::new()))));
        prop_assert_eq!(chunked_in_pieces(&pieces(&wire, &cuts)), whole);
    }

    #[test]
    fn any_bytes_through_the_chunked_decoder_give_one_answer_and_no_panic(
        wire in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'f'), Just(b';')],
            0..600,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..24),
    ) {
        let whole = chunked_in_pieces(std::slice::from_ref(&wire));
        prop_assert_eq!(chunked_in_pieces(&pieces(&wire, &cuts)), whole);
    }

    #[test]
    fn any_bytes_as_a_head_never_panic_and_prefixes_of_a_head_wait(
        junk in prop::collection::vec(any::<u8>(), 0..400),
        status in 100u16..600,
        headers in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,20}", "[ -~]{0,40}"), 0..12),
        head_request in any::<bool>(),
    ) {
        let _ = parse_head(&junk, head_request, true);
        let mut h = format!("HTTP/1.1 {status} Whatever\r\n");
        for (k, v) in &headers {
            h.push_str(&format!("{k}: {}\r\n", v.trim()));
        }
        h.push_str("\r\n");
        let full = parse_head(h.as_bytes(), head_request, true);
        for i in 0..h.len() {
            prop_assert!(matches!(parse_head(&h.as_bytes()[..i], head_request, false), Ok(None) | Err(_)));
        }
        if let Ok(Some(head)) = full {
            prop_assert_eq!(head.len, h.len());
            prop_assert!(matches!(parse_head(&h.as_bytes()[..h.len() - 1], head_request, false), Ok(None)));
        }
        // Past the head's bound, an endless head is refused, not buffered.
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.resize(MAX_HEAD + 2, b'a');
        prop_assert_eq!(parse_head(&endless, false, false).err(), Some(ErrClass::Transport));
    }
}

/// How an answer is framed on the wire, for the socket property.
#[derive(Debug, Clone)]
enum Frame {
    Length,
    Chunked(Vec<usize>),
    Close,
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        Just(Frame::Length),
        prop::collection::vec(1usize..64, 1..6).prop_map(Frame::Chunked),
        Just(Frame::Close),
    ]
}

fn answer_wire(status: u16, body: &[u8], f: &Frame, interim: bool) -> Vec<u8> {
    let mut w = Vec::new();
    if interim {
        w.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    w.extend_from_slice(format!("HTTP/1.1 {status} X\r\n").as_bytes());
    match f {
        Frame::Length => {
            w.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            w.extend_from_slice(body);
        }
        Frame::Close => {
            w.extend_from_slice(b"Connection: close\r\n\r\n");
            w.extend_from_slice(body);
        }
        Frame::Chunked(sizes) => {
            w.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut rest = body;
            let mut i = 0;
            let mut chunks = Vec::new();
            while !rest.is_empty() {
                let n = sizes[i % sizes.len()].min(rest.len());
                chunks.push(rest[..n].to_vec());
                rest = &rest[n..];
                i += 1;
            }
            w.extend_from_slice(&chunked_wire(&chunks, false, false).0);
        }
    }
    w
}

proptest! {
    #![proptest_config({
        let mut c = config();
        // A socket and a runtime per case: a quarter of the cases.
        c.cases = c.cases.div_ceil(4);
        c
    })]

    /// A real loopback server writes the answer in pieces with pauses
    /// between them (so the client's reads see the cuts): the client's
    /// outcome and body are those of the answer, however it was cut.
    #[test]
    fn a_real_socket_answer_reads_the_same_however_it_is_cut(
        status in prop_oneof![Just(200u16), Just(201), Just(404), Just(503)],
        body in prop::collection::vec(any::<u8>(), 0..300),
        f in frame(),
        interim in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let wire = answer_wire(status, &body, &f, interim);
        let ps = pieces(&wire, &cuts);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (o, got) = rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = l.local_addr().expect("addr");
            let server = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.expect("accept");
                let _ = s.set_nodelay(true);
                let mut req = [0u8; 512];
                let _ = s.read(&mut req).await;
                for p in ps {
                    let _ = s.write_all(&p).await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            let mut c = Conn::new(addr, None);
            let r = c
                .send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", false, Instant::now(), Duration::from_secs(10), true)
                .await;
            let _ = server.await;
            r
        });
        prop_assert_eq!(o, classify(status, &body));
        let got = got.map(|a| a.body.to_vec()).unwrap_or_default();
        prop_assert_eq!(got, body);
    }
}
