//! The fixed probes both commands judge a policy by: actions an attacker with
//! a user's key or password wants (read S3, change EC2, mint keys, drop MFA
//! devices, assume roles), each on the resource it would target, in the three
//! ways a request can arrive: a long-term key (no MFA keys at all), a console
//! sign-in without MFA (`aws:MultiFactorAuthPresent` false) and with MFA.

use super::evaluate::{Context, Decision, Outcome, Policy, evaluate};

/// What a probe's action targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Any,
    OwnUser,
    OwnDevice,
    /// Another user's MFA device: allowed only where `mfa/*` is not restricted.
    OtherDevice,
}

#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub action: &'static str,
    pub target: Target,
}

const fn p(action: &'static str, target: Target) -> Probe {
    Probe { action, target }
}

pub const PROBES: &[Probe] = &[
    p("s3:ListAllMyBuckets", Target::Any),
    p("s3:GetObject", Target::Any),
    p("ec2:RunInstances", Target::Any),
    p("ec2:TerminateInstances", Target::Any),
    p("iam:CreateAccessKey", Target::OwnUser),
    p("iam:ChangePassword", Target::OwnUser),
    p("iam:GetAccountPasswordPolicy", Target::Any),
    p("iam:CreateVirtualMFADevice", Target::OwnDevice),
    p("iam:EnableMFADevice", Target::OwnUser),
    p("iam:ListMFADevices", Target::OwnUser),
    p("iam:DeactivateMFADevice", Target::OwnUser),
    p("iam:DeleteVirtualMFADevice", Target::OwnDevice),
    p("iam:CreateVirtualMFADevice", Target::OtherDevice),
    p("iam:DeleteVirtualMFADevice", Target::OtherDevice),
    p("sts:AssumeRole", Target::Any),
    p("sts:GetSessionToken", Target::Any),
];

/// The actions of ordinary work: a Deny that covers them without MFA is what
/// "MFA required" means.
pub const ORDINARY: &[&str] = &[
    "s3:ListAllMyBuckets",
    "s3:GetObject",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
];

/// The other user's name in the `mfa/other` probe.
pub const OTHER_USER: &str = "other";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    LongTermKey,
    ConsoleNoMfa,
    WithMfa,
}

pub const WAYS: [Way; 3] = [Way::LongTermKey, Way::ConsoleNoMfa, Way::WithMfa];

impl Way {
    pub fn key(self) -> &'static str {
        match self {
            Way::LongTermKey => "long_term_key",
            Way::ConsoleNoMfa => "console_no_mfa",
            Way::WithMfa => "with_mfa",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Way::LongTermKey => "long-term key",
            Way::ConsoleNoMfa => "console, no MFA",
            Way::WithMfa => "with MFA",
        }
    }

    /// The MFA keys of the request context: (key, value, simulator type).
    pub fn mfa_keys(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Way::LongTermKey => &[],
            Way::ConsoleNoMfa => &[("aws:MultiFactorAuthPresent", "false", "boolean")],
            Way::WithMfa => &[
                ("aws:MultiFactorAuthPresent", "true", "boolean"),
                ("aws:MultiFactorAuthAge", "60", "numeric"),
            ],
        }
    }

    pub fn context(self, user: &str) -> Context {
        let mut ctx = Context::new();
        ctx.insert("aws:username".into(), user.to_owned());
        for (k, v, _) in self.mfa_keys() {
            ctx.insert(k.to_lowercase(), (*v).to_owned());
        }
        ctx
    }
}

/// Whom the probes act as: the resources are this user's and device.
#[derive(Debug, Clone)]
pub struct Subject {
    pub account: String,
    pub user: String,
}

impl Subject {
    pub fn resource(&self, target: Target) -> String {
        let a = &self.account;
        match target {
            Target::Any => "*".to_owned(),
            Target::OwnUser => format!("arn:aws:iam::{a}:user/{}", self.user),
            Target::OwnDevice => format!("arn:aws:iam::{a}:mfa/{}", self.user),
            Target::OtherDevice => format!("arn:aws:iam::{a}:mfa/{OTHER_USER}"),
        }
    }
}

/// Every probe's outcome in the three ways.
#[derive(Debug, Clone)]
pub struct Table {
    pub rows: Vec<(Probe, [Outcome; 3])>,
}

impl Table {
    /// The table by stsmfa's own reading of `policies`.
    pub fn evaluate(policies: &[Policy], subject: &Subject) -> Table {
        let contexts = WAYS.map(|w| w.context(&subject.user));
        let rows = PROBES
            .iter()
            .map(|probe| {
                let resource = subject.resource(probe.target);
                let outcome = |i: usize| evaluate(policies, probe.action, &resource, &contexts[i]);
                (*probe, [outcome(0), outcome(1), outcome(2)])
            })
            .collect();
        Table { rows }
    }

    pub fn get(&self, action: &str, target: Target, way: Way) -> Option<&Outcome> {
        let i = WAYS.iter().position(|w| *w == way)?;
        self.rows
            .iter()
            .find(|(p, _)| p.action == action && p.target == target)
            .map(|(_, o)| &o[i])
    }

    pub fn decision(&self, action: &str, target: Target, way: Way) -> Decision {
        self.get(action, target, way)
            .map_or(Decision::ImplicitDeny, |o| o.decision)
    }
}

/// A probe's label in tables: the action, and its target unless it is `*`.
pub fn label(probe: &Probe) -> String {
    match probe.target {
        Target::Any => probe.action.to_owned(),
        Target::OwnUser => format!("{} (own user)", probe.action),
        Target::OwnDevice => format!("{} (mfa/own)", probe.action),
        Target::OtherDevice => format!("{} (mfa/{OTHER_USER})", probe.action),
    }
}

pub fn target_key(target: Target) -> &'static str {
    match target {
        Target::Any => "*",
        Target::OwnUser => "own-user",
        Target::OwnDevice => "own-device",
        Target::OtherDevice => "other-device",
    }
}
