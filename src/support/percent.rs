//! Percent-encoding, one way for the whole tree (the `percent-encoding`
//! crate). URLs chatops reads or writes for PostgreSQL follow libpq: `%XX`
//! is decoded in every part of the URI (user, password, host, database,
//! query parameters) and `+` is never a space. HTML-form encoding (`+` for
//! a space) is only for HTTP query strings, where browsers and Express use it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Decodes `%XX` (as libpq does); `+` stays a plus, a `%` not followed by
/// two hex digits stays as written, bytes that are not UTF-8 become U+FFFD.
pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Encodes everything but RFC 3986's unreserved characters: safe in any part
/// of a URL (user, password, path segment, query key or value).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// HTML-form decoding for HTTP query strings: `+` is a space, then `%XX`.
pub fn decode_form(s: &str) -> String {
    decode(&s.replace('+', " "))
}

/// HTML-form encoding (`application/x-www-form-urlencoded`): a space is `+`.
/// This is how `url`'s `query_pairs_mut` writes query strings.
pub fn encode_form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `k=v&k2=v2` split and decoded as libpq reads a URI's parameters (no `+`
/// as space); a pair without `=` has an empty value; empty pairs are skipped.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_decoding_keeps_a_plus() {
        assert_eq!(decode("a+b%2Bc%20d"), "a+b+c d");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("caf%C3%A9"), "café");
        assert_eq!(decode_form("a%20b+c%"), "a b c%");
    }

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(
            encode("a b+c/d@e:f~g.h_i-j"),
            "a%20b%2Bc%2Fd%40e%3Af~g.h_i-j"
        );
        assert_eq!(encode("café"), "caf%C3%A9");
        assert_eq!(encode_form("a b+c"), "a+b%2Bc");
        for s in ["p@ss w+rd/%", "ü", ""] {
            assert_eq!(decode(&encode(s)), s);
            assert_eq!(decode_form(&encode_form(s)), s);
        }
    }

    #[test]
    fn query_pairs_as_libpq_reads_them() {
        assert_eq!(
            query_pairs("a=1+2&&b&c=x%3Dy&d=%20"),
            [("a", "1+2"), ("b", ""), ("c", "x=y"), ("d", " ")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
