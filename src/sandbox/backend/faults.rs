//! The load-time faults a NestJS backend can have, done for real: CPU work
//! on a single event loop, memory retained per request, an uncaught
//! exception after N requests. Each counts only chat requests (send and
//! history), not health probes.
//!
//! The event loop: with the CPU knob on, every request first takes a turn on
//! one dedicated thread (`event-loop`), which burns the chat requests' CPU
//! one after the other. As in Node, one thread sits at 100% of a core while
//! the others idle, and every request (health included) queues behind the
//! work ahead of it.

use super::logs::Logger;
use super::{BackendConfig, NODE_VERSION};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A turn on the event loop: the CPU to burn, and whom to tell when done.
type Turn = (Duration, tokio::sync::oneshot::Sender<()>);
/// What the memory knob keeps, forever (a module-level cache that is never
/// pruned, as leaks usually are).
static RETAINED: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
static RETAINED_BYTES: AtomicU64 = AtomicU64::new(0);

/// The fault knobs of one backend process, and its count of chat requests.
pub(super) struct Faults {
    pub(super) cpu_ms: u64,
    pub(super) lock_ms: u64,
    pub(super) retain_kb: u64,
    pub(super) crash_after: u64,
    pub(super) generic_500: bool,
    chat_requests: AtomicU64,
    /// The event loop thread's queue (CPU knob only).
    event_loop: Option<std::sync::mpsc::Sender<Turn>>,
}

impl Faults {
    pub(super) fn new(cfg: &BackendConfig) -> Faults {
        Faults {
            cpu_ms: cfg.cpu_ms,
            lock_ms: cfg.lock_ms,
            retain_kb: cfg.retain_kb,
            crash_after: cfg.crash_after,
            generic_500: cfg.generic_500,
            chat_requests: AtomicU64::new(0),
            event_loop: (cfg.cpu_ms > 0).then(start_event_loop).flatten(),
        }
    }

    /// With the CPU knob: waits for this request's turn on the event loop,
    /// which burns `cpu_ms` for a chat request (`/api/v1/chat/…`) and
    /// nothing for others. Without it: returns at once.
    pub(super) async fn event_loop_turn(&self, path: &str) {
        let Some(queue) = &self.event_loop else {
            return;
        };
        let cost = if path.starts_with("/api/v1/chat/") {
            Duration::from_millis(self.cpu_ms)
        } else {
            Duration::ZERO
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        if queue.send((cost, done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// At the start of a chat request: count it, keep its memory. Returns
    /// its number (1, 2, …).
    pub(super) fn chat_request(&self) -> u64 {
        let n = self.chat_requests.fetch_add(1, Ordering::SeqCst) + 1;
        if self.retain_kb > 0 {
            retain(self.retain_kb as usize * 1024);
        }
        n
    }

    /// Whether request `n` is the one after which the process dies.
    pub(super) fn crashes_at(&self, n: u64) -> bool {
        self.crash_after > 0 && n == self.crash_after
    }
}

/// The event loop thread: runs the turns in order (None if no thread can
/// be started, then requests do not wait).
fn start_event_loop() -> Option<std::sync::mpsc::Sender<Turn>> {
    let (tx, rx) = std::sync::mpsc::channel::<Turn>();
    std::thread::Builder::new()
        .name("event-loop".to_string())
        .spawn(move || {
            while let Ok((cost, done)) = rx.recv() {
                if !cost.is_zero() {
                    burn_cpu(cost);
                }
                let _ = done.send(());
            }
        })
        .ok()?;
    Some(tx)
}

/// Bytes the memory knob has kept so far.
pub(super) fn retained_bytes() -> u64 {
    RETAINED_BYTES.load(Ordering::Relaxed)
}

fn retain(bytes: usize) {
    // Written, not just allocated: untouched pages would not count in RSS.
    let block = vec![0xA5u8; bytes].into_boxed_slice();
    RETAINED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(block);
    RETAINED_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// CPU time of the calling thread (None without a thread clock).
fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Hashes a buffer over and over (FNV-1a) until this thread has used
/// `budget` of CPU time: real work, the way a JSON transform or a password
/// hash would spend it, not a sleep. (Without a thread clock, until that
/// much time has passed, still busy.) Returns the digest so the work cannot
/// be optimised away.
fn burn_cpu(budget: Duration) -> u64 {
    let wall = std::time::Instant::now();
    let start = thread_cpu();
    let mut buf = [0u8; 4096];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    loop {
        for _ in 0..16 {
            for b in buf.iter_mut() {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
                *b = (h >> 24) as u8;
            }
        }
        h = std::hint::black_box(h);
        let used = match (start, thread_cpu()) {
            (Some(s), Some(now)) => now.saturating_sub(s),
            _ => wall.elapsed(),
        };
        if used >= budget {
            return h;
        }
    }
}

/// The uncaught exception of the crash knob: thrown in a timer callback
/// after the Nth request's response (outside Nest's request pipeline, so no
/// exception filter catches it), printed by Node to stderr with its stack,
/// and the process exits with status 1.
pub(super) fn schedule_crash(log: Arc<Logger>, conversation: String) {
    tokio::spawn(async move {
        // Let the response go out first, as the timer would.
        tokio::time::sleep(Duration::from_millis(10)).await;
        log.console_error(&format!(
            "/app/dist/chat/chat.service.js:142\n                throw new Error(`Message fan-out failed for conversation ${{conversationId}}: subscriber list is undefined`);\n                ^\n\n\
Error: Message fan-out failed for conversation {conversation}: subscriber list is undefined\n    at Timeout._onTimeout (/app/dist/chat/chat.service.js:142:23)\n    at listOnTimeout (node:internal/timers:573:17)\n    at process.processTimers (node:internal/timers:514:7)\n\nNode.js {NODE_VERSION}"
        ));
        std::process::exit(1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burns_cpu_time_not_wall_time() {
        let t0 = thread_cpu().expect("thread clock");
        burn_cpu(Duration::from_millis(30));
        let used = thread_cpu().expect("thread clock").saturating_sub(t0);
        assert!(used >= Duration::from_millis(30), "{used:?}");
    }

    #[test]
    fn retained_memory_is_counted() {
        let before = retained_bytes();
        retain(8 * 1024);
        assert!(retained_bytes() >= before + 8 * 1024);
    }
}
