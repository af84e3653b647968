//! The probe table by IAM's own policy simulator: SimulateCustomPolicy for
//! policy documents, SimulatePrincipalPolicy for a user; one call (and its
//! pages) per way a request arrives.

use super::evaluate::{Decision, Outcome};
use super::probes::{PROBES, Subject, Table, Target, WAYS, Way};
use super::{Iam, IamError};
use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum};
use std::collections::HashMap;

/// What to simulate.
pub enum Source {
    Documents(Vec<String>),
    Principal(String),
}

fn entries(way: Way, subject: &Subject) -> Vec<ContextEntry> {
    let entry = |k: &str, v: &str, t: ContextKeyTypeEnum| {
        ContextEntry::builder()
            .context_key_name(k)
            .context_key_values(v)
            .context_key_type(t)
            .build()
    };
    let mut out = vec![entry(
        "aws:username",
        &subject.user,
        ContextKeyTypeEnum::String,
    )];
    for (k, v, t) in way.mfa_keys() {
        let t = match *t {
            "boolean" => ContextKeyTypeEnum::Boolean,
            _ => ContextKeyTypeEnum::Numeric,
        };
        out.push(entry(k, v, t));
    }
    out
}

/// (action, resource) -> decision for one way.
fn one_way(
    iam: &Iam,
    source: &Source,
    subject: &Subject,
    way: Way,
) -> Result<HashMap<(String, String), Decision>, IamError> {
    let mut actions: Vec<&str> = PROBES.iter().map(|p| p.action).collect();
    actions.dedup();
    actions.sort_unstable();
    actions.dedup();
    let targets = [
        Target::Any,
        Target::OwnUser,
        Target::OwnDevice,
        Target::OtherDevice,
    ];
    let resources: Vec<String> = targets.iter().map(|t| subject.resource(*t)).collect();
    let mut out = HashMap::new();
    let mut marker: Option<String> = None;
    loop {
        let actions = actions.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let (results, truncated, next) = match source {
            Source::Documents(docs) => {
                let o = iam.call(
                    "SimulateCustomPolicy",
                    iam.iam
                        .simulate_custom_policy()
                        .set_policy_input_list(Some(docs.clone()))
                        .set_action_names(Some(actions))
                        .set_resource_arns(Some(resources.clone()))
                        .set_context_entries(Some(entries(way, subject)))
                        .set_marker(marker.take())
                        .send(),
                )?;
                (
                    o.evaluation_results().to_vec(),
                    o.is_truncated(),
                    o.marker().map(str::to_owned),
                )
            }
            Source::Principal(arn) => {
                let o = iam.call(
                    "SimulatePrincipalPolicy",
                    iam.iam
                        .simulate_principal_policy()
                        .policy_source_arn(arn)
                        .set_action_names(Some(actions))
                        .set_resource_arns(Some(resources.clone()))
                        .set_context_entries(Some(entries(way, subject)))
                        .set_marker(marker.take())
                        .send(),
                )?;
                (
                    o.evaluation_results().to_vec(),
                    o.is_truncated(),
                    o.marker().map(str::to_owned),
                )
            }
        };
        for r in results {
            let decision = Decision::from_simulator(r.eval_decision().as_str())
                .unwrap_or(Decision::ImplicitDeny);
            out.insert(
                (
                    r.eval_action_name().to_owned(),
                    r.eval_resource_name().unwrap_or("*").to_owned(),
                ),
                decision,
            );
        }
        match next {
            Some(m) if truncated => marker = Some(m),
            _ => break,
        }
    }
    Ok(out)
}

/// The simulator's table. The statements behind each decision come from
/// `reading` (stsmfa's own reading of the same documents) where it agrees.
pub fn table(
    iam: &Iam,
    source: &Source,
    subject: &Subject,
    reading: &Table,
) -> Result<Table, IamError> {
    let mut by_way = Vec::new();
    for way in WAYS {
        by_way.push(one_way(iam, source, subject, way)?);
    }
    let rows = reading
        .rows
        .iter()
        .map(|(probe, ours)| {
            let resource = subject.resource(probe.target);
            let cell = |i: usize| {
                let decision = by_way[i]
                    .get(&(probe.action.to_owned(), resource.clone()))
                    .copied()
                    .unwrap_or(Decision::ImplicitDeny);
                let matched = if ours[i].decision == decision {
                    ours[i].matched.clone()
                } else {
                    stsmfa_core::diag(&format!(
                        "{} ({}): the simulator says {:?}, stsmfa's reading {:?}",
                        probe.action,
                        WAYS[i].title(),
                        decision,
                        ours[i].decision
                    ));
                    Vec::new()
                };
                Outcome { decision, matched }
            };
            (*probe, [cell(0), cell(1), cell(2)])
        })
        .collect();
    Ok(Table { rows })
}
