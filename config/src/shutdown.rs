//! Graceful stop: SIGINT (Ctrl-C) or SIGTERM cancels a [`CancellationToken`] that the daemon's
//! tasks watch.

use tokio_util::sync::CancellationToken;

/// The SIGINT and SIGTERM handlers could not be installed.
///
/// **Fault:** the system (out of resources, or no tokio runtime with signals enabled).
/// **Recovery:** exit with code 1 before starting anything.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the SIGINT and SIGTERM handlers: {0}")]
pub struct SignalError(#[from] std::io::Error);

/// Installs the SIGINT and SIGTERM handlers now, so that a signal arriving right after start-up
/// is neither lost nor fatal, and spawns a task that on the first of them logs
/// `shutting down`, runs `on_signal` (e.g. telling systemd the service is stopping) and then
/// cancels `shutdown`.
///
/// Call it inside a tokio runtime with I/O enabled (it panics outside of one, like
/// `tokio::spawn`).
///
/// # Errors
///
/// [`SignalError`] when a handler cannot be installed.
pub fn cancel_on_signal(
    shutdown: CancellationToken,
    on_signal: impl FnOnce() + Send + 'static,
) -> Result<(), SignalError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            stop(shutdown, on_signal);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop(shutdown, on_signal);
        }
    });
    Ok(())
}

/// What follows the signal.
fn stop(shutdown: CancellationToken, on_signal: impl FnOnce()) {
    tracing::info!("shutting down");
    on_signal();
    shutdown.cancel();
}

#[cfg(all(test, unix))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn sigterm_runs_the_callback_then_cancels_the_token() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let token = CancellationToken::new();
            // 1: the callback ran before the token was cancelled; 2: after.
            let seen = Arc::new(AtomicU8::new(0));
            let (t, s) = (token.clone(), Arc::clone(&seen));
            cancel_on_signal(token.clone(), move || {
                s.store(if t.is_cancelled() { 2 } else { 1 }, Ordering::SeqCst);
            })
            .unwrap();
            assert!(!token.is_cancelled());
            let killed = std::process::Command::new("kill")
                .args(["-TERM", &std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
            tokio::time::timeout(Duration::from_secs(10), token.cancelled())
                .await
                .unwrap();
            assert_eq!(seen.load(Ordering::SeqCst), 1);
        });
    }
}
