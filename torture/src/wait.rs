//! Bounded waits: nothing here is timed, but nothing waits forever either. The
//! bound is generous (a loaded CI machine), and running out of it is a failure that
//! names what was awaited.

use std::future::Future;
use std::time::Duration;

/// Bound of every wait for something that normally takes well under a second.
pub const WAIT: Duration = Duration::from_secs(60);

/// `future`'s output, or an error naming `what` after [`WAIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(WAIT, future)
        .await
        .map_err(|_| format!("gave up after {WAIT:?} waiting for {what}"))
}

/// Waits until `done()` holds, checking every few milliseconds; an error naming
/// `what` after [`WAIT`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}
