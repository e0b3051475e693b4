//! The states of the three lifecycles (event, launch, post-back) and the words they store.

text_enum! {
    /// `planned → launching → launched → finished`, or `rejected` (the controller refused),
    /// `unknown` (cannot tell whether it launched), `dry_run`, `coalesced`; `held` while its
    /// rule is paused (never sent), then `planned` again or `dropped`; `awaiting_approval`
    /// when its rule needs a person's yes, then `planned`, `denied` or `expired`.
    pub enum LaunchState {
        Planned => "planned",
        Launching => "launching",
        Launched => "launched",
        Finished => "finished",
        Rejected => "rejected",
        Unknown => "unknown",
        DryRun => "dry_run",
        Coalesced => "coalesced",
        Held => "held",
        Dropped => "dropped",
        AwaitingApproval => "awaiting_approval",
        Denied => "denied",
        Expired => "expired",
    }
}

impl LaunchState {
    /// Not settled yet: it waits for something (`launch::wait` says what).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            LaunchState::Planned
                | LaunchState::Launching
                | LaunchState::Held
                | LaunchState::AwaitingApproval
        )
    }
}

text_enum! {
    /// `pending` until the dispatcher decides; `ignored` at ingest (pings, own notes).
    pub enum EventState {
        Pending => "pending",
        Dispatched => "dispatched",
        Unmapped => "unmapped",
        Ignored => "ignored",
        Failed => "failed",
    }
}

text_enum! {
    /// How an event reached the bridge.
    pub enum Arrival {
        /// Sent by the sender on its own.
        Delivered => "delivered",
        /// A GitHub delivery this bridge asked GitHub to send again (catch-up).
        Redelivered => "redelivered",
        /// Read from the ServiceNow Table API by a catch-up pass.
        CaughtUp => "caught_up",
    }
}

text_enum! {
    /// `pending → sent | dead`; an operator's retry brings a dead one back to `pending`.
    pub enum CallbackState {
        Pending => "pending",
        Sent => "sent",
        Dead => "dead",
    }
}

text_enum! {
    /// Who paused a rule: the breaker itself, or an operator (CLI, admin API, console).
    pub enum PausedBy {
        Auto => "auto",
        Operator => "operator",
    }
}

text_enum! {
    /// Which post-back of a launch (`callbacks.phase`): one row per launch and phase.
    pub enum Phase {
        Launched => "launched",
        Finished => "finished",
        /// Not launched: the rule is paused; held until an operator resumes it.
        Held => "held",
        /// A held launch an operator dropped on resume: it will never run.
        Dropped => "dropped",
        /// What waits for approval and how to give it.
        Approval => "approval",
        /// A command that changed nothing (not allowed, self-approval): said once per launch.
        ApprovalRefused => "approval_refused",
        /// Denied or expired: it will never run.
        ApprovalDecided => "approval_decided",
        /// A command after the decision ("already approved by …"): said once per launch.
        ApprovalLate => "approval_late",
    }
}

text_enum! {
    /// A job's status as the controller reports it (`launches.job_status`), plus `missing`: the
    /// controller stopped listing the job.
    pub enum JobStatus {
        New => "new",
        Pending => "pending",
        Waiting => "waiting",
        Running => "running",
        Successful => "successful",
        Failed => "failed",
        Error => "error",
        Canceled => "canceled",
        Missing => "missing",
    }
}

impl JobStatus {
    /// The job has ended: its outcome is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Successful
                | JobStatus::Failed
                | JobStatus::Error
                | JobStatus::Canceled
                | JobStatus::Missing
        )
    }
}

text_enum! {
    /// What a request to `/hooks/{source}` was answered (`deliveries.outcome`).
    pub enum DeliveryOutcome {
        /// 202: stored, to be decided.
        Accepted => "accepted",
        /// 200: seen before (same signed body).
        Duplicate => "duplicate",
        /// 200: authentic but not for us.
        Ignored => "ignored",
        /// 4xx: bad signature, malformed, too large, unknown source.
        Refused => "refused",
        /// 5xx: shed or not committed in time; the sender retries.
        Unavailable => "unavailable",
    }
}

text_enum! {
    /// What a console user may do (`console_sessions.role`, `audit.role`).
    pub enum Role {
        /// Sees everything and acts: pause, resume, replay, retry.
        Operator => "operator",
        /// Sees everything and changes nothing.
        ReadOnly => "read_only",
    }
}

text_enum! {
    /// An operator action in the audit trail (`audit.action`).
    pub enum AuditAction {
        Login => "login",
        LoginFailed => "login.failed",
        Logout => "logout",
        RulePause => "rule.pause",
        RuleResume => "rule.resume",
        EventReplay => "event.replay",
        CallbackRetry => "callback.retry",
        CallbacksRetryAll => "callbacks.retry_all",
        CatchUp => "catch_up",
        Approve => "launch.approve",
        Deny => "launch.deny",
    }
}
