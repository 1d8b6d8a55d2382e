//! Connection URLs without their secrets, for messages, logs and `Debug`.

/// `url` with every credential masked: the password of `user:password@`,
/// and the values of `password=` and `pass=` query parameters (as
/// `redis+unix:///run/redis.sock?pass=...` writes it). The user name stays,
/// since it tells an operator which account was used.
///
/// # Examples
///
/// ```
/// use cachewright::backends::redact_url;
///
/// assert_eq!(redact_url("redis://app:s3cret@10.0.0.5:6379/0"), "redis://app:***@10.0.0.5:6379/0");
/// assert_eq!(redact_url("redis://:s3cret@host"), "redis://:***@host");
/// assert_eq!(redact_url("redis+unix:///r.sock?db=1&pass=s3cret"), "redis+unix:///r.sock?db=1&pass=***");
/// assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    for secret in secrets(url) {
        out = out.replace(secret, "***");
    }
    out
}

/// `message` with every secret of `url` masked, wherever it was quoted.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_string();
    for secret in secrets(url) {
        out = out.replace(secret, "***");
    }
    out
}

/// The secrets written in `url`, longest first (so a secret that contains
/// another is masked whole).
fn secrets(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let authority = &url[after_scheme..authority_end];
    if let Some(at) = authority.rfind('@') {
        let userinfo = &authority[..at];
        match userinfo.split_once(':') {
            Some((_, password)) => found.push(password),
            // A lone `token@host` is a credential too.
            None => found.push(userinfo),
        }
    }
    if let Some(q) = url.find('?') {
        let query = url[q + 1..].split('#').next().unwrap_or("");
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if matches!(
                    name.to_ascii_lowercase().as_str(),
                    "password" | "pass" | "token" | "secret"
                ) {
                    found.push(value);
                }
            }
        }
    }
    found.retain(|s| !s.is_empty());
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_credential_form_is_masked() {
        for (url, secret) in [
            ("redis://user:pw1@host:1/0", "pw1"),
            ("redis://:pw2@host", "pw2"),
            ("rediss://tok3n@host:6380", "tok3n"),
            ("redis+unix:///tmp/r.sock?pass=pw4", "pw4"),
            ("unix:///tmp/r.sock?db=2&password=pw5#x", "pw5"),
            ("redis://u:p@ss:w@rd@host", "p@ss:w@rd"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
            assert!(shown.contains("***"), "{url} -> {shown}");
            let msg = scrub(&format!("could not parse {url}: bad {secret}"), url);
            assert!(!msg.contains(secret), "{msg}");
        }
        assert_eq!(redact_url("redis://host/0?db=1"), "redis://host/0?db=1");
    }
}
