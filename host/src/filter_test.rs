//! `postern filter-test`: every stage's chain run on one message, without
//! sending mail — the operator's way to try rules.
//!
//! In: a configuration, an .eml file and the envelope to pretend. Out: one
//! line per chain step with its verdict and edits, stage by stage, the way the
//! server would run them (connect, helo, mail, each rcpt, data, then deliver
//! for each local recipient). Plugins run for real (DNS included); their kv
//! store is a scratch one, so trying rules never touches the server's state.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, Stage};
use crate::delivery::Resolver;
use crate::delivery::resolve::Destination;
use crate::plugin::PluginRuntime;
use crate::plugin::types::{ClientInfo, DeliveryInfo, Edit, EnvelopeInfo, HookInput, Verdict};
use crate::policy::{Decision, PolicySet, PolicyTxn};

/// What to pretend.
#[derive(Debug, Clone)]
pub struct Pretend {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO, in order.
    pub to: Vec<String>,
    /// The client's address.
    pub client: IpAddr,
    /// The HELO name.
    pub helo: String,
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Continue => "continue".into(),
        Verdict::Accept => "accept".into(),
        Verdict::Discard => "discard".into(),
        Verdict::Hold(why) => format!("hold ({why})"),
        Verdict::Reject(r) | Verdict::Defer(r) | Verdict::Disconnect(r) => {
            let kind = match v {
                Verdict::Reject(_) => "reject",
                Verdict::Defer(_) => "defer",
                _ => "disconnect",
            };
            let enhanced = r.enhanced.map_or_else(String::new, |e| format!(" {e}"));
            format!("{kind} {}{enhanced} {}", r.code, r.text)
        }
    }
}

fn edit_text(e: &Edit) -> String {
    use crate::policy::headers::HeaderEdit;
    match e {
        Edit::Header(HeaderEdit::Add(n, v)) => format!("add-header {n}: {v}"),
        Edit::Header(HeaderEdit::Prepend(n, v)) => format!("prepend-header {n}: {v}"),
        Edit::Header(HeaderEdit::Replace(n, v)) => format!("replace-header {n}: {v}"),
        Edit::Header(HeaderEdit::Remove(n)) => format!("remove-header {n}"),
        Edit::ChangeSender(s) => format!("change-sender <{s}>"),
        Edit::AddRecipient(r) => format!("add-recipient <{r}>"),
        Edit::RemoveRecipient(r) => format!("remove-recipient <{r}>"),
        Edit::SetFolder(f) => format!("set-folder {f}"),
        Edit::Redirect(a) => format!("redirect <{a}>"),
    }
}

/// Appends the trace of one stage's decision.
fn report(out: &mut String, label: &str, d: &Decision) {
    for step in &d.trace {
        let args = if step.args.is_empty() {
            String::new()
        } else {
            format!(" {}", step.args.join(" "))
        };
        let result = match &step.result {
            Ok(o) => {
                let mut t = verdict_text(&o.verdict);
                for e in &o.edits {
                    let _ = write!(t, " [{}]", edit_text(e));
                }
                t
            }
            Err(e) => format!("plugin failure: {e}"),
        };
        let _ = writeln!(out, "{label}: {}{args}: {result}", step.plugin);
    }
    let _ = writeln!(out, "{label}: => {}", verdict_text(&d.verdict));
}

/// Runs every chain on `message`; the report text.
pub async fn run(cfg: &Config, message: &Path, pretend: &Pretend) -> Result<String, String> {
    let raw = std::fs::read(message).map_err(|e| format!("{}: {e}", message.display()))?;
    // The spool's form: CR LF line ends.
    let mut content = Vec::with_capacity(raw.len() + raw.len() / 40);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            content.push(b'\r');
        }
        content.push(b);
    }
    let content = Arc::new(content);
    let scratch = std::env::temp_dir().join(format!("postern-filter-test-{}", std::process::id()));
    let runtime = PluginRuntime::new(&scratch, &cfg.plugin_cache_directory, &cfg.dns_nameservers)?;
    let result = async {
        let plugins = runtime.load(cfg, None).await.map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        let set = Arc::new(PolicySet {
            chains: cfg.chains.clone(),
            plugins: Arc::new(plugins),
        });
        let resolver = Resolver::load(cfg).map_err(|e| e.to_string())?;
        Ok::<_, String>(trace(cfg, &set, &resolver, content, pretend).await)
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn trace(
    cfg: &Config,
    set: &Arc<PolicySet>,
    resolver: &Resolver,
    content: Arc<Vec<u8>>,
    p: &Pretend,
) -> String {
    let mut out = String::new();
    let client = ClientInfo {
        ip: Some(p.client),
        port: 0,
        helo: Some(p.helo.clone()),
        esmtp: true,
        tls: false,
        auth_user: None,
        in_mynetworks: cfg.in_mynetworks(p.client),
        improper_pipelining: false,
    };
    let mut txn = PolicyTxn::traced(set.clone());
    let mut envelope = EnvelopeInfo {
        sender: p.from.clone(),
        recipients: Vec::new(),
    };
    for stage in [Stage::Connect, Stage::Helo, Stage::Mail] {
        let input = match stage {
            Stage::Connect => HookInput::Connect { client: &client },
            Stage::Helo => HookInput::Helo {
                client: &client,
                helo: &p.helo,
            },
            _ => HookInput::Mail {
                client: &client,
                sender: &p.from,
            },
        };
        report(&mut out, stage.name(), &txn.run(&input).await);
    }
    for rcpt in &p.to {
        let d = txn
            .run(&HookInput::Rcpt {
                client: &client,
                envelope: &envelope,
                rcpt,
            })
            .await;
        report(&mut out, &format!("rcpt <{rcpt}>"), &d);
        envelope.recipients.push(rcpt.clone());
    }
    let d = txn
        .run(&HookInput::Data {
            client: &client,
            envelope: &envelope,
            message: content.clone(),
        })
        .await;
    report(&mut out, "data", &d);
    for rcpt in &p.to {
        let Destination::Local {
            user, extension, ..
        } = resolver.classify(rcpt)
        else {
            let _ = writeln!(out, "deliver <{rcpt}>: not a local recipient");
            continue;
        };
        let home = crate::delivery::local::mail_home(&cfg.mail_home, &user);
        let delivery = DeliveryInfo {
            recipient: rcpt.clone(),
            user,
            extension,
            size: content.len() as u64,
            home: home.map(|(path, owner)| crate::plugin::types::HomeDir {
                path,
                owner: owner.map(|(uid, _)| uid),
            }),
        };
        // Deliver-stage instances are per delivery, as in the server, and
        // know the client as the queue file records it.
        let queued = ClientInfo::queued(client.ip, &p.helo);
        let mut dtxn = PolicyTxn::traced(set.clone());
        let d = dtxn
            .run(&HookInput::Deliver {
                client: &queued,
                delivery: &delivery,
                envelope: &envelope,
                message: content.clone(),
            })
            .await;
        report(&mut out, &format!("deliver <{rcpt}>"), &d);
    }
    out
}
