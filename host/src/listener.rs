//! The SMTP listener: accepts connections on every `listen` address and runs
//! one [`Session`] task per connection.
//!
//! At most `default_process_limit` sessions run at once; further clients wait
//! in the kernel's backlog, as with Postfix's process limit. On shutdown the
//! listener stops accepting, every idle session answers 421 and closes, and
//! sessions in the middle of a message may finish it within a grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::smtp::session::{Session, SessionContext};

/// How long sessions may take to finish after shutdown is asked for.
pub const SHUTDOWN_GRACE_SECS: u64 = 30;

/// Binds every address; fails on the first that cannot be bound.
pub async fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for addr in addrs {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        out.push(l);
    }
    Ok(out)
}

/// Serves until `shutdown` turns true, then waits (up to the grace period)
/// for sessions to end.
pub async fn serve(
    listeners: Vec<TcpListener>,
    ctx: SessionContext,
    shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(ctx.config.default_process_limit));
    let mut acceptors = JoinSet::new();
    for listener in listeners {
        acceptors.spawn(accept_loop(
            listener,
            ctx.clone(),
            limit.clone(),
            shutdown.clone(),
        ));
    }
    while acceptors.join_next().await.is_some() {}
    // Every permit back means every session has ended.
    let all = u32::try_from(ctx.config.default_process_limit).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(
        Duration::from_secs(SHUTDOWN_GRACE_SECS),
        limit.acquire_many(all),
    )
    .await;
    if drained.is_err() {
        tracing::warn!("sessions still open after {SHUTDOWN_GRACE_SECS}s; closing them");
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: SessionContext,
    limit: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Take a session slot first: past the limit, clients wait in the backlog.
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p,
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let session = Session::new(stream, ctx.clone(), peer);
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    session.run(stop).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
