//! `postern queue list`: the queue in `mailq`'s shape.
//!
//! Reads the spool directly (the daemon need not run). Markers after the id as
//! in Postfix: `*` active (being delivered), `!` on hold, none for deferred.

use std::io::{self, Write};

use chrono::{Local, TimeZone};

use super::file::{QueueFile, RcptState};
use super::{QueueDirs, QueueName};

/// Writes the listing to `out`.
pub fn mailq(dirs: &QueueDirs, out: &mut impl Write) -> io::Result<()> {
    let mut entries = Vec::new();
    for q in [QueueName::Active, QueueName::Deferred, QueueName::Hold] {
        let ids = match dirs.list(q) {
            Ok(ids) => ids,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for id in ids {
            // A file may be delivered and removed between list and read.
            if let Ok(msg) = QueueFile::read(&dirs.path(q, &id)) {
                entries.push((q, msg));
            }
        }
    }
    if entries.is_empty() {
        return writeln!(out, "Mail queue is empty");
    }
    writeln!(
        out,
        "-Queue ID-       --Size-- ----Arrival Time----  -Sender/Recipient-------"
    )?;
    let mut total = 0u64;
    for (q, msg) in &entries {
        let marker = match q {
            QueueName::Active => "*",
            QueueName::Hold => "!",
            _ => "",
        };
        let size = msg.content.len() as u64;
        total += size;
        let arrival = Local
            .timestamp_opt(i64::try_from(msg.envelope.arrival).unwrap_or(0), 0)
            .single()
            .map_or_else(String::new, |t| t.format("%a %b %e %H:%M:%S").to_string());
        let sender = if msg.envelope.sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            &msg.envelope.sender
        };
        writeln!(
            out,
            "{:<17}{:>8} {:<20}  {}",
            format!("{}{marker}", msg.id),
            size,
            arrival,
            sender
        )?;
        let mut last_reason: Option<&str> = None;
        for (rcpt, state) in msg.envelope.recipients.iter().zip(&msg.rcpts) {
            let RcptState::Pending(reason) = state else {
                continue;
            };
            if let Some(r) = reason.as_deref()
                && last_reason != Some(r)
            {
                writeln!(out, "{:>8}({r})", "")?;
                last_reason = Some(r);
            }
            writeln!(out, "{:>48}{}", "", rcpt.address)?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "-- {} Kbytes in {} Request{}.",
        total.div_ceil(1024),
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    )
}
