//! JSON values to YAML text (saphyr's emitter: keys in the values' order, strings quoted
//! where YAML 1.1 or 1.2 would read them as something else) and back.

use std::borrow::Cow;

use saphyr::{LoadableYamlNode as _, Mapping, Scalar, ScalarStyle, Yaml, YamlEmitter};
use serde_json::{Map, Number, Value};

/// One YAML document per value, each starting with `---`, with a final newline.
#[must_use]
pub fn to_documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        let y = to_yaml(doc);
        let mut text = String::new();
        let mut emitter = YamlEmitter::new(&mut text);
        emitter.multiline(true);
        // Writing into a String cannot fail.
        let _ = emitter.dump(&y);
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// One YAML document, without the leading `---` (a Compose file).
#[must_use]
pub fn to_document(doc: &Value) -> String {
    let text = to_documents(std::slice::from_ref(doc));
    text.strip_prefix("---\n").unwrap_or(&text).to_owned()
}

/// Marks keys whose order must be kept (a JSON object's keys are sorted): see [`ordered`].
const ORDER_MARK: char = '\u{1}';

/// A mapping that keeps `entries` in their order when written (Compose's `depends_on`
/// and `services` in declaration order, so a re-import gives the same definitions).
#[must_use]
pub fn ordered(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| (format!("{ORDER_MARK}{i:08}:{k}"), v))
            .collect(),
    )
}

fn key_text(k: &str) -> String {
    match k
        .strip_prefix(ORDER_MARK)
        .and_then(|rest| rest.split_once(':'))
    {
        Some((_, key)) => key.to_owned(),
        None => k.to_owned(),
    }
}

fn to_yaml(v: &Value) -> Yaml<'static> {
    match v {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => number(n),
        Value::String(s) => Yaml::Value(Scalar::String(Cow::Owned(s.clone()))),
        Value::Array(items) => Yaml::Sequence(items.iter().map(to_yaml).collect()),
        Value::Object(map) => {
            let mut m = Mapping::new();
            for (k, v) in map {
                m.insert(
                    Yaml::Value(Scalar::String(Cow::Owned(key_text(k)))),
                    to_yaml(v),
                );
            }
            Yaml::Mapping(m)
        }
    }
}

fn number(n: &Number) -> Yaml<'static> {
    match n.as_i64() {
        Some(i) => Yaml::Value(Scalar::Integer(i)),
        None => Yaml::Representation(Cow::Owned(n.to_string()), ScalarStyle::Plain, None),
    }
}

/// Parses YAML text (one or more documents) into JSON values, as a consumer would read
/// them (YAML 1.2 core schema). Empty documents are skipped.
///
/// # Errors
/// The parser's message when the text is not YAML, or a mapping key is not a string.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    docs.iter()
        .filter(|d| !matches!(d, Yaml::Value(Scalar::Null) | Yaml::BadValue))
        .map(from_yaml)
        .collect()
}

fn from_yaml(y: &Yaml<'_>) -> Result<Value, String> {
    Ok(match y {
        Yaml::Value(Scalar::Null) | Yaml::BadValue => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => {
            Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number)
        }
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Representation(s, _, _) => Value::String(s.to_string()),
        Yaml::Sequence(items) => {
            Value::Array(items.iter().map(from_yaml).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::Value(Scalar::String(s)) => s.to_string(),
                    Yaml::Value(Scalar::Integer(i)) => i.to_string(),
                    Yaml::Value(Scalar::Boolean(b)) => b.to_string(),
                    other => return Err(format!("a mapping key that is not a string: {other:?}")),
                };
                out.insert(key, from_yaml(v)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(_, inner) => from_yaml(inner)?,
        Yaml::Alias(_) => return Err("aliases are not expected in exported files".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn ambiguous_strings_stay_strings_through_a_round_trip() {
        let doc = json!({
            "a": "yes", "b": "on", "c": "1.10", "d": "0777", "e": "null", "f": "", "g": "~",
            "h": "multi\nline\n", "i": "-x", "j": "a: b", "k": 42, "l": true, "m": null,
            "n": "#not a comment", "o": "${PORT}", "p": ["x", {"q": "r"}], "s": " padded "
        });
        let text = to_documents(std::slice::from_ref(&doc));
        let back = parse_documents(&text).unwrap();
        assert_eq!(back, vec![doc], "{text}");
    }

    #[test]
    fn ordered_mappings_keep_their_order() {
        let doc = json!({ "m": ordered([("b".to_owned(), json!(1)), ("a".to_owned(), json!(2))]) });
        let text = to_document(&doc);
        assert_eq!(text, "m:\n  b: 1\n  a: 2\n");
    }

    #[test]
    fn several_documents_parse_back_in_order() {
        let docs = vec![json!({"kind": "A"}), json!({"kind": "B"})];
        let text = to_documents(&docs);
        assert_eq!(text.matches("---").count(), 2);
        assert_eq!(parse_documents(&text).unwrap(), docs);
    }
}
