//! Local delivery of one recipient of one queued message (Postfix's local(8)).
//!
//! Resolves the recipient (aliases, extension), finds each target's mail home
//! and Maildir, adds `Return-Path:` and `Delivered-To:`, and writes the file.
//! Runs on a blocking thread: everything here is synchronous file I/O.

use std::path::PathBuf;

use crate::config::{Config, MailHome};
use crate::queue::QueueFile;

use super::resolve::{Destination, Resolver, Target};
use super::{DeliveryOutcome, maildir};

/// The local delivery agent.
#[derive(Debug, Clone)]
pub struct LocalDelivery {
    resolver: Resolver,
    hostname: String,
    mail_home: MailHome,
    home_mailbox: String,
}

impl LocalDelivery {
    /// The agent for a configuration.
    pub fn new(cfg: &Config, resolver: Resolver) -> Self {
        LocalDelivery {
            resolver,
            hostname: cfg.myhostname.clone(),
            mail_home: cfg.mail_home.clone(),
            home_mailbox: cfg.home_mailbox.clone(),
        }
    }

    /// Delivers recipient `idx` of `msg`. With `recovering`, a delivery already
    /// present in the Maildir (from before a crash) counts as done.
    pub fn deliver(&self, msg: &QueueFile, idx: usize, recovering: bool) -> DeliveryOutcome {
        let Some(rcpt) = msg.envelope.recipients.get(idx) else {
            return DeliveryOutcome::PermFail("5.3.0 no such recipient".into());
        };
        let (user, extension, domain) = match self.resolver.classify(&rcpt.address) {
            Destination::Local {
                user,
                extension,
                domain,
            } => (user, extension, domain),
            Destination::Remote(domain) => {
                return DeliveryOutcome::PermFail(format!(
                    "5.4.6 no route to {domain}: outbound delivery is not available"
                ));
            }
        };
        let targets = self.resolver.expand(&user, extension.as_deref(), &domain);
        let key = maildir::delivery_key(msg.id.as_str(), idx);
        let mut delivered = Vec::new();
        // A target's failure decides the recipient's outcome; temporary beats
        // permanent so that a retry can still succeed for every target.
        let mut temp = None;
        let mut perm = None;
        for target in &targets {
            match self.deliver_target(msg, target, &key, recovering) {
                DeliveryOutcome::Delivered(d) => delivered.push(d),
                DeliveryOutcome::TempFail(why) => temp = temp.or(Some(why)),
                DeliveryOutcome::PermFail(why) => perm = perm.or(Some(why)),
            }
        }
        match (temp, perm) {
            (Some(why), _) => DeliveryOutcome::TempFail(why),
            (None, Some(why)) if delivered.is_empty() => DeliveryOutcome::PermFail(why),
            _ => DeliveryOutcome::Delivered(delivered.join(", ")),
        }
    }

    fn deliver_target(
        &self,
        msg: &QueueFile,
        target: &Target,
        key: &str,
        recovering: bool,
    ) -> DeliveryOutcome {
        let (user, address) = match target {
            Target::Mailbox { user, address, .. } => (user, address),
            Target::Forward(to) => {
                return DeliveryOutcome::PermFail(format!(
                    "5.4.6 cannot forward to <{to}>: outbound delivery is not available"
                ));
            }
            Target::Unsupported(what) => {
                return DeliveryOutcome::PermFail(format!(
                    "5.3.5 alias target not supported: {what}"
                ));
            }
        };
        if !super::resolve::safe_user(user) {
            return DeliveryOutcome::PermFail(format!("5.1.3 unsafe user name \"{user}\""));
        }
        let (home, owner) = match self.mail_home(user) {
            Ok(h) => h,
            Err(out) => return out,
        };
        let dir = home.join(&self.home_mailbox);
        if has_delivered_to(&msg.content, address) {
            return DeliveryOutcome::PermFail(format!("5.4.6 mail forwarding loop for {address}"));
        }
        if recovering {
            match maildir::already_delivered(&dir, key) {
                Ok(true) => {
                    return DeliveryOutcome::Delivered(format!(
                        "{} (found after restart)",
                        dir.display()
                    ));
                }
                Ok(false) => {}
                Err(e) => {
                    return DeliveryOutcome::TempFail(format!(
                        "4.2.0 cannot read {}: {e}",
                        dir.display()
                    ));
                }
            }
        }
        let prefix = format!(
            "Return-Path: <{}>\nDelivered-To: {address}\n",
            msg.envelope.sender
        );
        match maildir::deliver(
            &dir,
            key,
            &self.hostname,
            owner,
            prefix.as_bytes(),
            &msg.content,
        ) {
            Ok(_) => DeliveryOutcome::Delivered(format!("{}", dir.display())),
            Err(e) => {
                DeliveryOutcome::TempFail(format!("4.2.0 cannot write to {}: {e}", dir.display()))
            }
        }
    }

    /// The mail home, and who should own new files there.
    fn mail_home(&self, user: &str) -> Result<(PathBuf, maildir::Owner), DeliveryOutcome> {
        match &self.mail_home {
            MailHome::Template(t) => Ok((PathBuf::from(t.replace("$user", user)), None)),
            MailHome::Passwd => {
                let (home, uid, gid) = passwd_entry(user).ok_or_else(|| {
                    DeliveryOutcome::PermFail(format!("5.1.1 unknown user: \"{user}\""))
                })?;
                // As root, deliver as the user would (Postfix's local(8) runs as the recipient).
                Ok((home, running_as_root().then_some((uid, gid))))
            }
        }
    }
}

/// The home directory, uid and gid of `user` in /etc/passwd.
fn passwd_entry(user: &str) -> Option<(PathBuf, u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(':').collect();
        if fields.len() < 6 || fields[0] != user {
            return None;
        }
        Some((
            PathBuf::from(fields[5]),
            fields[2].parse().ok()?,
            fields[3].parse().ok()?,
        ))
    })
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether the header section already has `Delivered-To: <address>` (a loop).
fn has_delivered_to(content: &[u8], address: &str) -> bool {
    let end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(content.len(), |p| p + 2);
    content[..end]
        .split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter_map(|l| l.split_once(':'))
        .any(|(name, value)| {
            name.eq_ignore_ascii_case("Delivered-To") && value.trim().eq_ignore_ascii_case(address)
        })
}
