//! Deriving a registry key from a request URI's authority or `Host` header.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::Ipv6Addr;

use arrayvec::ArrayString;
use http::header::HOST;
use http::uri::Authority;
use http::{HeaderMap, Uri};

/// Returns the registry key for `uri`: its authority, normalised, or `None` if the URI
/// has no usable authority (such requests pass the layer untracked).
///
/// Normalisation makes every spelling of one host and port the same key:
///
/// - userinfo (`user:secret@`) is dropped, so it never reaches a key, a log line or an
///   error;
/// - the host is lower-cased and a trailing dot is dropped;
/// - IPv6 literals take their canonical compressed form (`[2001:DB8:0::1]` becomes
///   `[2001:db8::1]`);
/// - the port is written without leading zeros, and dropped when it is the scheme's
///   default (80 for `http`/`ws`, 443 for `https`/`wss`, in any case) or empty.
///
/// A port that is not a number from 0 to 65535, an empty host, a host ending in an
/// empty label (`h..`), or a host with a stray `:` gives `None`: such a URI never
/// shares a key with a real host.
///
/// The result borrows from `uri` whenever the authority is already in canonical form,
/// so the common case allocates nothing.
///
/// ```
/// use http::Uri;
/// use url_backoff_registry::authority_key;
///
/// let key = |uri: &str| authority_key(&uri.parse::<Uri>().unwrap()).map(|k| k.into_owned());
/// assert_eq!(key("https://API.Example.com:443/x").as_deref(), Some("api.example.com"));
/// assert_eq!(key("http://h:8080/").as_deref(), Some("h:8080"));
/// assert_eq!(key("http://[::1]:3000/").as_deref(), Some("[::1]:3000"));
/// assert_eq!(key("/relative/path"), None);
/// ```
pub fn authority_key(uri: &Uri) -> Option<Cow<'_, str>> {
    let authority = uri.authority()?.as_str();
    let default_port = uri.scheme_str().and_then(default_port);
    normalize_authority(authority, default_port)
}

/// Returns the registry key for a request's `Host` header, normalised like
/// [`authority_key`], or `None` unless there is exactly one `Host` field holding a valid
/// authority without userinfo.
///
/// `scheme` is the request URI's scheme, if it has one: only then is a default port
/// dropped. A request that reached a server in origin form (`GET /path`) has none, so
/// `Host: example.com:80` stays `example.com:80`.
///
/// Validating the header as an [`Authority`] copies it once; the key itself borrows
/// from the header when it is already canonical.
pub(crate) fn host_header_key<'a>(
    headers: &'a HeaderMap,
    scheme: Option<&str>,
) -> Option<Cow<'a, str>> {
    let mut values = headers.get_all(HOST).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }

    let text = value.to_str().ok()?;
    // A `Host` field is `host[:port]`: userinfo has no place in it.
    if text.parse::<Authority>().is_err() || text.contains('@') {
        return None;
    }
    normalize_authority(text, scheme.and_then(default_port))
}

/// Normalises an authority string (`[userinfo@]host[:port]`) into a key; see
/// [`authority_key`] for the rules.
pub(crate) fn normalize_authority(
    authority: &str,
    default_port: Option<u16>,
) -> Option<Cow<'_, str>> {
    match already_canonical(authority, default_port) {
        Some(key) => Some(Cow::Borrowed(key)),
        None => normalize_fully(authority, default_port),
    }
}

/// The full treatment: userinfo, brackets, upper case, leading zeros and all.
fn normalize_fully(authority: &str, default_port: Option<u16>) -> Option<Cow<'_, str>> {
    let host_and_port = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };

    let (host, port_text) = split_host_port(host_and_port)?;
    let port = parse_port(port_text)?.filter(|&port| Some(port) != default_port);
    let host = canonical_host(host)?;

    match (host, port) {
        (host, None) => Some(host),
        (Cow::Borrowed(host), Some(_)) if is_canonical_pair(host_and_port, host, port_text) => {
            Some(Cow::Borrowed(host_and_port))
        }
        (host, Some(port)) => Some(Cow::Owned(format!("{host}:{port}"))),
    }
}

/// The fast path for the common case, in one pass over the bytes: a lower-case host
/// name or IPv4 address, optionally followed by a port without leading zeros. Returns
/// the key (the authority itself, or without its default port), or `None` when the
/// authority needs the full treatment below, which gives the same answer for it.
fn already_canonical(authority: &str, default_port: Option<u16>) -> Option<&str> {
    // One pass: every byte up to an optional `:` must be a canonical host byte.
    let bytes = authority.as_bytes();
    let mut host_end = bytes.len();
    for (index, &byte) in bytes.iter().enumerate() {
        if !CANONICAL_HOST_BYTE[usize::from(byte)] {
            if byte != b':' {
                return None;
            }
            host_end = index;
            break;
        }
    }

    let host = &authority[..host_end];
    if host.is_empty() || host.ends_with('.') {
        return None;
    }
    if host_end == bytes.len() {
        return Some(authority);
    }

    let port = &authority[host_end + 1..];
    let digits = port.bytes().all(|byte| byte.is_ascii_digit());
    if !digits || port.is_empty() || port.len() > 5 || (port.starts_with('0') && port != "0") {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    match Some(port) == default_port {
        true => Some(host),
        false => Some(authority),
    }
}

/// The bytes a canonical host name or IPv4 address is made of: lower-case letters,
/// digits, `-` and `.`.
const CANONICAL_HOST_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = matches!(byte as u8, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.');
        byte += 1;
    }
    table
};

/// Returns whether `host_and_port` is exactly the canonical `host` followed by a
/// canonical port (no leading zeros), so it can serve as the key as it is.
fn is_canonical_pair(host_and_port: &str, host: &str, port_text: Option<&str>) -> bool {
    let port_is_canonical = port_text.is_some_and(|text| !text.starts_with('0') || text == "0");
    port_is_canonical && host_and_port.len() == host.len() + 1 + port_text.map_or(0, str::len)
}

/// Splits `host[:port]`, where `host` may be a bracketed IPv6 literal. Returns the
/// host and the text after the `:`, if there is one.
fn split_host_port(host_and_port: &str) -> Option<(&str, Option<&str>)> {
    let host_end = if host_and_port.starts_with('[') {
        host_and_port.find(']')? + 1
    } else {
        host_and_port.find(':').unwrap_or(host_and_port.len())
    };

    let (host, rest) = host_and_port.split_at(host_end);
    if host.is_empty() {
        return None;
    }
    match rest.strip_prefix(':') {
        Some(port) => Some((host, Some(port))),
        None if rest.is_empty() => Some((host, None)),
        None => None,
    }
}

/// Parses the port text: `None` or empty means no port; anything but 1 to 5 digits
/// with a value up to 65535 is invalid.
fn parse_port(text: Option<&str>) -> Option<Option<u16>> {
    match text {
        None | Some("") => Some(None),
        Some(text) if text.bytes().all(|byte| byte.is_ascii_digit()) => {
            let trimmed = text.trim_start_matches('0');
            if trimmed.len() > 5 {
                return None;
            }
            let value = if trimmed.is_empty() {
                0
            } else {
                trimmed.parse().ok()?
            };
            Some(Some(value))
        }
        Some(_) => None,
    }
}

/// Returns the host in canonical form, borrowed when it already is.
fn canonical_host(host: &str) -> Option<Cow<'_, str>> {
    if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return Some(canonical_ip_literal(host, literal));
    }

    // One trailing dot (the DNS root) names the same host; a second one would be an
    // empty label, which no host has.
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.ends_with('.') || host.contains(['[', ']', ':']) {
        return None;
    }
    if host.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return Some(Cow::Owned(host.to_ascii_lowercase()));
    }
    Some(Cow::Borrowed(host))
}

/// Canonicalises the inside of `[...]`: an IPv6 address in its compressed lower-case
/// form; anything else (a zone id, an IPvFuture literal) lower-cased as it is.
fn canonical_ip_literal<'a>(bracketed: &'a str, literal: &str) -> Cow<'a, str> {
    let Ok(address) = literal.parse::<Ipv6Addr>() else {
        return lowercase(bracketed);
    };

    let mut formatted = ArrayString::<48>::new();
    let _ = write!(formatted, "{address}");
    if formatted.as_str() == literal {
        Cow::Borrowed(bracketed)
    } else {
        Cow::Owned(format!("[{formatted}]"))
    }
}

fn lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    // Schemes are case-insensitive: `WS://h:80` is `ws://h:80`.
    let is = |name: &str| scheme.eq_ignore_ascii_case(name);
    if is("http") || is("ws") {
        Some(80)
    } else if is("https") || is("wss") {
        Some(443)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(authority: &str, default_port: Option<u16>) -> Option<(String, bool)> {
        normalize_authority(authority, default_port)
            .map(|key| (key.to_string(), matches!(key, Cow::Borrowed(_))))
    }

    #[test]
    fn canonical_authorities_are_borrowed() {
        assert_eq!(
            key("api.example.com", Some(443)),
            Some(("api.example.com".into(), true))
        );
        assert_eq!(
            key("api.example.com:443", Some(443)),
            Some(("api.example.com".into(), true))
        );
        assert_eq!(
            key("127.0.0.1:8080", Some(80)),
            Some(("127.0.0.1:8080".into(), true))
        );
        assert_eq!(key("u:p@h:81", Some(80)), Some(("h:81".into(), true)));
        assert_eq!(
            key("[::1]:3000", Some(80)),
            Some(("[::1]:3000".into(), true))
        );
        assert_eq!(key("h:", Some(80)), Some(("h".into(), true)));
        assert_eq!(
            key("example.com.", Some(80)),
            Some(("example.com".into(), true))
        );
    }

    #[test]
    fn other_spellings_are_normalised() {
        assert_eq!(
            key("API.Example.COM", None),
            Some(("api.example.com".into(), false))
        );
        assert_eq!(
            key("example.com.:8080", None),
            Some(("example.com:8080".into(), false))
        );
        assert_eq!(key("h:0080", Some(80)), Some(("h".into(), true)));
        assert_eq!(key("h:08080", Some(80)), Some(("h:8080".into(), false)));
        assert_eq!(key("h:000", Some(80)), Some(("h:0".into(), false)));
        assert_eq!(
            key("Example.com.", Some(80)),
            Some(("example.com".into(), false))
        );
        assert_eq!(
            key("[2001:DB8:0:0:0:0:0:1]:443", Some(443)),
            Some(("[2001:db8::1]".into(), false))
        );
        assert_eq!(
            key("[FE80::1%25ETH0]", None),
            Some(("[fe80::1%25eth0]".into(), false))
        );
    }

    #[test]
    fn port_zero_is_kept_in_one_spelling() {
        assert_eq!(key("h:0", Some(80)), Some(("h:0".into(), true)));
    }

    fn host_key(values: &[&[u8]], scheme: Option<&str>) -> Option<String> {
        let mut headers = HeaderMap::new();
        for value in values {
            let value = http::HeaderValue::from_bytes(value).unwrap();
            headers.append(HOST, value);
        }
        host_header_key(&headers, scheme).map(Cow::into_owned)
    }

    #[test]
    fn host_headers_are_normalised_like_authorities() {
        assert_eq!(
            host_key(&[b"Example.COM."], None).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            host_key(&[b"example.com:0080"], None).as_deref(),
            Some("example.com:80")
        );
        assert_eq!(
            host_key(&[b"example.com:80"], Some("http")).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            host_key(&[b"[2001:DB8:0:0:0:0:0:1]:8080"], None).as_deref(),
            Some("[2001:db8::1]:8080")
        );
        assert_eq!(
            host_key(&[b"127.0.0.1:3000"], None).as_deref(),
            Some("127.0.0.1:3000")
        );
    }

    #[test]
    fn invalid_host_headers_are_untracked() {
        let invalid: [&[u8]; 12] = [
            b"",
            b"exa mple.com",
            b"example.com:65536",
            b"example.com:http",
            b"user:secret@example.com",
            b"@example.com",
            b"example.com/path",
            b"example.com?q",
            b"[::1",
            b":80",
            b"h\xc3\xa9.example",
            b"example.com:80:80",
        ];
        for value in invalid {
            assert_eq!(
                host_key(&[value], None),
                None,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(host_key(&[b"a.example", b"a.example"], None), None);
        assert_eq!(host_key(&[], None), None);
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_treatment() {
        let cases = [
            "api.example.com",
            "api.example.com:443",
            "127.0.0.1:8080",
            "h:0",
            "h:",
            "h:080",
            "h:65536",
            "h..",
            ":80",
            "a-b.c-d:1",
            "x:99999",
        ];
        for authority in cases {
            for default_port in [None, Some(80), Some(443)] {
                let fast = already_canonical(authority, default_port);
                let full = normalize_fully(authority, default_port);
                if let Some(fast) = fast {
                    assert_eq!(full.as_deref(), Some(fast), "{authority} {default_port:?}");
                }
            }
        }
        assert_eq!(
            already_canonical("api.example.com:443", Some(443)),
            Some("api.example.com")
        );
        assert_eq!(already_canonical("API.example.com", None), None);
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_never_disagrees(authority in "[a-zA-Z0-9.:@_-]{0,24}") {
            for default_port in [None, Some(80), Some(443)] {
                if let Some(fast) = already_canonical(&authority, default_port) {
                    let full = normalize_fully(&authority, default_port);
                    proptest::prop_assert_eq!(full.as_deref(), Some(fast));
                }
            }
        }
    }

    #[test]
    fn invalid_authorities_are_untracked() {
        assert_eq!(key("h:65536", Some(80)), None);
        assert_eq!(key("h:8o", Some(80)), None);
        assert_eq!(key("h:1:2", Some(80)), None);
        assert_eq!(key(":80", Some(80)), None);
        assert_eq!(key("user@", Some(80)), None);
        assert_eq!(key(".", Some(80)), None);
        assert_eq!(key("..", Some(80)), None);
        assert_eq!(key("5..", Some(80)), None);
        assert_eq!(key("[::1]x", Some(80)), None);
        assert_eq!(key("[::1", Some(80)), None);
        assert_eq!(
            key("h:0000000000000000080", Some(80)),
            Some(("h".into(), true))
        );
    }
}
