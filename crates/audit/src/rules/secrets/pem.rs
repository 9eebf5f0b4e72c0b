//! Offline checks of PEM private-key blocks: is the body a complete key, a sample, or a
//! placeholder? Cheap (a base64 decode and one DER length), no cryptography.
//!
//! A real key's body is base64 that decodes to a whole structure: a DER `SEQUENCE` whose
//! declared length is exactly the rest of the bytes (PKCS#1, PKCS#8, SEC1, DSA, encrypted
//! PKCS#8), or the `openssh-key-v1` format. Documentation and tests hold truncated bodies
//! (`MIIEvQIBADANBg…` cut after a line or two), bodies with `...`, or text that is not
//! base64 at all: none of them is a key anyone can use.

use crate::rules::scan::is_placeholder;

/// What a private-key block holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyBody {
    /// A complete key; the string is its base64 body without line breaks (the canonical
    /// form for grouping: the same key in a YAML file and a JSON string is one secret).
    Complete(String),
    /// Decodes to something that is not a complete key: the reason, for messages.
    Sample(&'static str),
    /// `...`, `<paste here>`, an empty body: not key material at all.
    Placeholder,
    /// Could not be checked (no `-----END` line, or text around the base64 this parser
    /// does not know): treat as a key, as before.
    Unknown,
}

/// How far past the header the `-----END` line may be (a 16384-bit RSA key is ~12 KiB).
const MAX_BODY: usize = 16 * 1024;

/// Check the block whose header (`-----BEGIN {kind}PRIVATE KEY-----`, `kind` trimmed:
/// `""`, `RSA`, `EC`, `OPENSSH`, `ENCRYPTED`, …) ends where `after` starts.
pub(crate) fn check(kind: &str, after: &str) -> KeyBody {
    let window = &after[..floor_char_boundary(after, MAX_BODY)];
    let Some(end) = window.find("-----END") else {
        return KeyBody::Unknown;
    };
    // JSON strings carry `\n` escapes (doubled inside an escaped string).
    let body = window[..end]
        .replace("\\\\n", "\n")
        .replace("\\n", "\n")
        .replace("\\\\r", "")
        .replace("\\r", "");
    let mut b64 = String::with_capacity(body.len());
    let mut headers = false;
    for line in body.lines() {
        let line = line
            .trim()
            .trim_matches(|c| matches!(c, '"' | '\'' | ',' | '\\'))
            .trim();
        if line.is_empty() {
            continue;
        }
        // `Proc-Type: 4,ENCRYPTED`, `DEK-Info: …`, PGP `Version: …`.
        if line.contains(": ") {
            headers = true;
            continue;
        }
        // The PGP armor checksum (`=AbCd`).
        if kind == "PGP" && line.starts_with('=') && line.len() == 5 {
            continue;
        }
        b64.push_str(line);
    }
    // Only a short body is matched against placeholder words: a real key's kilobyte of
    // base64 holds `xxx` or `todo` by chance often enough.
    if b64.is_empty()
        || b64.contains("...")
        || b64.contains('\u{2026}')
        || b64.contains('*')
        || (b64.len() < 64 && is_placeholder(&b64))
    {
        return KeyBody::Placeholder;
    }
    if !b64
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return KeyBody::Unknown;
    }
    let Some(bytes) = decode_base64(&b64) else {
        return KeyBody::Sample("its body is not valid base64");
    };
    // An encrypted legacy PEM body (headers) and PGP packets are not DER: decoding is
    // all that can be checked offline.
    let complete = if headers || kind == "PGP" {
        true
    } else if kind == "OPENSSH" {
        bytes.starts_with(b"openssh-key-v1\0")
    } else {
        der_sequence_is_complete(&bytes)
    };
    if complete {
        KeyBody::Complete(b64)
    } else if kind == "OPENSSH" {
        KeyBody::Sample("its body is not an OpenSSH key")
    } else {
        KeyBody::Sample("its body is shorter or longer than the key it declares")
    }
}

/// The first private-key header in `text`: `(kind, byte range of the header)`, `kind`
/// being what stands between `BEGIN` and `PRIVATE KEY`, trimmed (`""`, `RSA`, `OPENSSH`).
pub(crate) fn find_header(text: &str) -> Option<(&str, std::ops::Range<usize>)> {
    let mut from = 0;
    while let Some(i) = text[from..].find("PRIVATE KEY") {
        let at = from + i;
        from = at + "PRIVATE KEY".len();
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let Some(begin) = text[line_start..at].rfind("-----BEGIN ") else {
            continue;
        };
        let begin = line_start + begin;
        let mut end = from;
        if text[end..].starts_with(" BLOCK") {
            end += " BLOCK".len();
        }
        if !text[end..].starts_with("-----") {
            continue;
        }
        end += "-----".len();
        let kind = text[begin + "-----BEGIN ".len()..at].trim();
        return Some((kind, begin..end));
    }
    None
}

/// The canonical body of the first complete private key in `text`, for grouping the
/// same key across files (`None` when there is none).
pub(crate) fn first_key_body(text: &str) -> Option<String> {
    let (kind, header) = find_header(text)?;
    match check(kind, &text[header.end..]) {
        KeyBody::Complete(b64) => Some(b64),
        _ => None,
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Standard base64 with padding (`=` only at the end, length a multiple of 4), or `None`.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 || bytes[..bytes.len() - pad].contains(&b'=') {
        return None;
    }
    let value = |b: u8| -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => 0,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for &b in chunk {
            n = (n << 6) | value(b)?;
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out.truncate(out.len() - pad);
    Some(out)
}

/// Is `der` one DER `SEQUENCE` whose declared length is exactly the bytes after its
/// header?
fn der_sequence_is_complete(der: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || der.len() < 2 + n {
            return false;
        }
        let len = der[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, 2 + n)
    };
    header + len == der.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{encode_base64, fake_private_key};

    fn body_of(block: &str) -> &str {
        let start = block.find("KEY-----").map_or(0, |i| i + "KEY-----".len());
        &block[start..]
    }

    #[test]
    fn base64_round_trips_and_rejects_bad_input() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0xff, 0x00, 0x80]] {
            if data.is_empty() {
                continue;
            }
            assert_eq!(decode_base64(&encode_base64(data)).as_deref(), Some(data));
        }
        for bad in ["abc", "ab=c", "a===", "ab!d", ""] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn complete_keys_are_complete_wherever_they_are_embedded() {
        for kind in ["", "RSA ", "EC ", "ENCRYPTED ", "OPENSSH "] {
            let block = fake_private_key(kind, 3);
            let KeyBody::Complete(b64) = check(kind.trim(), body_of(&block)) else {
                panic!("{kind}: {:?}", check(kind.trim(), body_of(&block)));
            };
            // The same key as a JSON string, and indented in YAML, is the same body.
            let json = block.replace('\n', "\\n");
            assert_eq!(
                check(kind.trim(), body_of(&json)),
                KeyBody::Complete(b64.clone())
            );
            let yaml = block.replace('\n', "\n    ");
            assert_eq!(
                check(kind.trim(), body_of(&yaml)),
                KeyBody::Complete(b64.clone())
            );
            assert_eq!(
                first_key_body(&format!("key: |\n  {yaml}")),
                Some(b64.clone())
            );
            let with_cert = format!("-----BEGIN CERTIFICATE-----\nx\n{block}");
            let found = find_header(&with_cert).map(|(k, _)| k);
            assert_eq!(found, Some(kind.trim()));
        }
    }

    #[test]
    fn truncated_undecodable_and_placeholder_bodies_are_not_keys() {
        let head = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
        // Decodes, but declares a ~1.2 KB key and holds 78 bytes.
        let truncated = format!("\n{head}\n{head}\n-----END PRIVATE KEY-----\n");
        assert!(matches!(check("", &truncated), KeyBody::Sample(_)));
        // Not base64 (a length that is not a multiple of 4).
        let odd = format!("\n{head}abc\n-----END PRIVATE KEY-----\n");
        assert_eq!(
            check("", &odd),
            KeyBody::Sample("its body is not valid base64")
        );
        let ssh = format!(
            "\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            encode_base64(b"not a key at all")
        );
        assert!(matches!(check("OPENSSH", &ssh), KeyBody::Sample(_)));
        for body in [
            "\n...\n-----END PRIVATE KEY-----",
            "\nMIIE...\n-----END PRIVATE KEY-----",
            "\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\u{2026}\n-----END PRIVATE KEY-----",
            "\n<your key here>\n-----END PRIVATE KEY-----",
            "\n\n-----END PRIVATE KEY-----",
        ] {
            assert_eq!(check("", body), KeyBody::Placeholder, "{body}");
        }
        // No end line: cannot tell, so not downgraded.
        assert_eq!(check("", &format!("\n{head}\n")), KeyBody::Unknown);
    }
}
