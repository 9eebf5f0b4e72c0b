//! A small streaming JSON writer that produces exactly what `serde_json`'s pretty printer
//! does (two-space indent, `": "`, `[]`/`{}` when empty, the same string escapes), into a
//! `Vec<u8>`: reports are written with one `write_all` and no intermediate values.

/// Pretty JSON through a 64 KiB buffer into a writer. Callers pair every `begin_*` with
/// its `end_*`, then call [`Pretty::finish`].
pub(crate) struct Pretty<'a> {
    out: Vec<u8>,
    sink: &'a mut dyn std::io::Write,
    /// The first write error; later output is dropped and `finish` returns it.
    err: Option<std::io::Error>,
    /// One entry per open object/array: has it a member yet?
    has_value: Vec<bool>,
}

/// Flush to the sink once this much is buffered.
const CHUNK: usize = 64 * 1024;

impl<'a> Pretty<'a> {
    /// Write into `sink`.
    pub(crate) fn new(sink: &'a mut dyn std::io::Write) -> Self {
        Self {
            out: Vec::with_capacity(CHUNK + 4096),
            sink,
            err: None,
            has_value: Vec::with_capacity(16),
        }
    }

    fn flush(&mut self) {
        if self.err.is_none()
            && let Err(e) = self.sink.write_all(&self.out)
        {
            self.err = Some(e);
        }
        self.out.clear();
    }

    /// Append raw bytes (after the last value: the trailing newline).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Write out what is buffered.
    ///
    /// # Errors
    /// The first error of the sink.
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.flush();
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn newline_indent(&mut self) {
        const SPACES: &[u8; 64] = &[b' '; 64];
        self.out.push(b'\n');
        let mut n = 2 * self.has_value.len();
        while n > 0 {
            let k = n.min(SPACES.len());
            self.out.extend_from_slice(&SPACES[..k]);
            n -= k;
        }
    }

    /// Before a member of the innermost container.
    fn member(&mut self) {
        if self.out.len() >= CHUNK {
            self.flush();
        }
        let first = match self.has_value.last_mut() {
            Some(h) => !std::mem::replace(h, true),
            None => return,
        };
        if !first {
            self.out.push(b',');
        }
        self.newline_indent();
    }

    /// `{`
    pub(crate) fn begin_object(&mut self) {
        self.out.push(b'{');
        self.has_value.push(false);
    }

    /// `}`
    pub(crate) fn end_object(&mut self) {
        if self.has_value.pop() == Some(true) {
            self.newline_indent();
        }
        self.out.push(b'}');
    }

    /// `[`
    pub(crate) fn begin_array(&mut self) {
        self.out.push(b'[');
        self.has_value.push(false);
    }

    /// `]`
    pub(crate) fn end_array(&mut self) {
        if self.has_value.pop() == Some(true) {
            self.newline_indent();
        }
        self.out.push(b']');
    }

    /// An object key; the value follows with one of the value methods.
    pub(crate) fn key(&mut self, key: &str) {
        self.member();
        escape_str(&mut self.out, key);
        self.out.extend_from_slice(b": ");
    }

    /// Before an array element written with a value method.
    pub(crate) fn element(&mut self) {
        self.member();
    }

    /// A string value.
    pub(crate) fn str(&mut self, s: &str) {
        escape_str(&mut self.out, s);
    }

    /// An unsigned integer value.
    pub(crate) fn uint(&mut self, n: u64) {
        push_uint(&mut self.out, n);
    }

    /// The buffer, to write a value whose layout the caller spells out (it must be what
    /// the methods above would write at the current position).
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// A boolean value.
    #[cfg(test)]
    pub(crate) fn bool(&mut self, b: bool) {
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// `"key": "value"`.
    pub(crate) fn field_str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.str(value);
    }

    /// `"key": 123`.
    pub(crate) fn field_uint(&mut self, key: &str, value: u64) {
        self.key(key);
        self.uint(value);
    }
}

/// `n` in decimal.
pub(crate) fn push_uint(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Does any byte of the 8 in `x` need escaping (`"`, `\\`, a control character)?
/// Exact, by the classic "has a zero / smaller byte" word tricks.
fn chunk_needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0;
    below_space || has_zero(x ^ (ONES * u64::from(b'"'))) || has_zero(x ^ (ONES * u64::from(b'\\')))
}

/// Index of the first byte at or after `from` that needs escaping.
fn next_escape(bytes: &[u8], mut from: usize) -> Option<usize> {
    let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    while let Some(chunk) = bytes.get(from..from + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if chunk_needs_escape(u64::from_le_bytes(word)) {
            return chunk.iter().position(|&b| needs(b)).map(|i| from + i);
        }
        from += 8;
    }
    bytes[from..]
        .iter()
        .position(|&b| needs(b))
        .map(|i| from + i)
}

/// `s` as a JSON string, escaped like `serde_json` (`\"`, `\\`, `\b\t\n\f\r`, other
/// control characters as `\u00XX`; everything else, `/` and non-ASCII included, as is).
pub(crate) fn escape_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Nearly every string has nothing to escape: check all bytes without an early exit
    // (which the compiler vectorizes), then copy at once.
    let special = bytes.iter().fold(0u8, |acc, &b| {
        acc | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    });
    if special == 0 {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    while let Some(i) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_serde_json_pretty() {
        let value = serde_json::json!({
            "a": [],
            "b": {},
            "c": [1, {"d": "x\"y\\z\u{1}\u{8}\t\n\u{c}\r/é\u{7f}"}, true],
            "e": {"f": false, "g": [[]]},
        });
        let mut out = Vec::new();
        let mut w = Pretty::new(&mut out);
        w.begin_object();
        w.key("a");
        w.begin_array();
        w.end_array();
        w.key("b");
        w.begin_object();
        w.end_object();
        w.key("c");
        w.begin_array();
        w.element();
        w.uint(1);
        w.element();
        w.begin_object();
        w.field_str("d", "x\"y\\z\u{1}\u{8}\t\n\u{c}\r/é\u{7f}");
        w.end_object();
        w.element();
        w.bool(true);
        w.end_array();
        w.key("e");
        w.begin_object();
        w.key("f");
        w.bool(false);
        w.key("g");
        w.begin_array();
        w.element();
        w.begin_array();
        w.end_array();
        w.end_array();
        w.end_object();
        w.end_object();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }
}
