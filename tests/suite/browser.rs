//! A real browser for the HTML report's tests: headless Chromium (Debian's
//! `chromium`; CHATOPS_CHROMIUM overrides the path) driven over the
//! DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages
//! ending in NUL on fds 3 and 4), so console errors, uncaught exceptions,
//! failed loads and log entries are caught as events, not scraped from
//! logs. A test that needs it fails when it is missing.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub fn chromium_path() -> String {
    std::env::var("CHATOPS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// What went wrong on the page: console errors and warnings, uncaught
/// exceptions, failed network loads, error log entries.
pub type Problems = Vec<String>;

pub struct Browser {
    child: Child,
    to: std::fs::File,
    from: Receiver<Value>,
    next: u64,
    session: String,
    pub problems: Problems,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds we then own.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts headless Chromium with a window of this size.
    pub fn start(width: u32, height: u32, profile: &std::path::Path) -> Browser {
        let path = chromium_path();
        crate::common::require_tool(
            &path,
            &["--version"],
            "apt-get install chromium (or set CHATOPS_CHROMIUM)",
        );
        use std::os::fd::AsRawFd;
        let (cmd_r, cmd_w) = pipe();
        let (ev_r, ev_w) = pipe();
        let (a, b) = (cmd_r.as_raw_fd(), ev_w.as_raw_fd());
        let mut c = Command::new(&path);
        c.args([
            "--headless",
            "--disable-gpu",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", profile.display()),
        ]);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            c.arg("--no-sandbox");
        }
        c.arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            c.pre_exec(move || {
                let hi_a = libc::fcntl(a, libc::F_DUPFD, 10);
                let hi_b = libc::fcntl(b, libc::F_DUPFD, 10);
                if hi_a < 0 || hi_b < 0 || libc::dup2(hi_a, 3) < 0 || libc::dup2(hi_b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().unwrap_or_else(|e| panic!("{path}: {e}"));
        drop(cmd_r);
        drop(ev_w);
        let (tx, rx) = channel();
        let mut from = std::fs::File::from(ev_r);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            while let Ok(n) = from.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(i) = buf.iter().position(|b| *b == 0) {
                    let msg: Vec<u8> = buf.drain(..=i).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&msg[..msg.len() - 1])
                        && tx.send(v).is_err()
                    {
                        return;
                    }
                }
            }
        });
        let mut br = Browser {
            child,
            to: std::fs::File::from(cmd_w),
            from: rx,
            next: 0,
            session: String::new(),
            problems: Vec::new(),
        };
        let t = br.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().expect("targetId").to_string();
        let s = br.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        br.session = s["sessionId"].as_str().expect("sessionId").to_string();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            br.call(&format!("{domain}.enable"), json!({}));
        }
        br
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> u64 {
        self.next += 1;
        let mut m = json!({"id": self.next, "method": method, "params": params});
        if session {
            m["sessionId"] = json!(self.session);
        }
        let mut bytes = m.to_string().into_bytes();
        bytes.push(0);
        self.to
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("to chromium: {e}"));
        self.next
    }

    /// Waits for the answer to `id` (or, with `id` 0, for the event
    /// `until`), noting page problems on the way.
    fn wait(&mut self, id: u64, until: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match self.from.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => panic!("chromium: no answer to {until}"),
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited ({until})"),
            };
            if id != 0 && m["id"].as_u64() == Some(id) {
                if let Some(e) = m.get("error") {
                    panic!("chromium: {until}: {e}");
                }
                return m["result"].clone();
            }
            let method = m["method"].as_str().unwrap_or("");
            self.note(method, &m["params"]);
            if id == 0 && method == until {
                return m["params"].clone();
            }
        }
    }

    fn note(&mut self, method: &str, p: &Value) {
        match method {
            "Runtime.exceptionThrown" => self
                .problems
                .push(format!("exception: {}", p["exceptionDetails"])),
            "Runtime.consoleAPICalled" => {
                let kind = p["type"].as_str().unwrap_or("");
                if matches!(kind, "error" | "warning" | "assert") {
                    self.problems.push(format!("console.{kind}: {}", p["args"]));
                }
            }
            "Log.entryAdded" => {
                let level = p["entry"]["level"].as_str().unwrap_or("");
                if matches!(level, "error" | "warning") {
                    self.problems
                        .push(format!("log {level}: {}", p["entry"]["text"]));
                }
            }
            "Network.loadingFailed" => self
                .problems
                .push(format!("failed load: {}", p["errorText"])),
            _ => {}
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params, false);
        self.wait(id, method)
    }

    /// A DevTools command on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params, true);
        self.wait(id, method)
    }

    /// Opens `url` and waits for its load event.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait(0, "Page.loadEventFired");
    }

    /// Evaluates a JavaScript expression; its value as JSON.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// A PNG of the whole page, `width` wide.
    pub fn screenshot(&mut self, width: u32) -> Vec<u8> {
        let h = self
            .eval("document.documentElement.scrollHeight")
            .as_f64()
            .unwrap_or(1000.0);
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": h.ceil() as u64, "deviceScaleFactor": 1, "mobile": false}),
        );
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64_decode(r["data"].as_str().expect("screenshot data"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.send("Browser.close", json!({}), false);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
    assert_eq!(base64_decode("iVBORw=="), [0x89, b'P', b'N', b'G']);
}

#[test]
fn the_browser_harness_catches_errors_and_failed_loads() {
    let dir = crate::common::scratch_dir().join(crate::common::unique("browser"));
    std::fs::create_dir_all(&dir).expect("dir");
    let page = dir.join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"missing.png\"><script>console.error('boom'); nope();</script></body></html>",
    )
    .expect("page");
    let mut b = Browser::start(800, 600, &dir.join("profile"));
    b.open(&format!("file://{}", page.display()));
    let _ = b.eval("1");
    let all = b.problems.join("\n");
    assert!(all.contains("boom"), "{all}");
    assert!(all.contains("nope"), "{all}");
    assert!(all.contains("failed load"), "{all}");
}
