//! The time the sans-IO cores are told ([`proto::Connection`](crate::proto::Connection),
//! mdp's client dispatch, worker session and broker): tokio's clock as a
//! [`std::time::Instant`], so a test that pauses tokio's time
//! (`tokio::time::pause`) drives them too.

/// Now, by tokio's clock.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let before = zmtp::clock::now();
/// tokio::time::advance(std::time::Duration::from_secs(3600)).await;
/// assert!(zmtp::clock::now() - before >= std::time::Duration::from_secs(3600));
/// # }
/// ```
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
