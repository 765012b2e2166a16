//! The flag that ends a wait: a `watch` channel set to true by a signal
//! (the CLI) or by shutdown (the daemon). Every loop that waits selects on
//! [`aborted`] beside what it waits for.

use tokio::sync::watch;

/// Resolves once `abort` turns true; never, if its sender is gone.
pub async fn aborted(abort: &mut watch::Receiver<bool>) {
    loop {
        if *abort.borrow_and_update() {
            return;
        }
        if abort.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
