//! Every user's effective identity policies (inline, attached, through
//! groups) from `GetAccountAuthorizationDetails`: one paginated call for the
//! whole account, so the audit's cost grows with pages, not users. AWS managed
//! policies attached somewhere are fetched once each (GetPolicy,
//! GetPolicyVersion).

use super::evaluate::Policy;
use super::{Iam, IamError};
use aws_sdk_iam::types::EntityType;
use serde_json::Value;
use std::collections::BTreeMap;

/// A user and the policies that apply to them.
#[derive(Debug, Clone)]
pub struct UserPolicies {
    pub user: String,
    pub arn: String,
    pub groups: Vec<String>,
    pub policies: Vec<Policy>,
}

/// IAM's policy documents are URL-encoded JSON; some servers send plain JSON.
pub fn document(text: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map_err(|e| format!("a policy document is not UTF-8: {e}"))?;
    serde_json::from_str(&decoded).map_err(|e| format!("a policy document is not JSON: {e}"))
}

fn unreadable(action: &'static str) -> impl Fn(String) -> IamError {
    move |message| IamError::Unreadable { action, message }
}

const AUTHZ: &str = "GetAccountAuthorizationDetails";

/// The default version's document of a managed policy.
pub fn managed_document(iam: &Iam, arn: &str) -> Result<(String, Value), IamError> {
    let out = iam.call("GetPolicy", iam.iam.get_policy().policy_arn(arn).send())?;
    let policy = out.policy();
    let name = policy
        .and_then(|p| p.policy_name())
        .unwrap_or(arn)
        .to_owned();
    let version = policy
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_owned();
    let out = iam.call(
        "GetPolicyVersion",
        iam.iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send(),
    )?;
    let text = out
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or("{}");
    Ok((
        name,
        document(text).map_err(unreadable("GetPolicyVersion"))?,
    ))
}

/// Every user of the account with their policies, in IAM's order.
pub fn fetch(iam: &Iam, progress: &dyn Fn(usize)) -> Result<Vec<UserPolicies>, IamError> {
    let mut users = Vec::new();
    let mut groups: BTreeMap<String, Vec<Policy>> = BTreeMap::new();
    let mut group_attached: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut managed: BTreeMap<String, Policy> = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let out = iam.call(
            AUTHZ,
            iam.iam
                .get_account_authorization_details()
                .filter(EntityType::User)
                .filter(EntityType::Group)
                .filter(EntityType::LocalManagedPolicy)
                .max_items(1000)
                .set_marker(marker.take())
                .send(),
        )?;
        for u in out.user_detail_list() {
            let name = u.user_name().unwrap_or_default().to_owned();
            let mut policies = Vec::new();
            for p in u.user_policy_list() {
                let doc =
                    document(p.policy_document().unwrap_or("{}")).map_err(unreadable(AUTHZ))?;
                policies.push(Policy {
                    name: format!("{} (inline)", p.policy_name().unwrap_or("?")),
                    doc,
                });
            }
            let attached = u
                .attached_managed_policies()
                .iter()
                .filter_map(|a| a.policy_arn().map(str::to_owned))
                .collect::<Vec<_>>();
            users.push((
                UserPolicies {
                    user: name,
                    arn: u.arn().unwrap_or_default().to_owned(),
                    groups: u.group_list().to_vec(),
                    policies,
                },
                attached,
            ));
        }
        for g in out.group_detail_list() {
            let name = g.group_name().unwrap_or_default().to_owned();
            let mut policies = Vec::new();
            for p in g.group_policy_list() {
                let doc =
                    document(p.policy_document().unwrap_or("{}")).map_err(unreadable(AUTHZ))?;
                policies.push(Policy {
                    name: format!("{name}/{}", p.policy_name().unwrap_or("?")),
                    doc,
                });
            }
            groups.insert(name.clone(), policies);
            group_attached.insert(
                name,
                g.attached_managed_policies()
                    .iter()
                    .filter_map(|a| a.policy_arn().map(str::to_owned))
                    .collect(),
            );
        }
        for p in out.policies() {
            let Some(version) = p
                .policy_version_list()
                .iter()
                .find(|v| v.is_default_version())
            else {
                continue;
            };
            let doc = document(version.document().unwrap_or("{}")).map_err(unreadable(AUTHZ))?;
            let arn = p.arn().unwrap_or_default();
            // The name is the ARN's last segment when a server leaves it out.
            let name = p
                .policy_name()
                .unwrap_or_else(|| arn.rsplit('/').next().unwrap_or(arn));
            managed.insert(
                arn.to_owned(),
                Policy {
                    name: name.to_owned(),
                    doc,
                },
            );
        }
        progress(users.len());
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    // AWS managed policies are not in the details (the filter leaves them out).
    let wanted = users
        .iter()
        .flat_map(|(_, a)| a.iter())
        .chain(group_attached.values().flatten())
        .cloned()
        .collect::<std::collections::BTreeSet<_>>();
    for arn in wanted {
        if let std::collections::btree_map::Entry::Vacant(slot) = managed.entry(arn) {
            let (name, doc) = managed_document(iam, slot.key())?;
            slot.insert(Policy { name, doc });
        }
    }
    Ok(users
        .into_iter()
        .map(|(mut u, attached)| {
            let named = |arn: &String, via: Option<&str>| {
                managed.get(arn).map(|p| Policy {
                    name: match via {
                        Some(g) => format!("{g}/{}", p.name),
                        None => p.name.clone(),
                    },
                    doc: p.doc.clone(),
                })
            };
            let mut extra: Vec<Policy> = attached.iter().filter_map(|a| named(a, None)).collect();
            for g in &u.groups {
                for arn in group_attached.get(g).into_iter().flatten() {
                    extra.extend(named(arn, Some(g)));
                }
                extra.extend(groups.get(g).cloned().unwrap_or_default());
            }
            u.policies.extend(extra);
            u
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_may_be_url_encoded() {
        let plain = super::document(r#"{"Statement":[]}"#).unwrap();
        let encoded = super::document("%7B%22Statement%22%3A%5B%5D%7D").unwrap();
        assert_eq!(plain, encoded);
        assert!(super::document("%7Bnot").is_err());
    }
}
