//! A small reading of IAM identity policies (Action/NotAction, Resource with
//! `${aws:username}`, the condition operators MFA policies use), so that
//! `audit` can judge every user's policies without one simulator call per
//! user, and both commands can name the statement behind a decision.
//! Operators it does not know make the statement not apply (it says so with -v).

use serde_json::Value;
use std::collections::BTreeMap;

/// IAM's three outcomes, as the simulator names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl Decision {
    pub fn from_simulator(text: &str) -> Option<Decision> {
        match text {
            "allowed" => Some(Decision::Allowed),
            "explicitDeny" => Some(Decision::ExplicitDeny),
            "implicitDeny" => Some(Decision::ImplicitDeny),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::ExplicitDeny => "denied",
            Decision::ImplicitDeny => "-",
        }
    }
}

/// A named policy document (e.g. `ForceMFA/force` for a group's inline policy).
#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub doc: Value,
}

/// One statement: the policy it is in and its Sid (or `#index`, from 0).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementRef {
    pub policy: String,
    pub statement: String,
}

impl std::fmt::Display for StatementRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.statement, self.policy)
    }
}

/// A decision with the statements that made it (the Denies that matched, else
/// the Allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub matched: Vec<StatementRef>,
}

/// Request context: condition keys (lower-cased) to values.
pub type Context = BTreeMap<String, String>;

pub fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

pub fn statement_name(statement: &Value, index: usize) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) if !sid.is_empty() => sid.to_owned(),
        _ => format!("#{index}"),
    }
}

pub fn evaluate(policies: &[Policy], action: &str, resource: &str, ctx: &Context) -> Outcome {
    let mut allows = Vec::new();
    let mut denies = Vec::new();
    for policy in policies {
        for (i, st) in statements(&policy.doc).into_iter().enumerate() {
            if !applies(st, action, resource, ctx) {
                continue;
            }
            let r = StatementRef {
                policy: policy.name.clone(),
                statement: statement_name(st, i),
            };
            match st.get("Effect").and_then(Value::as_str) {
                Some("Deny") => denies.push(r),
                Some("Allow") => allows.push(r),
                _ => {}
            }
        }
    }
    if !denies.is_empty() {
        Outcome {
            decision: Decision::ExplicitDeny,
            matched: denies,
        }
    } else if !allows.is_empty() {
        Outcome {
            decision: Decision::Allowed,
            matched: allows,
        }
    } else {
        Outcome {
            decision: Decision::ImplicitDeny,
            matched: Vec::new(),
        }
    }
}

/// The strings of a string-or-list element (JSON booleans as IAM reads them).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Some(Value::Array(list)) => list.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

pub fn applies(st: &Value, action: &str, resource: &str, ctx: &Context) -> bool {
    let action_hit = |key| {
        strings(st.get(key))
            .iter()
            .any(|p| glob(&p.to_lowercase(), &action.to_lowercase()))
    };
    let action_ok = if st.get("NotAction").is_some() {
        !action_hit("NotAction")
    } else {
        action_hit("Action")
    };
    if !action_ok {
        return false;
    }
    let resource_hit = |key| {
        strings(st.get(key))
            .iter()
            .any(|p| substitute(p, ctx).is_some_and(|p| glob(&p, resource)))
    };
    let resource_ok = if st.get("NotResource").is_some() {
        !resource_hit("NotResource")
    } else {
        resource_hit("Resource")
    };
    resource_ok && conditions_match(st.get("Condition"), ctx)
}

/// `${key}` policy variables; None when one has no value (the element then
/// matches nothing, as on AWS).
pub fn substitute(text: &str, ctx: &Context) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = after[..end].trim();
        match name {
            "*" | "?" | "$" => out.push_str(name),
            _ => out.push_str(ctx.get(&name.to_lowercase())?),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// IAM wildcards: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn conditions_match(block: Option<&Value>, ctx: &Context) -> bool {
    let Some(Value::Object(ops)) = block else {
        return true;
    };
    ops.iter().all(|(op, pairs)| {
        let Value::Object(pairs) = pairs else {
            return false;
        };
        pairs
            .iter()
            .all(|(key, expected)| condition(op, key, &strings(Some(expected)), ctx))
    })
}

/// One operator and key. An absent key: `...IfExists` and negated operators
/// match, others do not; `Null` tests presence.
fn condition(op: &str, key: &str, expected: &[String], ctx: &Context) -> bool {
    let actual = ctx.get(&key.to_lowercase());
    let (base, if_exists) = match op.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (op, false),
    };
    if base == "Null" {
        let want_absent = expected
            .first()
            .is_some_and(|e| e.eq_ignore_ascii_case("true"));
        return actual.is_none() == want_absent;
    }
    let negated = matches!(
        base,
        "StringNotEquals" | "StringNotLike" | "NumericNotEquals"
    );
    let compare: fn(&str, &str) -> Option<bool> = match base {
        "Bool" => |a, e| Some(a.eq_ignore_ascii_case(e)),
        "StringEquals" | "StringNotEquals" => |a, e| Some(a == e),
        "StringLike" | "StringNotLike" => |a, e| Some(glob(e, a)),
        "NumericEquals" | "NumericNotEquals" => |a, e| num(a, e, |a, e| a == e),
        "NumericLessThan" => |a, e| num(a, e, |a, e| a < e),
        "NumericLessThanEquals" => |a, e| num(a, e, |a, e| a <= e),
        "NumericGreaterThan" => |a, e| num(a, e, |a, e| a > e),
        "NumericGreaterThanEquals" => |a, e| num(a, e, |a, e| a >= e),
        _ => {
            stsmfa_core::diag(&format!(
                "condition operator {op} is not read by the audit's analysis: its statement is taken as not applying"
            ));
            return false;
        }
    };
    let Some(actual) = actual else {
        return if_exists || negated;
    };
    let hit = expected.iter().any(|e| {
        substitute(e, ctx)
            .and_then(|e| compare(actual, &e))
            .unwrap_or(false)
    });
    hit != negated
}

fn num(a: &str, e: &str, f: fn(f64, f64) -> bool) -> Option<bool> {
    Some(f(a.parse().ok()?, e.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        pairs
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.to_string()))
            .collect()
    }

    #[test]
    fn globs_and_variables() {
        assert!(glob("iam:*", "iam:createaccesskey"));
        assert!(glob("arn:aws:iam::*:mfa/*", "arn:aws:iam::1:mfa/x"));
        assert!(!glob("arn:aws:iam::*:mfa/a?", "arn:aws:iam::1:mfa/a"));
        let c = ctx(&[("aws:username", "bob")]);
        assert_eq!(
            substitute("mfa/${aws:username}", &c).as_deref(),
            Some("mfa/bob")
        );
        assert_eq!(substitute("mfa/${aws:username}", &Context::new()), None);
    }

    #[test]
    fn bool_does_not_match_an_absent_key_and_bool_if_exists_does() {
        let deny = |op: &str| Policy {
            name: "p".into(),
            doc: json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {op: {"aws:MultiFactorAuthPresent": "false"}}},
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        };
        let absent = Context::new();
        let no_mfa = ctx(&[("aws:MultiFactorAuthPresent", "false")]);
        let d = |op, c: &Context| evaluate(&[deny(op)], "s3:GetObject", "*", c).decision;
        assert_eq!(d("Bool", &absent), Decision::Allowed);
        assert_eq!(d("Bool", &no_mfa), Decision::ExplicitDeny);
        assert_eq!(d("BoolIfExists", &absent), Decision::ExplicitDeny);
        let out = evaluate(&[deny("Bool")], "s3:GetObject", "*", &no_mfa);
        assert_eq!(out.matched[0].statement, "#0");
    }
}
