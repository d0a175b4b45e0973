//! One cancellation mechanism for every long-running command: a token that
//! Ctrl-C (SIGINT) or SIGTERM (systemd, Kubernetes) cancels.

pub use tokio_util::sync::CancellationToken;

/// Which signal ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

/// A token cancelled on the first SIGINT or SIGTERM. The handlers are
/// installed before this returns, so a signal that arrives afterwards is never
/// lost (it no longer kills the process).
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    tokio::spawn(async move {
        let term = async {
            match term {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        let int = async {
            match int {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = term => {}
            _ = int => {}
        }
        child.cancel();
    });
    token
}
