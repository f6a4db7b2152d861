//! Sans-IO SMTP: bytes in, commands, message content and replies out.
//!
//! Nothing here reads a socket or a clock. Every receiver takes a byte slice and
//! says how much it consumed, so the session can feed it whatever arrived — one
//! byte or a whole pipelined burst — and every buffer it fills has a cap.
//!
//! - [`line`]: command lines, capped at [`line::MAX_LINE_BYTES`].
//! - [`command`]: one command line → [`Command`] or the reply that refuses it.
//! - [`data`]: DATA content (dot-unstuffing, the one true end marker) and BDAT chunks.
//! - [`reply`]: every reply postern sends, with Postfix's codes and texts.

pub mod command;
pub mod data;
pub mod line;
pub mod reply;

pub use command::{Command, DsnNotify, DsnRet, MailFrom, MailParams, RcptTo};
pub use data::{BdatNormalizer, DataReceiver, DataStatus};
pub use line::{Line, MAX_LINE_BYTES, next_line};
pub use reply::{Enhanced, Reply};
