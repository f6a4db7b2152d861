//! Local delivery of one recipient of one queued message (Postfix's local(8)).
//!
//! Resolves the recipient (aliases, extension), finds each target's mail home
//! and Maildir, adds `Return-Path:` and `Delivered-To:`, and writes the file.
//! Runs on a blocking thread: everything here is synchronous file I/O.

use std::path::PathBuf;

use std::sync::Arc;

use crate::config::{Config, MailHome, Stage};
use crate::plugin::types::{
    ClientInfo, DeliveryInfo, Edit, EnvelopeInfo, HomeDir, HookInput, Verdict,
};
use crate::policy::{Policy, PolicyTxn};
use crate::queue::{Envelope, EnvelopeRcpt, QueueFile, QueueId, Spool};
use crate::smtp::proto::Reply;

use super::resolve::{Destination, Resolver, Target};
use super::{DeliveryOutcome, maildir};

/// The local delivery agent.
#[derive(Debug, Clone)]
pub struct LocalDelivery {
    resolver: Resolver,
    policy: Arc<Policy>,
    spool: Arc<Spool>,
    hostname: String,
    mail_home: MailHome,
    home_mailbox: String,
}

impl LocalDelivery {
    /// The agent for a configuration.
    pub fn new(cfg: &Config, resolver: Resolver, policy: Arc<Policy>, spool: Arc<Spool>) -> Self {
        LocalDelivery {
            resolver,
            policy,
            spool,
            hostname: cfg.myhostname.clone(),
            mail_home: cfg.mail_home.clone(),
            home_mailbox: cfg.home_mailbox.clone(),
        }
    }

    /// Delivers recipient `idx` of `msg`. With `recovering`, a delivery already
    /// present in the Maildir (from before a crash) counts as done. `handed`
    /// is the accepting transaction ([`Policy::take_over`]): the first deliver
    /// stage that runs continues in it.
    pub fn deliver(
        &self,
        msg: &QueueFile,
        idx: usize,
        recovering: bool,
        handed: &mut Option<PolicyTxn>,
    ) -> DeliveryOutcome {
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
            match self.deliver_target(msg, target, &key, recovering, handed) {
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
        handed: &mut Option<PolicyTxn>,
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
                        "delivered to maildir {} (found after restart)",
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
        let target_info = DeliveryInfo {
            recipient: address.clone(),
            user: user.clone(),
            extension: match target {
                Target::Mailbox { extension, .. } => extension.clone(),
                _ => None,
            },
            size: msg.content.len() as u64,
            home: Some(HomeDir {
                path: home.clone(),
                owner: owner.map(|(uid, _)| uid),
            }),
        };
        let plan = match self.deliver_stage(msg, &target_info, handed) {
            Ok(plan) => plan,
            Err(outcome) => return outcome,
        };
        let content = plan.content.as_deref().unwrap_or(&msg.content);
        if let Some(to) = plan.redirect {
            return self.redirect(msg, address, &to, content);
        }
        let dir = match &plan.folder {
            Some(f) => dir.join(format!(".{f}")),
            None => dir,
        };
        let prefix = format!(
            "Return-Path: <{}>\nDelivered-To: {address}\n",
            msg.envelope.sender
        );
        match maildir::deliver(&dir, key, &self.hostname, owner, prefix.as_bytes(), content) {
            Ok(_) => DeliveryOutcome::Delivered(format!("delivered to maildir {}", dir.display())),
            Err(e) => {
                DeliveryOutcome::TempFail(format!("4.2.0 cannot write to {}: {e}", dir.display()))
            }
        }
    }

    /// Runs the deliver chain for one target, if there is one. `Err` is the
    /// recipient's outcome already decided (discarded, refused, deferred).
    fn deliver_stage(
        &self,
        msg: &QueueFile,
        target: &DeliveryInfo,
        handed: &mut Option<PolicyTxn>,
    ) -> Result<DeliveryPlan, DeliveryOutcome> {
        if !self.policy.has_chain(Stage::Deliver) {
            return Ok(DeliveryPlan::default());
        }
        let mut ptxn = handed.take().unwrap_or_else(|| self.policy.transaction());
        let envelope = EnvelopeInfo {
            sender: msg.envelope.sender.clone(),
            recipients: msg
                .envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
        };
        let client = ClientInfo::queued(msg.envelope.client_ip, &msg.envelope.helo);
        let message = msg.content.clone();
        let input = HookInput::Deliver {
            client: &client,
            delivery: target,
            envelope: &envelope,
            message,
        };
        // Delivery runs on a blocking thread; the plugin call is async.
        let d = tokio::runtime::Handle::current().block_on(ptxn.run(&input));
        // Its instances go to the housekeeper.
        drop(ptxn);
        let who = d.by.unwrap_or_else(|| "policy".to_owned());
        let why = |r: &Reply| {
            let code = r.enhanced.map_or_else(String::new, |e| format!("{e} "));
            format!("{code}{} (by {who})", r.text)
        };
        match d.verdict {
            Verdict::Continue | Verdict::Accept => {}
            Verdict::Discard => {
                return Err(DeliveryOutcome::Delivered(format!("discarded by {who}")));
            }
            Verdict::Reject(r) | Verdict::Disconnect(r) if r.code >= 500 => {
                return Err(DeliveryOutcome::PermFail(why(&r)));
            }
            Verdict::Reject(r) | Verdict::Defer(r) | Verdict::Disconnect(r) => {
                return Err(DeliveryOutcome::TempFail(why(&r)));
            }
            Verdict::Hold(reason) => {
                return Err(DeliveryOutcome::TempFail(format!(
                    "4.3.0 held by {who}: {reason}"
                )));
            }
        }
        let mut plan = DeliveryPlan::default();
        let mut header_edits = Vec::new();
        for e in d.edits {
            match e {
                Edit::SetFolder(f) => match maildir_folder(&f) {
                    Some(folder) => plan.folder = folder,
                    None => {
                        tracing::warn!(plugin = %who, "unusable folder name \"{f}\"; delivering to the inbox")
                    }
                },
                Edit::Redirect(a) => plan.redirect = Some(a),
                Edit::Header(h) => header_edits.push(h),
                other => {
                    tracing::debug!(plugin = %who, "edit {other:?} does not apply at the deliver stage")
                }
            }
        }
        if !header_edits.is_empty() {
            let mut content = msg.content.to_vec();
            crate::policy::headers::apply(&mut content, &header_edits);
            plan.content = Some(content);
        }
        Ok(plan)
    }

    /// Re-queues the message for `to` (a `redirect` edit), marked with
    /// `Delivered-To: <from>` so that a redirect loop ends as a loop error.
    fn redirect(&self, msg: &QueueFile, from: &str, to: &str, content: &[u8]) -> DeliveryOutcome {
        let envelope = Envelope {
            sender: msg.envelope.sender.clone(),
            params: msg.envelope.params.clone(),
            client_ip: None,
            helo: String::new(),
            arrival: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            recipients: vec![EnvelopeRcpt {
                address: to.to_owned(),
                notify: None,
                orcpt: None,
            }],
        };
        let prefix = format!("Delivered-To: {from}\r\n").into_bytes();
        let queued = tokio::runtime::Handle::current().block_on(self.spool.enqueue(
            QueueId::generate(),
            envelope,
            prefix,
            content.to_vec(),
            false,
        ));
        match queued {
            Ok(id) => DeliveryOutcome::Delivered(format!("redirected to <{to}> as {id}")),
            Err(e) => {
                DeliveryOutcome::TempFail(format!("4.3.0 cannot queue the redirect to <{to}>: {e}"))
            }
        }
    }

    /// The transaction that accepted `queue_id`, when it was handed over
    /// for the message's delivery ([`Policy::hand_over`]).
    pub fn handed_over(&self, queue_id: &str) -> Option<PolicyTxn> {
        self.policy.take_over(queue_id)
    }

    /// The mail home, and who should own new files there.
    fn mail_home(&self, user: &str) -> Result<(PathBuf, maildir::Owner), DeliveryOutcome> {
        mail_home(&self.mail_home, user)
            .ok_or_else(|| DeliveryOutcome::PermFail(format!("5.1.1 unknown user: \"{user}\"")))
    }
}

/// `user`'s mail home, and the owner delivered files get (the user, when
/// postern runs as root and homes come from /etc/passwd, as Postfix's
/// local(8) runs as the recipient). `None`: no such user.
pub fn mail_home(mail_home: &MailHome, user: &str) -> Option<(PathBuf, maildir::Owner)> {
    match mail_home {
        MailHome::Template(t) => Some((PathBuf::from(t.replace("$user", user)), None)),
        MailHome::Passwd => {
            let (home, uid, gid) = passwd_entry(user)?;
            Some((home, running_as_root().then_some((uid, gid))))
        }
    }
}

/// What the deliver chain decided for one target.
#[derive(Debug, Default)]
struct DeliveryPlan {
    /// A Maildir++ folder below the Maildir (`None`: the inbox).
    folder: Option<String>,
    /// Deliver there instead.
    redirect: Option<String>,
    /// The content with header edits applied.
    content: Option<Vec<u8>>,
}

/// A Maildir++ folder name: `Spam`, `Lists.rust` (levels separated by dots).
/// `INBOX` or empty means the inbox (`Some(None)`); anything that could leave
/// the Maildir is refused (`None`).
fn maildir_folder(name: &str) -> Option<Option<String>> {
    let name = name
        .trim()
        .trim_start_matches("INBOX.")
        .trim_start_matches('.');
    if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
        return Some(None);
    }
    let ok = name.len() <= 200
        && name.split('.').all(|level| !level.is_empty())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ' | '+'));
    ok.then(|| Some(name.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::maildir_folder;

    #[test]
    fn folder_names_stay_inside_the_maildir() {
        assert_eq!(maildir_folder("Spam"), Some(Some("Spam".into())));
        assert_eq!(
            maildir_folder("INBOX.Lists.rust"),
            Some(Some("Lists.rust".into()))
        );
        assert_eq!(maildir_folder("INBOX"), Some(None));
        assert_eq!(maildir_folder(""), Some(None));
        for bad in ["../x", "a/b", "a..b", "Spam.", "x\0"] {
            assert_eq!(maildir_folder(bad), None, "{bad}");
        }
    }
}
