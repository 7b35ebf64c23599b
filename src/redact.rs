//! Secrets out of text: a password in a URL (`mysql://user:pw@host/db`, `redis://:pw@host`,
//! `?password=pw`) is shown as `***` wherever tickd prints a URL or an error that may quote
//! one — start-up errors, logs, API answers. A leaf: imports nothing of tickd.

use std::borrow::Cow;

/// What a hidden password reads as.
pub const MASK: &str = "***";

/// Query parameters that carry a password in the URLs tickd's stores accept.
const SECRET_PARAMS: [&str; 3] = ["password", "pass", "pwd"];

/// What a webhook's hidden URL path and secret read as.
pub const HIDDEN: &str = "<redacted>";

/// A webhook URL as tickd shows it: its scheme and host only. The rest of a chat service's
/// incoming-webhook URL (`https://hooks.slack.com/services/T…/B…/X…`) is its credential.
pub fn webhook_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/{HIDDEN}")
        }
        None => HIDDEN.to_owned(),
    }
}

/// `url` with the password of its user info and any password query parameter masked.
/// Text that is not a URL comes back unchanged.
pub fn url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let after = scheme_end + 3;
    let masked = mask_rest(&url[after..]);
    if masked == url[after..] {
        Cow::Borrowed(url)
    } else {
        Cow::Owned(format!("{}{masked}", &url[..after]))
    }
}

/// `text` with every URL in it redacted as [`url`] does: for error messages and log lines
/// that may quote a connection string. A URL ends at white space or a quote.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    while let Some(found) = text[done..].find("://") {
        let after = done + found + 3;
        let len = text[after..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(text.len() - after);
        out.push_str(&text[done..after]);
        out.push_str(&mask_rest(&text[after..after + len]));
        done = after + len;
    }
    out.push_str(&text[done..]);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// A URL after its `scheme://`, with the password masked: everything between the first `:`
/// and the last `@` of the part before the query (a password with a raw `/` or `@` in it is
/// still covered), and password query parameters.
fn mask_rest(rest: &str) -> Cow<'_, str> {
    let query = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query);
    let mut out = String::with_capacity(rest.len());
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..=colon]);
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    out.push_str(&mask_query(query));
    if out == rest {
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(out)
    }
}

/// A query (`?a=b&c=d`) with the values of password parameters masked.
fn mask_query(query: &str) -> Cow<'_, str> {
    let Some(params) = query.strip_prefix('?') else {
        return Cow::Borrowed(query);
    };
    let mut out = String::from("?");
    for (i, pair) in params.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name)) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{text, url};

    #[test]
    fn a_password_in_the_user_info_is_masked() {
        assert_eq!(
            url("mysql://nobody:S3cretPw@127.0.0.1:1/x"),
            "mysql://nobody:***@127.0.0.1:1/x"
        );
        assert_eq!(url("redis://:pw@host:6379/0"), "redis://:***@host:6379/0");
        assert_eq!(
            url("postgres://u:p%40ss:w@db/x?sslmode=require"),
            "postgres://u:***@db/x?sslmode=require"
        );
    }

    #[test]
    fn a_password_parameter_is_masked() {
        assert_eq!(
            url("postgres://u@db/x?password=hunter2&sslmode=disable"),
            "postgres://u@db/x?password=***&sslmode=disable"
        );
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for plain in [
            "sqlite://sqlite.db",
            "mysql://root@127.0.0.1:3306/test",
            "redis://127.0.0.1:6379/0?prefix=tickd:",
            "not a url",
        ] {
            assert_eq!(url(plain), plain);
        }
    }

    #[test]
    fn every_url_in_a_message_is_masked() {
        assert_eq!(
            text("opening mysql://a:b@h/x failed; also redis://:c@r:1 \"postgres://d:e@p/q\""),
            "opening mysql://a:***@h/x failed; also redis://:***@r:1 \"postgres://d:***@p/q\""
        );
        assert_eq!(text("no url here: a:b@c"), "no url here: a:b@c");
        assert_eq!(url("mysql://u:pa/ss@h/x"), "mysql://u:***@h/x");
    }
}
