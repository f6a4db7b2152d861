//! Where the session meets the plugin chains: which chain runs when, and
//! what a verdict does to the conversation.
//!
//! With `smtpd_delay_reject = yes` (Postfix's default) the connect, helo and
//! mail chains run at the first RCPT of each transaction, in that order, so a
//! refusal is reported there with the recipient known; every later RCPT of
//! the transaction gets the same refusal. With `no`, each runs at its own
//! command; a refused connect or helo answers every later command.
//!
//! Verdicts: `reject`/`defer` refuse the command; `disconnect` replies and
//! hangs up; `discard` and `hold` mark the transaction (accepted, then dropped
//! or held); `accept` and `continue` go on. Envelope and header edits are
//! applied to the transaction.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, SessionMarks, State, Transaction};
use crate::config::Stage;
use crate::plugin::types::{ClientInfo, Edit, EnvelopeInfo, HookInput, Verdict};
use crate::policy::{Decision, PolicyTxn, SMTP_STAGES};
use crate::smtp::proto::{RcptTo, Reply};

/// The first transaction's plugin instances, made ahead ([`Session::warm_up`]).
pub(super) enum Warming {
    /// A spare, ready.
    Ready(PolicyTxn),
    /// Being made in another task.
    Making(tokio::task::JoinHandle<PolicyTxn>),
}

/// The chains `smtpd_delay_reject` runs at the first RCPT, in this order.
const DELAYED: [Stage; 3] = [Stage::Connect, Stage::Helo, Stage::Mail];

/// What a decision means for the command that triggered it.
#[derive(Debug, Clone)]
pub(super) enum Gate {
    Pass,
    Refuse(Reply),
    Close(Reply),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Ends the transaction: plugin instances are per transaction (they go
    /// to the housekeeper).
    pub(super) fn end_transaction(&mut self) {
        self.txn = None;
        self.ptxn = None;
    }

    pub(super) fn client_info(&self) -> ClientInfo {
        ClientInfo {
            ip: Some(self.peer.ip()),
            port: self.peer.port(),
            helo: self.greeting.as_ref().map(|g| g.name.clone()),
            esmtp: self.greeting.as_ref().is_some_and(|g| g.esmtp),
            tls: false,
            auth_user: None,
            in_mynetworks: self.cfg().in_mynetworks(self.peer.ip()),
            improper_pipelining: self.improper_pipelining,
        }
    }

    fn envelope_info(&self) -> EnvelopeInfo {
        self.txn
            .as_ref()
            .map_or_else(EnvelopeInfo::default, |t| EnvelopeInfo {
                sender: t.mail.address.clone(),
                recipients: t.rcpts.iter().map(|r| r.address.clone()).collect(),
            })
    }

    /// Gets the first transaction's plugin instances ready while the client
    /// greets and names its sender: a spare made ahead
    /// ([`crate::policy::Policy::spare`]), or else made now in another task.
    /// A client's round trips cost the server nothing, so the instances are
    /// ready (or nearly) when the first chain runs.
    pub(super) fn warm_up(&mut self) {
        let policy = &self.ctx.policy;
        if self.ptxn.is_some() || !policy.has_any_chain(&SMTP_STAGES) {
            return;
        }
        self.warming = Some(match policy.spare() {
            Some(ptxn) => Warming::Ready(ptxn),
            None => {
                let mut ptxn = policy.transaction();
                Warming::Making(tokio::spawn(async move {
                    ptxn.warm(&SMTP_STAGES).await;
                    ptxn
                }))
            }
        });
    }

    /// Takes over the warmed-up instances, unless a reload replaced the
    /// policy they were made for.
    async fn adopt_warm(&mut self) {
        let ptxn = match self.warming.take() {
            None => return,
            Some(Warming::Ready(ptxn)) => ptxn,
            Some(Warming::Making(task)) => match task.await {
                Ok(ptxn) => ptxn,
                Err(_) => return,
            },
        };
        // Otherwise it ends here.
        if self.ptxn.is_none() && ptxn.is_current(&self.ctx.policy) {
            self.ptxn = Some(ptxn);
        }
    }

    /// The transaction's plugin instances, when `stage` has a chain at all
    /// (an empty chain costs nothing).
    fn ptxn_for(&mut self, stage: Stage) -> Option<&mut PolicyTxn> {
        if self.ptxn.is_none() {
            let policy = &self.ctx.policy;
            if !policy.has_any_chain(&Stage::ALL) {
                return None;
            }
            self.ptxn = Some(policy.spare().unwrap_or_else(|| policy.transaction()));
        }
        self.ptxn.as_mut().filter(|t| t.has_chain(stage))
    }

    async fn run_chain(&mut self, stage: Stage, rcpt: Option<&str>) -> Option<Decision> {
        self.adopt_warm().await;
        // Without a chain at this stage, build nothing (the common, plugin-free path).
        self.ptxn_for(stage)?;
        let client = self.client_info();
        let envelope = self.envelope_info();
        let helo = client.helo.clone().unwrap_or_default();
        let sender = envelope.sender.clone();
        let input = match stage {
            Stage::Connect => HookInput::Connect { client: &client },
            Stage::Helo => HookInput::Helo {
                client: &client,
                helo: &helo,
            },
            Stage::Mail => HookInput::Mail {
                client: &client,
                sender: &sender,
            },
            Stage::Rcpt => HookInput::Rcpt {
                client: &client,
                envelope: &envelope,
                rcpt: rcpt.unwrap_or_default(),
            },
            Stage::Data | Stage::Deliver => return None,
        };
        let ptxn = self.ptxn_for(stage)?;
        Some(ptxn.run(&input).await)
    }

    /// Applies a decision's verdict and edits to the transaction (or, before
    /// MAIL, to the session's marks).
    fn apply(&mut self, stage: Stage, d: Decision) -> Gate {
        let mut marks = match self.txn.as_mut() {
            Some(t) => Marks::Txn(t),
            None => Marks::Session(&mut self.session_marks),
        };
        let gate = match d.verdict {
            Verdict::Continue | Verdict::Accept => Gate::Pass,
            Verdict::Reject(r) | Verdict::Defer(r) => return Gate::Refuse(r),
            Verdict::Disconnect(r) => return Gate::Close(r),
            Verdict::Discard => {
                marks.discard();
                Gate::Pass
            }
            Verdict::Hold(why) => {
                marks.hold(why);
                Gate::Pass
            }
        };
        for e in d.edits {
            marks.edit(e, stage);
        }
        gate
    }

    fn gate(&mut self, stage: Stage, d: Option<Decision>) -> Result<(), Reply> {
        let gate = d.map_or(Gate::Pass, |d| self.apply(stage, d));
        self.pass(gate)
    }

    /// What a gate means for the command: on `Close`, the command's handler
    /// sends the reply (once) and the session ends after it.
    fn pass(&mut self, gate: Gate) -> Result<(), Reply> {
        match gate {
            Gate::Pass => Ok(()),
            Gate::Refuse(r) => Err(r),
            Gate::Close(r) => {
                self.state = State::Closed;
                Err(r)
            }
        }
    }

    /// At connect (only with `smtpd_delay_reject = no`): a disconnect verdict
    /// replaces the greeting; a refusal answers every later command.
    pub(super) async fn connect_gate(&mut self) -> Option<Reply> {
        if self.cfg().smtpd_delay_reject {
            return None;
        }
        let d = self.run_chain(Stage::Connect, None).await?;
        match self.apply(Stage::Connect, d) {
            Gate::Pass => None,
            Gate::Refuse(r) => {
                self.session_reject = Some(r);
                None
            }
            Gate::Close(r) => Some(r),
        }
    }

    pub(super) async fn helo_gate(&mut self) -> Result<(), Reply> {
        if self.cfg().smtpd_delay_reject {
            return Ok(());
        }
        let d = self.run_chain(Stage::Helo, None).await;
        self.gate(Stage::Helo, d)
    }

    /// At MAIL: the mail chain (without delay), and the session's marks.
    pub(super) async fn mail_gate(&mut self) -> Result<(), Reply> {
        let marks = self.session_marks.clone();
        if let Some(t) = self.txn.as_mut() {
            t.discard |= marks.discard;
            t.hold = t.hold.take().or(marks.hold);
            t.edits.extend(marks.edits);
        }
        if self.cfg().smtpd_delay_reject {
            return Ok(());
        }
        let d = self.run_chain(Stage::Mail, None).await;
        self.gate(Stage::Mail, d)
    }

    /// At RCPT: the delayed chains' verdict (run once per transaction), then
    /// the rcpt chain.
    pub(super) async fn rcpt_gate(&mut self, rcpt: &str) -> Result<(), Reply> {
        if self.cfg().smtpd_delay_reject {
            let gate = match self.txn.as_ref().and_then(|t| t.pre_rcpt.clone()) {
                Some(gate) => gate,
                None => self.delayed_chains().await,
            };
            self.pass(gate)?;
        }
        let d = self.run_chain(Stage::Rcpt, Some(rcpt)).await;
        self.gate(Stage::Rcpt, d)
    }

    /// With `smtpd_delay_reject`: runs the connect, helo and mail chains in
    /// that order, applying each one's marks and edits to the transaction,
    /// until one refuses. The verdict is kept for every RCPT of the
    /// transaction.
    async fn delayed_chains(&mut self) -> Gate {
        let mut gate = Gate::Pass;
        for stage in DELAYED {
            if stage == Stage::Helo && self.greeting.is_none() {
                continue;
            }
            if let Some(d) = self.run_chain(stage, None).await {
                gate = self.apply(stage, d);
                if !matches!(gate, Gate::Pass) {
                    break;
                }
            }
        }
        if let Some(t) = self.txn.as_mut() {
            t.pre_rcpt = Some(gate.clone());
        }
        gate
    }

    /// Runs the delayed chains (`smtpd_delay_reject`) while an ESMTP client
    /// that has had its MAIL accepted and has sent nothing more composes its
    /// first RCPT: their inputs (the client, its HELO name, the sender) are
    /// final by then, the client's round trip costs the server nothing, and
    /// the RCPT is answered sooner. The verdict still answers the RCPT. A
    /// pipelining client (RCPT already buffered) gets them at RCPT, as
    /// before.
    pub(super) async fn ahead_of_rcpt(&mut self) {
        let ready = self.cfg().smtpd_delay_reject
            && matches!(self.state, State::Command)
            && self.rbuf.is_empty()
            && self.greeting.as_ref().is_some_and(|g| g.esmtp)
            && self
                .txn
                .as_ref()
                .is_some_and(|t| t.pre_rcpt.is_none() && t.rcpts.is_empty());
        if ready && self.ctx.policy.has_any_chain(&DELAYED) {
            self.delayed_chains().await;
        }
    }

    /// At the end of data: the data chain over the whole message.
    pub(super) async fn data_gate(&mut self) -> Result<(), Reply> {
        self.adopt_warm().await;
        if self.ptxn_for(Stage::Data).is_none() {
            return Ok(());
        }
        let client = self.client_info();
        let envelope = self.envelope_info();
        let Some(txn) = self.txn.as_mut() else {
            return Ok(());
        };
        // The body is shared with the plugins' message resource, not copied.
        let message = std::sync::Arc::new(std::mem::take(&mut txn.body));
        let input = HookInput::Data {
            client: &client,
            envelope: &envelope,
            message: message.clone(),
        };
        let d = match self.ptxn_for(Stage::Data) {
            Some(p) => p.run(&input).await,
            None => Decision::default(),
        };
        drop(input);
        let body = std::sync::Arc::try_unwrap(message).unwrap_or_else(|shared| (*shared).clone());
        if let Some(txn) = self.txn.as_mut() {
            txn.body = body;
        }
        self.gate(Stage::Data, Some(d))
    }
}

/// Where a verdict's marks go: the transaction, or (before MAIL) the session.
enum Marks<'a> {
    Txn(&'a mut Transaction),
    Session(&'a mut SessionMarks),
}

impl Marks<'_> {
    fn discard(&mut self) {
        match self {
            Marks::Txn(t) => t.discard = true,
            Marks::Session(s) => s.discard = true,
        }
    }

    fn hold(&mut self, why: String) {
        match self {
            Marks::Txn(t) => t.hold = Some(why),
            Marks::Session(s) => s.hold = Some(why),
        }
    }

    fn edit(&mut self, e: Edit, stage: Stage) {
        match (self, e) {
            (Marks::Txn(t), Edit::ChangeSender(s)) => t.mail.address = s,
            (Marks::Txn(t), Edit::AddRecipient(r)) => {
                if !t.rcpts.iter().any(|x| x.address.eq_ignore_ascii_case(&r)) {
                    t.rcpts.push(RcptTo {
                        address: r,
                        notify: None,
                        orcpt: None,
                    });
                }
            }
            (Marks::Txn(t), Edit::RemoveRecipient(r)) => {
                t.rcpts.retain(|x| !x.address.eq_ignore_ascii_case(&r))
            }
            (Marks::Txn(t), e @ Edit::Header(_)) => t.edits.push(e),
            (
                Marks::Session(s),
                e @ (Edit::Header(_)
                | Edit::ChangeSender(_)
                | Edit::AddRecipient(_)
                | Edit::RemoveRecipient(_)),
            ) => {
                s.edits.push(e);
            }
            (_, e @ (Edit::SetFolder(_) | Edit::Redirect(_))) => {
                tracing::debug!(
                    stage = stage.name(),
                    "edit {e:?} only applies at the deliver stage; ignored"
                );
            }
        }
    }
}
