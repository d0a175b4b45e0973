//! A backend's log as a witness: where a local process writes it, reading
//! its end (or what was written since an offset) within a byte budget, and
//! parsing its lines whatever the logger (pino, winston, bunyan, Nest's JSON
//! and text loggers, Prisma, node's own crash output, PostgreSQL).
//!
//! Logs are large and hostile: nothing here reads a whole file, fails on an
//! encoding, or keeps terminal escape sequences.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

mod line;
pub use line::{Level, LogLine, LogTime, for_request, is_frame, parse_line, within};

/// Reading a log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LogError {
    /// The file does not exist (as opposed to unreadable).
    pub fn is_missing(&self) -> bool {
        match self {
            LogError::Open { source, .. } | LogError::Read { source, .. } => {
                source.kind() == std::io::ErrorKind::NotFound
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Finding the log of a process

/// Which of a process's output streams go to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Both go to the same file (`> log 2>&1`).
    Both,
}

/// Why a file was taken as a process's log, for the evidence line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub pid: u32,
    pub stream: Stream,
}

impl Reason {
    pub fn describe(&self) -> String {
        let what = match self.stream {
            Stream::Stdout => "stdout (fd 1)",
            Stream::Stderr => "stderr (fd 2)",
            Stream::Both => "stdout and stderr (fd 1 and 2)",
        };
        format!("the {what} of process {} go to this file", self.pid)
    }
}

/// What one of a process's file descriptors points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdTarget {
    /// A regular file, a usable log.
    File(PathBuf),
    /// A file removed since it was opened (rotated away, or `rm`).
    Deleted(PathBuf),
    Pipe,
    Socket,
    /// `/dev/null`.
    Null,
    /// A terminal or another device.
    Device(PathBuf),
    /// Anything else (`anon_inode:…`, a directory).
    Other(String),
    /// The link could not be read (no such process, not ours).
    Unreadable(String),
}

impl FdTarget {
    /// Words for the evidence when the stream is not a usable log.
    pub fn describe(&self) -> String {
        match self {
            FdTarget::File(p) => format!("the file {}", p.display()),
            FdTarget::Deleted(p) => format!("{} (deleted)", p.display()),
            FdTarget::Pipe => "a pipe (a supervisor or journald reads it)".into(),
            FdTarget::Socket => "a socket (journald or a log shipper)".into(),
            FdTarget::Null => "/dev/null (discarded)".into(),
            FdTarget::Device(p) => format!("the device {}", p.display()),
            FdTarget::Other(s) => s.clone(),
            FdTarget::Unreadable(e) => format!("unreadable ({e})"),
        }
    }
}

/// Where file descriptor `fd` of process `pid` points.
pub fn fd_target(pid: u32, fd: u32) -> FdTarget {
    let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
    match std::fs::read_link(&link) {
        Ok(target) => classify_target(&target),
        Err(e) => FdTarget::Unreadable(e.to_string()),
    }
}

/// Classifies the text of a `/proc/PID/fd/N` link.
fn classify_target(target: &Path) -> FdTarget {
    let s = target.to_string_lossy();
    if s.starts_with("pipe:") {
        return FdTarget::Pipe;
    }
    if s.starts_with("socket:") {
        return FdTarget::Socket;
    }
    if !s.starts_with('/') {
        return FdTarget::Other(s.into_owned());
    }
    if let Some(p) = s.strip_suffix(" (deleted)") {
        return FdTarget::Deleted(PathBuf::from(p));
    }
    if target == Path::new("/dev/null") {
        return FdTarget::Null;
    }
    match std::fs::metadata(target) {
        Ok(m) if m.is_file() => FdTarget::File(target.to_path_buf()),
        Ok(m) if m.is_dir() => FdTarget::Other(format!("the directory {s}")),
        Ok(_) => FdTarget::Device(target.to_path_buf()),
        // The link names a file we cannot see (another mount namespace).
        Err(e) => FdTarget::Unreadable(format!("{s}: {e}")),
    }
}

/// Where a local process's stdout and stderr go when they go to regular
/// files (`nohup node dist/main > /tmp/backend.log 2>&1`): both when they
/// differ, stderr first (errors go there).
pub fn find_logs(pid: u32) -> Vec<(PathBuf, Reason)> {
    let out = fd_target(pid, 1);
    let err = fd_target(pid, 2);
    let reason = |stream| Reason { pid, stream };
    match (out, err) {
        (FdTarget::File(o), FdTarget::File(e)) if o == e => vec![(o, reason(Stream::Both))],
        (FdTarget::File(o), FdTarget::File(e)) => {
            vec![(e, reason(Stream::Stderr)), (o, reason(Stream::Stdout))]
        }
        (FdTarget::File(o), _) => vec![(o, reason(Stream::Stdout))],
        (_, FdTarget::File(e)) => vec![(e, reason(Stream::Stderr))],
        _ => Vec::new(),
    }
}

/// The log of a local process: the file its stdout and stderr go to (stderr
/// when they go to different files).
pub fn find_log(pid: u32) -> Option<(PathBuf, Reason)> {
    find_logs(pid).into_iter().next()
}

// ---------------------------------------------------------------------------
// Reading within a budget

/// Text read from a log, cleaned (lossy UTF-8, no escape sequences, no
/// carriage returns), starting on a line boundary.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    pub path: PathBuf,
    /// File offset of the first byte of `text`.
    pub start: u64,
    /// File offset just after the last byte taken: pass it to
    /// [`read_from`] to read what is written next.
    pub end: u64,
    /// The file's length when it was read.
    pub len: u64,
    /// Bytes before `start` (or after `end`) were not read: the budget cut them.
    pub cut: bool,
    /// The file was shorter than the offset asked for (truncated or
    /// rotated): reading started over at 0.
    pub restarted: bool,
    /// The file's identity (device, inode) when read: a log rotated away
    /// and recreated under the same name is another file.
    pub file: Option<FileId>,
    pub text: String,
}

impl Tail {
    /// The non-empty lines, as they are.
    pub fn raw_lines(&self) -> impl Iterator<Item = &str> {
        self.text.lines().filter(|l| !l.trim().is_empty())
    }

    /// The non-empty lines, parsed.
    pub fn lines(&self) -> Vec<LogLine> {
        self.raw_lines().map(parse_line).collect()
    }
}

/// The end of a log: at most `max_bytes`, from the first line boundary in
/// them when the file is longer.
pub fn tail(path: &Path, max_bytes: u64) -> Result<Tail, LogError> {
    let (mut f, len, file) = open(path)?;
    let start = len.saturating_sub(max_bytes);
    let buf = read_at(&mut f, path, start, len - start)?;
    let skip = if start > 0 {
        after_first_newline(&buf)
    } else {
        0
    };
    Ok(Tail {
        path: path.to_path_buf(),
        start: start + skip as u64,
        end: start + buf.len() as u64,
        len,
        cut: start > 0,
        restarted: false,
        file,
        text: clean(&buf[skip..]),
    })
}

/// What was written from `offset` on (an `end` recorded earlier), at most
/// `max_bytes` of it, the earliest first: the first failures explain the
/// later ones. When the budget cuts a line, that line is left for the next
/// read. A file now shorter than `offset` was truncated or rotated: reading
/// starts at 0 and `restarted` says so.
pub fn read_from(path: &Path, offset: u64, max_bytes: u64) -> Result<Tail, LogError> {
    read_since(path, offset, None, max_bytes)
}

/// Where a log ends now, without reading it: the mark to pass to
/// [`read_after`] once the check has run.
pub fn mark(path: &Path) -> Result<Tail, LogError> {
    tail(path, 0)
}

/// What was written to `prev.path` since `prev` was read ([`read_from`]
/// at `prev.end`), starting over when the file was truncated or replaced
/// by another one (rotation that creates a new file).
pub fn read_after(prev: &Tail, max_bytes: u64) -> Result<Tail, LogError> {
    read_since(&prev.path, prev.end, prev.file, max_bytes)
}

fn read_since(
    path: &Path,
    offset: u64,
    expect: Option<FileId>,
    max_bytes: u64,
) -> Result<Tail, LogError> {
    let (mut f, len, file) = open(path)?;
    let replaced = expect.is_some() && file.is_some() && expect != file;
    let restarted = len < offset || replaced;
    let start = if restarted { 0 } else { offset };
    let want = (len - start).min(max_bytes);
    let buf = read_at(&mut f, path, start, want)?;
    let cut = start + want < len;
    let keep = if cut {
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            // One line longer than the budget: take what fits.
            None => buf.len(),
        }
    } else {
        buf.len()
    };
    Ok(Tail {
        path: path.to_path_buf(),
        start,
        end: start + keep as u64,
        len,
        cut,
        restarted,
        file,
        text: clean(&buf[..keep]),
    })
}

/// A file's identity: device and inode.
pub type FileId = (u64, u64);

fn open(path: &Path) -> Result<(File, u64, Option<FileId>), LogError> {
    let f = File::open(path).map_err(|source| LogError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = f.metadata().map_err(|source| LogError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((f, meta.len(), file_id(&meta)))
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<FileId> {
    None
}

fn read_at(f: &mut File, path: &Path, start: u64, n: u64) -> Result<Vec<u8>, LogError> {
    let err = |source| LogError::Read {
        path: path.to_path_buf(),
        source,
    };
    f.seek(SeekFrom::Start(start)).map_err(err)?;
    let mut buf = Vec::with_capacity(n.min(64 << 20) as usize);
    // `take` bounds the read even if the file grows meanwhile.
    f.take(n).read_to_end(&mut buf).map_err(err)?;
    Ok(buf)
}

/// Index just after the first `\n`, or 0 when there is none (one long line:
/// keep its end rather than nothing).
fn after_first_newline(buf: &[u8]) -> usize {
    buf.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// Bytes to text: invalid UTF-8 replaced, `\r\n` and lone `\r` as line
/// ends, ANSI escape sequences and other control characters removed.
pub fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // A C1 CSI introducer, as some terminals' loggers write it.
            '\u{9b}' => skip_csi(&mut chars),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Strips ANSI sequences from a line already decoded.
pub fn strip_ansi(s: &str) -> String {
    if s.contains(['\u{1b}', '\u{9b}', '\r']) || s.chars().any(|c| c.is_control()) {
        clean(s.as_bytes())
    } else {
        s.to_string()
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_escape(chars: &mut Chars) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        // OSC (`ESC ] … BEL` or `ESC ] … ESC \`), and DCS/PM/APC strings alike.
        Some(']' | 'P' | '^' | '_') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    if chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    break;
                }
            }
        }
        // Character-set designations take one more character.
        Some('(' | ')' | '*' | '+') => {
            chars.next();
        }
        // Any other two-character sequence (`ESC c`, `ESC 7`).
        _ => {}
    }
}

/// CSI: parameters and intermediates, then one final byte `@`..=`~`.
fn skip_csi(chars: &mut Chars) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            break;
        }
        if !(' '..='?').contains(&c) {
            // Not a well-formed sequence: stop dropping text.
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file in a fresh temporary directory, removed on drop.
    struct TempFile {
        dir: PathBuf,
        path: PathBuf,
    }

    impl TempFile {
        fn new(name: &str, bytes: &[u8]) -> TempFile {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "chatops-log-test-{}-{n}-{name}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let path = dir.join(name);
            std::fs::write(&path, bytes).expect("write temp file");
            TempFile { dir, path }
        }

        fn append(&self, bytes: &[u8]) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.path)
                .expect("open for append");
            f.write_all(bytes).expect("append");
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(super) const NEST_COLOURED: &str = "\x1b[32m[Nest] 12345  - \x1b[39m10/21/2025, 5:50:38 PM \x1b[32m    LOG\x1b[39m \x1b[33m[NestFactory] \x1b[39m\x1b[32mStarting Nest application...\x1b[39m\x1b[33m +2ms\x1b[39m";

    #[test]
    fn clean_strips_escapes_crlf_and_garbage() {
        assert_eq!(
            clean(NEST_COLOURED.as_bytes()),
            "[Nest] 12345  - 10/21/2025, 5:50:38 PM     LOG [NestFactory] Starting Nest application... +2ms"
        );
        assert_eq!(clean(b"a\r\nb\r\n"), "a\nb\n");
        assert_eq!(clean(b"50%\r100%\n"), "50%\n100%\n");
        // OSC title, a charset designation, bold, invalid UTF-8, NUL and BEL.
        assert_eq!(
            clean(b"\x1b]0;title\x07\x1b(B\x1b[1mok\x1b[0m \xff\xfe\x00x\x07"),
            "ok \u{fffd}\u{fffd}x"
        );
        assert_eq!(strip_ansi("plain"), "plain");
        // A lone ESC at the end does not panic or eat text before it.
        assert_eq!(clean(b"tail\x1b"), "tail");
        assert_eq!(clean(b"\x1b[31"), "");
    }

    #[test]
    fn tail_reads_only_the_end_of_a_large_file() {
        let mut big = Vec::with_capacity(10 << 20);
        let mut i = 0u64;
        while big.len() < 10 << 20 {
            big.extend_from_slice(format!("{{\"level\":30,\"msg\":\"line {i}\"}}\n").as_bytes());
            i += 1;
        }
        big.extend_from_slice(b"prisma:error Can't reach database server at `db:5432`\n");
        let f = TempFile::new("big.log", &big);
        let t = tail(&f.path, 4096).expect("tail");
        assert!(t.cut);
        assert_eq!(t.len, big.len() as u64);
        assert_eq!(t.end, t.len);
        assert!(t.text.len() <= 4096);
        assert!(t.text.len() > 3000, "{}", t.text.len());
        // It starts on a line boundary: every line parses as JSON but the last.
        let lines = t.lines();
        assert!(lines.len() > 50);
        assert!(
            lines[..lines.len() - 1]
                .iter()
                .all(|l| l.level == Some(Level::Info))
        );
        assert_eq!(
            lines.last().map(|l| l.message.as_str()),
            Some("Can't reach database server at `db:5432`")
        );
        assert_eq!(&big[t.start as usize - 1..t.start as usize], b"\n");
    }

    #[test]
    fn tail_of_a_small_file_and_garbage() {
        let f = TempFile::new("small.log", b"first\r\nsecond\r\n\x00\x01\xc3\x28 bin\n");
        let t = tail(&f.path, 1 << 20).expect("tail");
        assert!(!t.cut);
        assert_eq!(t.start, 0);
        assert_eq!(
            t.raw_lines().collect::<Vec<_>>(),
            ["first", "second", "\u{fffd}( bin"]
        );
        // One line longer than the budget: its end is kept.
        let long = TempFile::new("long.log", &[b'x'; 5000]);
        let t = tail(&long.path, 100).expect("tail");
        assert_eq!(t.text.len(), 100);
        let missing = tail(&f.dir.join("nope.log"), 10).expect_err("missing");
        assert!(missing.is_missing());
        assert!(missing.to_string().contains("nope.log"));
    }

    #[test]
    fn read_from_an_offset_then_after_truncation() {
        let f = TempFile::new("grow.log", b"old 1\nold 2\n");
        let before = tail(&f.path, 1 << 20).expect("tail");
        f.append(b"new 1\nnew 2\nnew 3 partial");
        let t = read_from(&f.path, before.end, 1 << 20).expect("read");
        assert!(!t.restarted && !t.cut);
        assert_eq!(
            t.raw_lines().collect::<Vec<_>>(),
            ["new 1", "new 2", "new 3 partial"]
        );

        // A budget that cuts a line leaves it for the next read.
        let t = read_from(&f.path, before.end, 9).expect("read");
        assert!(t.cut);
        assert_eq!(t.raw_lines().collect::<Vec<_>>(), ["new 1"]);
        let t2 = read_from(&f.path, t.end, 1 << 20).expect("read");
        assert_eq!(t2.raw_lines().next(), Some("new 2"));

        // Truncated (copytruncate rotation): start over and say so.
        std::fs::write(&f.path, b"fresh\n").expect("truncate");
        let t = read_from(&f.path, before.end + 20, 1 << 20).expect("read");
        assert!(t.restarted);
        assert_eq!(t.start, 0);
        assert_eq!(t.text, "fresh\n");
    }

    #[test]
    fn read_after_a_mark_notices_a_replaced_file() {
        let f = TempFile::new("rot.log", b"before 1\nbefore 2\n");
        let m = mark(&f.path).expect("mark");
        assert_eq!((m.end, m.text.as_str()), (18, ""));
        f.append(b"during\n");
        let t = read_after(&m, 1 << 20).expect("read");
        assert_eq!((t.text.as_str(), t.restarted), ("during\n", false));
        // Rotation: the old file renamed away, a new one longer than the mark.
        std::fs::rename(&f.path, f.dir.join("rot.log.1")).expect("rotate");
        std::fs::write(&f.path, b"new file, first line, long enough\n").expect("recreate");
        let t = read_after(&m, 1 << 20).expect("read");
        assert!(t.restarted);
        assert_eq!(t.text, "new file, first line, long enough\n");
    }

    #[test]
    fn classify_fd_targets() {
        assert_eq!(classify_target(Path::new("pipe:[12345]")), FdTarget::Pipe);
        assert_eq!(classify_target(Path::new("socket:[999]")), FdTarget::Socket);
        assert_eq!(classify_target(Path::new("/dev/null")), FdTarget::Null);
        assert_eq!(
            classify_target(Path::new("/tmp/backend.log (deleted)")),
            FdTarget::Deleted(PathBuf::from("/tmp/backend.log"))
        );
        assert!(matches!(
            classify_target(Path::new("anon_inode:[eventfd]")),
            FdTarget::Other(_)
        ));
        assert!(matches!(
            classify_target(Path::new("/")),
            FdTarget::Other(_)
        ));
        let f = TempFile::new("fd.log", b"x\n");
        assert_eq!(classify_target(&f.path), FdTarget::File(f.path.clone()));
        assert!(matches!(
            fd_target(u32::MAX - 1, 1),
            FdTarget::Unreadable(_)
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn finds_the_file_a_child_writes_to() {
        use std::process::{Command, Stdio};
        let f = TempFile::new("child.log", b"");
        let out = File::options().append(true).open(&f.path).expect("open");
        let err = out.try_clone().expect("clone");
        let child = Command::new("sleep")
            .arg("5")
            .stdout(out)
            .stderr(err)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let found = find_log(child.id());
        let piped = Command::new("sleep")
            .arg("5")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let none = find_log(piped.id());
        let targets = (fd_target(piped.id(), 1), fd_target(piped.id(), 2));
        for mut c in [child, piped] {
            let _ = c.kill();
            let _ = c.wait();
        }
        let (path, reason) = found.expect("the child's log");
        assert_eq!(path.canonicalize().ok(), f.path.canonicalize().ok());
        assert_eq!(reason.stream, Stream::Both);
        assert!(reason.describe().contains("stdout and stderr"));
        assert_eq!(none, None);
        assert_eq!(targets, (FdTarget::Pipe, FdTarget::Null));
    }
}
