//! One cancellation mechanism for every long-running command: a token that
//! Ctrl-C (SIGINT) or SIGTERM (systemd, Kubernetes) cancels.
//!
//! The first signal cancels the token: the command stops its work, cleans up
//! what it started and prints its partial report. It is remembered, so the
//! exit code says which signal it was (130 for SIGINT, 143 for SIGTERM, the
//! shell's 128 + signal number). A second signal exits at once, after the
//! last-resort hooks registered with [`on_forced_exit`] (killing the
//! processes chatops started).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
pub use tokio_util::sync::CancellationToken;

/// Which signal ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// The exit code a shell gives a process this signal ended: 128 + its number.
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    fn from_u8(v: u8) -> Option<Signal> {
        match v {
            1 => Some(Signal::Interrupt),
            2 => Some(Signal::Terminate),
            _ => None,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Signal::Interrupt => 1,
            Signal::Terminate => 2,
        }
    }
}

/// The first signal received (0: none yet).
static RECEIVED: AtomicU8 = AtomicU8::new(0);
/// The process's root token, cancelled by the first signal.
static ROOT: OnceLock<CancellationToken> = OnceLock::new();
/// What to do before exiting on a second signal.
static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

/// The first SIGINT or SIGTERM this process received, if any.
pub fn received() -> Option<Signal> {
    Signal::from_u8(RECEIVED.load(Ordering::SeqCst))
}

/// Registers `hook` to run when a second signal makes the process exit at
/// once (it must be quick and must not need the async runtime).
pub fn on_forced_exit(hook: fn()) {
    let mut hooks = HOOKS.lock().unwrap_or_else(PoisonError::into_inner);
    if !hooks.contains(&hook) {
        hooks.push(hook);
    }
}

/// A token cancelled on the first SIGINT or SIGTERM. The handlers are
/// installed (once per process, on the current runtime) before this returns,
/// so a signal that arrives afterwards is never lost (it no longer kills the
/// process). Every call gives a child of the same root token.
pub fn shutdown_token() -> CancellationToken {
    ROOT.get_or_init(install).child_token()
}

fn install() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let root = token.clone();
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    tokio::spawn(async move {
        let (mut term, mut int) = (term.ok(), int.ok());
        loop {
            let sig = tokio::select! {
                Some(()) = recv(&mut term) => Signal::Terminate,
                Some(()) = recv(&mut int) => Signal::Interrupt,
                else => return,
            };
            let first = RECEIVED
                .compare_exchange(0, sig.as_u8(), Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if first {
                root.cancel();
            } else {
                force_exit(sig);
            }
        }
    });
    token
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => None,
    }
}

/// The second signal: run the last-resort hooks and exit now.
fn force_exit(sig: Signal) -> ! {
    let hooks: Vec<fn()> = HOOKS
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    eprintln!("\nchatops: second signal, exiting now");
    for h in hooks {
        h();
    }
    std::process::exit(sig.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_shells() {
        assert_eq!(Signal::Interrupt.exit_code(), 128 + libc_sigint());
        assert_eq!(Signal::Terminate.exit_code(), 128 + 15);
        for s in [Signal::Interrupt, Signal::Terminate] {
            assert_eq!(Signal::from_u8(s.as_u8()), Some(s));
        }
        assert_eq!(Signal::from_u8(0), None);
    }

    fn libc_sigint() -> i32 {
        2
    }
}
