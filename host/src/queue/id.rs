//! Queue ids: unique per host, sortable by arrival, safe as file names.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A queue id: 13 hex digits of arrival time in microseconds, then 3 of a
/// per-process counter (Postfix's ids are also hex and time-based). Unique as
/// long as fewer than 4096 messages arrive in one microsecond; the spool also
/// creates files with `O_EXCL` and draws again on a clash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(String);

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl QueueId {
    /// A fresh id.
    pub fn generate() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xfff;
        QueueId(format!("{:013X}{:03X}", micros & 0x1f_ffff_ffff_ffff, n))
    }

    /// Accepts only what [`QueueId::generate`] makes (so a name from the
    /// command line cannot escape the queue directory).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
        .then(|| QueueId(s.to_owned()))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_parse() {
        let ids: std::collections::HashSet<QueueId> =
            (0..2000).map(|_| QueueId::generate()).collect();
        assert_eq!(ids.len(), 2000);
        for id in ids.iter().take(5) {
            assert_eq!(QueueId::parse(id.as_str()).as_ref(), Some(id));
        }
        assert_eq!(QueueId::parse("../../etc/passwd"), None);
        assert_eq!(QueueId::parse("0123456789abcdef"), None);
    }
}
