//! Polling a future once, without a timer.
//!
//! `tokio::time::timeout(Duration::ZERO, f)` is not "try once": when `f` is
//! not ready, it waits for the timer wheel's next tick (a millisecond).
//! [`once`] polls once and reports what it got.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Polls `fut` once: its output if it was ready, `Poll::Pending` otherwise
/// (the future may be polled again later).
pub async fn once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_and_pending() {
        let ready = std::pin::pin!(async { 7 });
        assert_eq!(once(ready).await, Poll::Ready(7));
        let mut never = std::pin::pin!(std::future::pending::<()>());
        assert_eq!(once(never.as_mut()).await, Poll::Pending);
    }
}
