//! What the endpoint answers, apart from the socket: the Host check, the
//! token check, the one route, and the JSON bodies the SDKs read.

use base64::Engine;
use stsmfa_core::credentials::Session;
use stsmfa_core::error::Fail;
use stsmfa_core::secret::Secret;
use subtle::ConstantTimeEq;

/// The one path that serves credentials.
pub const PATH: &str = "/credentials";

/// A fresh token: 32 bytes from the operating system, base64url (43 characters).
pub fn new_token() -> Result<Secret<String>, Fail> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| stsmfa_core::fail!("cannot get random bytes from the system: {e}"))?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

/// The parts of a request that decide the answer.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target, query included.
    pub target: &'a str,
    pub host: Option<&'a str>,
    pub authorization: Option<&'a [u8]>,
}

/// How a request is answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Serve the session.
    Credentials,
    /// 403, empty: a Host that is not this loopback endpoint (a web page
    /// reaching it through DNS rebinding), or a wrong or missing token.
    Forbidden,
    /// 404, empty.
    NotFound,
    /// 405, empty.
    MethodNotAllowed,
}

/// Decides a request. The Host and the token come first, so that nothing
/// about the endpoint (not even which paths exist) is told to a caller
/// without the token.
pub fn route(req: &Request, token: &Secret<String>, port: u16) -> Route {
    if !req.host.is_some_and(|h| loopback_host(h, port)) {
        return Route::Forbidden;
    }
    let given = req.authorization.unwrap_or_default();
    if !bool::from(given.ct_eq(token.expose().as_bytes())) {
        return Route::Forbidden;
    }
    let path = req.target.split_once('?').map_or(req.target, |(p, _)| p);
    if path != PATH {
        return Route::NotFound;
    }
    if req.method != "GET" {
        return Route::MethodNotAllowed;
    }
    Route::Credentials
}

/// `127.0.0.1` or `localhost`, with this port or none (HTTP/1.1 requires a
/// Host; SDKs send `127.0.0.1:PORT`).
fn loopback_host(host: &str, port: u16) -> bool {
    let (name, p) = match host.rsplit_once(':') {
        Some((name, p)) => (name, Some(p)),
        None => (host, None),
    };
    let name_ok = name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost");
    name_ok && p.is_none_or(|p| p.parse::<u16>() == Ok(port))
}

/// The container credentials JSON: what botocore, the JavaScript SDK and
/// the other SDKs read from `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
pub fn credentials_json(s: &Session) -> String {
    serde_json::json!({
        "AccessKeyId": s.access_key_id,
        "SecretAccessKey": s.secret_access_key.expose(),
        "Token": s.session_token.expose(),
        "Expiration": s.expiration_rfc3339(),
    })
    .to_string()
}

/// An error body. botocore shows the whole body of a non-200 answer; the
/// JavaScript SDK reads `Code` and `Message`; `message` is the ECS agent's
/// spelling. The message names the fix (the failure's hints).
pub fn error_json(code: &str, fail: &Fail) -> String {
    let mut text = fail.message.clone();
    for hint in &fail.hints {
        text.push_str("; ");
        text.push_str(hint);
    }
    let text = format!("stsmfa: {}", stsmfa_core::escape(&text));
    serde_json::json!({ "Code": code, "Message": text, "message": text }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 40123;

    fn token() -> Secret<String> {
        Secret::new("tok-abc_123".into())
    }

    fn req<'a>(
        method: &'a str,
        target: &'a str,
        host: Option<&'a str>,
        auth: Option<&'a str>,
    ) -> Request<'a> {
        Request {
            method,
            target,
            host,
            authorization: auth.map(str::as_bytes),
        }
    }

    #[test]
    fn the_token_and_loopback_host_get_credentials() {
        for host in [
            "127.0.0.1:40123",
            "127.0.0.1",
            "localhost:40123",
            "LOCALHOST",
        ] {
            let r = req("GET", "/credentials", Some(host), Some("tok-abc_123"));
            assert_eq!(route(&r, &token(), PORT), Route::Credentials, "{host}");
        }
        let r = req(
            "GET",
            "/credentials?x=1",
            Some("127.0.0.1:40123"),
            Some("tok-abc_123"),
        );
        assert_eq!(route(&r, &token(), PORT), Route::Credentials);
    }

    #[test]
    fn a_wrong_or_missing_token_is_forbidden_whatever_the_path() {
        for auth in [
            None,
            Some(""),
            Some("tok-abc_12"),
            Some("tok-abc_1234"),
            Some("Bearer tok-abc_123"),
        ] {
            for target in ["/credentials", "/", "/other"] {
                let r = req("GET", target, Some("127.0.0.1:40123"), auth);
                assert_eq!(
                    route(&r, &token(), PORT),
                    Route::Forbidden,
                    "{auth:?} {target}"
                );
            }
        }
    }

    #[test]
    fn a_foreign_host_is_forbidden_even_with_the_token() {
        for host in [
            None,
            Some("evil.example:40123"),
            Some("127.0.0.1:1"),
            Some("127.0.0.1.evil.example"),
            Some("10.0.0.1:40123"),
            Some("127.0.0.1:40123x"),
            Some(""),
        ] {
            let r = req("GET", "/credentials", host, Some("tok-abc_123"));
            assert_eq!(route(&r, &token(), PORT), Route::Forbidden, "{host:?}");
        }
    }

    #[test]
    fn other_paths_and_methods() {
        let h = Some("127.0.0.1:40123");
        let t = Some("tok-abc_123");
        assert_eq!(
            route(&req("GET", "/", h, t), &token(), PORT),
            Route::NotFound
        );
        assert_eq!(
            route(&req("GET", "/credentials/x", h, t), &token(), PORT),
            Route::NotFound
        );
        for m in ["POST", "PUT", "DELETE", "HEAD"] {
            assert_eq!(
                route(&req(m, "/credentials", h, t), &token(), PORT),
                Route::MethodNotAllowed,
                "{m}"
            );
        }
    }

    #[test]
    fn tokens_are_43_base64url_characters_and_differ() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "REDACTED");
    }

    #[test]
    fn bodies_are_the_json_sdks_read() {
        let s = Session {
            access_key_id: "ASIAEXAMPLE123456789".into(),
            secret_access_key: Secret::new("sec/ret+".into()),
            session_token: Secret::new("tok==".into()),
            expiration: 1_795_427_393,
        };
        let v: serde_json::Value = serde_json::from_str(&credentials_json(&s)).unwrap();
        assert_eq!(v["AccessKeyId"], "ASIAEXAMPLE123456789");
        assert_eq!(v["SecretAccessKey"], "sec/ret+");
        assert_eq!(v["Token"], "tok==");
        assert_eq!(v["Expiration"], "2026-11-23T09:49:53Z");
        let f = stsmfa_core::fail!("no terminal\nto ask on").hint("set mfa_process");
        let v: serde_json::Value = serde_json::from_str(&error_json("RenewalFailed", &f)).unwrap();
        assert_eq!(v["Code"], "RenewalFailed");
        assert_eq!(
            v["Message"],
            "stsmfa: no terminal\\nto ask on; set mfa_process"
        );
        assert_eq!(v["message"], v["Message"]);
    }
}
