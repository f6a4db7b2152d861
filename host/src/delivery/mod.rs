//! Delivery: what happens to a queued message for one recipient.
//!
//! In: a [`crate::queue::QueueFile`] and a recipient index, from the queue
//! manager. Out: a [`DeliveryOutcome`]. Local delivery resolves the address
//! ([`resolve`]: domain, `recipient_delimiter`, aliases(5)) and writes into the
//! user's Maildir ([`maildir`]).
//!
//! Exactly-once: every Maildir file's unique name carries the queue id and the
//! recipient index. When the queue manager recovers a message that was being
//! delivered during a crash, delivery first looks for that name in the
//! Maildir and reports the recipient as delivered if it is already there.

pub mod local;
pub mod maildir;
pub mod resolve;

pub use local::LocalDelivery;
pub use resolve::{Resolver, Target};

/// The result of one delivery attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered; the text says where (for the log).
    Delivered(String),
    /// Failed for now; retried later. The text starts with an enhanced code.
    TempFail(String),
    /// Failed for good. The text starts with an enhanced code.
    PermFail(String),
}
