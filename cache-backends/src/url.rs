//! Connection URLs without their secrets, for messages, logs and `Debug`.

use std::ops::Range;

/// `url` with every credential masked: the password of `user:password@`
/// (everything between the first `:` of the user info and the last `@`, so a
/// password holding `/`, `?`, `#` or `@` is masked whole), a lone user info
/// without `:` (some services put a token there), and the values of
/// `password=`, `pass=`, `token=` and `secret=` query parameters (as
/// `redis+unix:///run/redis.sock?pass=...` writes it). A user name before a
/// `:` stays, since it tells an operator which account was used. When in
/// doubt it masks more, never less.
///
/// # Examples
///
/// ```
/// use cachewright::backends::redact_url;
///
/// assert_eq!(redact_url("redis://app:s3cret@10.0.0.5:6379/0"), "redis://app:***@10.0.0.5:6379/0");
/// assert_eq!(redact_url("redis://:ab/c?d#e@host"), "redis://:***@host");
/// assert_eq!(redact_url("redis+unix:///r.sock?db=1&pass=s3cret"), "redis+unix:///r.sock?db=1&pass=***");
/// assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut at = 0;
    for r in secret_ranges(url) {
        out.push_str(&url[at..r.start]);
        out.push_str("***");
        at = r.end;
    }
    out.push_str(&url[at..]);
    out
}

/// The node URLs of a Redis Cluster written as one comma list,
/// `redis://[user:password@]h1:7000,h2:7001,...[/path][?query]`
/// (`CACHEWRIGHT_REDIS_URL`'s form): the host list (between the credentials
/// and the first `/`, `?` or `#` after them) is split, and every host takes
/// the URL's scheme, credentials, path and query. A later element may be a
/// whole URL of its own (`...,redis://h3:7002`), split the same way. A URL
/// without a comma in its host list is one node (a password, a path or a
/// query may hold commas): the result has one element. Unix socket URLs
/// (`unix://`, `redis+unix://`) are never split. Blank hosts are skipped.
///
/// # Examples
///
/// ```
/// use cachewright::backends::node_urls;
///
/// assert_eq!(
///     node_urls("redis://:pw@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002"),
///     ["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7001", "redis://:pw@10.0.0.3:7002"],
///     "every node takes the password"
/// );
/// assert_eq!(node_urls("redis://:a,b@host:6379/0"), ["redis://:a,b@host:6379/0"], "one server");
/// assert_eq!(
///     node_urls("redis://h1:7000,h2:7001/0?protocol=resp3"),
///     ["redis://h1:7000/0?protocol=resp3", "redis://h2:7001/0?protocol=resp3"]
/// );
/// ```
pub fn node_urls(url: &str) -> Vec<String> {
    if url.starts_with("unix:") || url.starts_with("redis+unix:") {
        return vec![url.to_owned()];
    }
    let mut out = Vec::new();
    for whole in whole_urls(url) {
        let after_scheme = whole.find("://").map_or(0, |i| i + 3);
        let hosts_from = whole[after_scheme..]
            .rfind('@')
            .map_or(after_scheme, |at| after_scheme + at + 1);
        let hosts_to = whole[hosts_from..]
            .find(['/', '?', '#'])
            .map_or(whole.len(), |i| hosts_from + i);
        let (base, rest) = (&whole[..hosts_from], &whole[hosts_to..]);
        let hosts: Vec<&str> = whole[hosts_from..hosts_to].split(',').collect();
        if hosts.len() == 1 {
            out.push(whole.to_owned());
            continue;
        }
        for h in hosts.into_iter().map(str::trim).filter(|h| !h.is_empty()) {
            out.push(format!("{base}{h}{rest}"));
        }
    }
    if out.is_empty() {
        out.push(url.to_owned());
    }
    out
}

/// `url` cut before each `,scheme://` that starts another whole URL.
fn whole_urls(url: &str) -> Vec<&str> {
    let mut cuts = vec![0];
    for (i, _) in url.match_indices(',') {
        let after = &url[i + 1..];
        let scheme_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count();
        if scheme_len > 0 && after[scheme_len..].starts_with("://") {
            cuts.push(i + 1);
        }
    }
    cuts.push(url.len() + 1);
    cuts.windows(2)
        .map(|w| url[w[0]..w[1] - 1].trim())
        .filter(|u| !u.is_empty())
        .collect()
}

/// `message` with every secret of `url` masked, wherever it was quoted.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_string();
    let mut secrets: Vec<&str> = secret_ranges(url).into_iter().map(|r| &url[r]).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(s, "***");
    }
    out
}

/// Where the secrets of `url` are, in order, not overlapping.
fn secret_ranges(url: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    // The last `@`: a password may hold any character, `@` included.
    let query_from = match url[after_scheme..].rfind('@').map(|i| after_scheme + i) {
        Some(at) => {
            let userinfo = &url[after_scheme..at];
            let start = userinfo
                .find(':')
                .map_or(after_scheme, |c| after_scheme + c + 1);
            if start < at {
                found.push(start..at);
            }
            at
        }
        None => after_scheme,
    };
    if let Some(q) = url[query_from..].find('?').map(|i| query_from + i) {
        let end = url[q..].find('#').map_or(url.len(), |i| q + i);
        let mut pos = q + 1;
        for pair in url[q + 1..end].split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                let lower = name.to_ascii_lowercase();
                if !value.is_empty()
                    && matches!(lower.as_str(), "password" | "pass" | "token" | "secret")
                {
                    let start = pos + name.len() + 1;
                    found.push(start..start + value.len());
                }
            }
            pos += pair.len() + 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_lists_split_their_hosts_only() {
        assert_eq!(
            node_urls("redis://app:pw@h1:1,h2:2,redis://other:pw2@h3:3,h4:4"),
            [
                "redis://app:pw@h1:1",
                "redis://app:pw@h2:2",
                "redis://other:pw2@h3:3",
                "redis://other:pw2@h4:4"
            ]
        );
        assert_eq!(
            node_urls("redis://h1:1,h2:2/0?name=a,b"),
            ["redis://h1:1/0?name=a,b", "redis://h2:2/0?name=a,b"],
            "a comma in the query is not a node"
        );
        assert_eq!(
            node_urls("redis://h1:1/0?name=a,b"),
            ["redis://h1:1/0?name=a,b"]
        );
        assert_eq!(node_urls("redis://:p,w@h:1"), ["redis://:p,w@h:1"]);
        assert_eq!(
            node_urls("redis+unix:///a.sock?db=1,2"),
            ["redis+unix:///a.sock?db=1,2"]
        );
        assert_eq!(
            node_urls("redis://h1:1, h2:2,"),
            ["redis://h1:1", "redis://h2:2"]
        );
    }

    #[test]
    fn every_credential_form_is_masked() {
        for (url, secret) in [
            ("redis://user:pw1@host:1/0", "pw1"),
            ("redis://:pw2@host", "pw2"),
            ("rediss://tok3n@host:6380", "tok3n"),
            ("redis+unix:///tmp/r.sock?pass=pw4", "pw4"),
            ("unix:///tmp/r.sock?db=2&password=pw5#x", "pw5"),
            ("redis://u:p@ss:w@rd@host", "p@ss:w@rd"),
            ("redis://:ab/cd@host:6379/0", "ab/cd"),
            ("redis://:ab?cd@host", "ab?cd"),
            ("redis://:ab#cd@host", "ab#cd"),
            ("redis://:a%2Fb@[::1]:6379", "a%2Fb"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
            assert!(shown.contains("***"), "{url} -> {shown}");
            let msg = scrub(&format!("could not parse {url}: bad {secret}"), url);
            assert!(!msg.contains(secret), "{msg}");
        }
        assert_eq!(redact_url("redis://host/0?db=1"), "redis://host/0?db=1");
        assert_eq!(
            redact_url("redis://:6379@host:6379/0"),
            "redis://:***@host:6379/0",
            "only the password's place is masked"
        );
        assert_eq!(redact_url("redis://app:pw@h"), "redis://app:***@h");
    }
}
