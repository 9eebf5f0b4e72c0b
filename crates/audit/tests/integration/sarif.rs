//! SARIF 2.1.0 output checked against the schema's shape: required properties, allowed
//! properties (the schema forbids unknown ones on most objects), enums and minimums.

use serde_json::Value;

use crate::common::{fixture, run};

type Problems = Vec<String>;

fn obj<'a>(v: &'a Value, at: &str, p: &mut Problems) -> Option<&'a serde_json::Map<String, Value>> {
    let o = v.as_object();
    if o.is_none() {
        p.push(format!("{at}: expected an object"));
    }
    o
}

/// Check `v` has every key in `required` and no key outside `allowed`.
fn keys(v: &Value, at: &str, required: &[&str], allowed: &[&str], p: &mut Problems) {
    let Some(o) = obj(v, at, p) else { return };
    for r in required {
        if !o.contains_key(*r) {
            p.push(format!("{at}: missing required `{r}`"));
        }
    }
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) && !required.contains(&k.as_str()) {
            p.push(format!("{at}: property `{k}` is not allowed"));
        }
    }
}

fn message(v: &Value, at: &str, p: &mut Problems) {
    keys(
        v,
        at,
        &[],
        &["text", "markdown", "id", "arguments", "properties"],
        p,
    );
    if v.get("text").is_none() && v.get("id").is_none() {
        p.push(format!("{at}: message needs `text` or `id`"));
    }
}

fn multiformat(v: &Value, at: &str, p: &mut Problems) {
    keys(v, at, &["text"], &["markdown", "properties"], p);
}

fn property_bag(v: &Value, at: &str, p: &mut Problems) {
    if let Some(tags) = v.get("tags") {
        let Some(arr) = tags.as_array() else {
            p.push(format!("{at}.tags: expected an array"));
            return;
        };
        let mut seen = std::collections::HashSet::new();
        for t in arr {
            if !t.is_string() || !seen.insert(t.to_string()) {
                p.push(format!("{at}.tags: must be unique strings"));
            }
        }
    }
    if let Some(s) = v.get("security-severity") {
        let ok = s
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|x| (0.0..=10.0).contains(&x));
        if !ok {
            p.push(format!(
                "{at}: security-severity must be a numeric string 0–10"
            ));
        }
    }
}

fn level(v: Option<&Value>, at: &str, p: &mut Problems) {
    if let Some(l) = v
        && !matches!(l.as_str(), Some("none" | "note" | "warning" | "error"))
    {
        p.push(format!("{at}: bad level {l}"));
    }
}

fn physical_location(v: &Value, at: &str, p: &mut Problems) {
    keys(
        v,
        at,
        &[],
        &[
            "address",
            "artifactLocation",
            "region",
            "contextRegion",
            "properties",
        ],
        p,
    );
    let Some(a) = v.get("artifactLocation") else {
        p.push(format!("{at}: GitHub needs artifactLocation"));
        return;
    };
    keys(
        a,
        &format!("{at}.artifactLocation"),
        &[],
        &["uri", "uriBaseId", "index", "description", "properties"],
        p,
    );
    match a.get("uri").and_then(Value::as_str) {
        Some(u) if !u.contains('\\') && !u.starts_with('/') && !u.contains(' ') => {}
        other => p.push(format!(
            "{at}: uri must be a relative URI reference, got {other:?}"
        )),
    }
    let Some(r) = v.get("region") else {
        p.push(format!("{at}: GitHub needs a region"));
        return;
    };
    let at = format!("{at}.region");
    keys(
        r,
        &at,
        &[],
        &[
            "startLine",
            "startColumn",
            "endLine",
            "endColumn",
            "charOffset",
            "charLength",
            "byteOffset",
            "byteLength",
            "snippet",
            "message",
            "sourceLanguage",
            "properties",
        ],
        p,
    );
    let n = |k: &str| r.get(k).and_then(Value::as_u64);
    if n("startLine").is_none_or(|l| l < 1) {
        p.push(format!("{at}: startLine must be >= 1"));
    }
    for k in ["startColumn", "endLine", "endColumn"] {
        if r.get(k).is_some() && n(k).is_none_or(|x| x < 1) {
            p.push(format!("{at}: {k} must be an integer >= 1"));
        }
    }
    if let (Some(s), Some(e)) = (n("startLine"), n("endLine"))
        && e < s
    {
        p.push(format!("{at}: endLine before startLine"));
    }
}

fn location(v: &Value, at: &str, p: &mut Problems) {
    keys(
        v,
        at,
        &[],
        &[
            "id",
            "physicalLocation",
            "logicalLocations",
            "message",
            "annotations",
            "relationships",
            "properties",
        ],
        p,
    );
    if let Some(m) = v.get("message") {
        message(m, &format!("{at}.message"), p);
    }
    match v.get("physicalLocation") {
        Some(pl) => physical_location(pl, &format!("{at}.physicalLocation"), p),
        None => p.push(format!("{at}: no physicalLocation")),
    }
}

/// Validate a SARIF log; returns every problem found.
fn validate(log: &Value) -> Problems {
    let mut p = Vec::new();
    keys(
        log,
        "log",
        &["version", "runs"],
        &["$schema", "inlineExternalProperties", "properties"],
        &mut p,
    );
    if log["version"] != "2.1.0" {
        p.push("log.version must be 2.1.0".into());
    }
    let Some(runs) = log["runs"].as_array() else {
        p.push("log.runs must be an array".into());
        return p;
    };
    for (ri, run) in runs.iter().enumerate() {
        let at = format!("runs[{ri}]");
        keys(
            run,
            &at,
            &["tool"],
            &[
                "invocations",
                "conversion",
                "language",
                "versionControlProvenance",
                "originalUriBaseIds",
                "artifacts",
                "logicalLocations",
                "graphs",
                "results",
                "automationDetails",
                "runAggregates",
                "baselineGuid",
                "redactionTokens",
                "defaultEncoding",
                "defaultSourceLanguage",
                "newlineSequences",
                "columnKind",
                "externalPropertyFileReferences",
                "threadFlowLocations",
                "taxonomies",
                "addresses",
                "translations",
                "policies",
                "webRequests",
                "webResponses",
                "specialLocations",
                "properties",
            ],
            &mut p,
        );
        if let Some(ck) = run.get("columnKind")
            && !matches!(ck.as_str(), Some("utf16CodeUnits" | "unicodeCodePoints"))
        {
            p.push(format!("{at}.columnKind: bad value"));
        }
        keys(
            &run["tool"],
            &format!("{at}.tool"),
            &["driver"],
            &["extensions", "properties"],
            &mut p,
        );
        let driver = &run["tool"]["driver"];
        keys(
            driver,
            &format!("{at}.tool.driver"),
            &["name"],
            &[
                "guid",
                "organization",
                "product",
                "productSuite",
                "shortDescription",
                "fullDescription",
                "fullName",
                "version",
                "semanticVersion",
                "dottedQuadFileVersion",
                "releaseDateUtc",
                "downloadUri",
                "informationUri",
                "globalMessageStrings",
                "notifications",
                "rules",
                "taxa",
                "locations",
                "language",
                "contents",
                "isComprehensive",
                "localizedDataSemanticVersion",
                "minimumRequiredLocalizedDataSemanticVersion",
                "associatedComponent",
                "translationMetadata",
                "supportedTaxonomies",
                "properties",
            ],
            &mut p,
        );
        let rules = driver["rules"].as_array().cloned().unwrap_or_default();
        let mut ids = std::collections::HashSet::new();
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("{at}.rules[{i}]");
            keys(
                rule,
                &at,
                &["id"],
                &[
                    "deprecatedIds",
                    "guid",
                    "deprecatedGuids",
                    "name",
                    "deprecatedNames",
                    "shortDescription",
                    "fullDescription",
                    "messageStrings",
                    "defaultConfiguration",
                    "helpUri",
                    "help",
                    "relationships",
                    "properties",
                ],
                &mut p,
            );
            ids.insert(rule["id"].as_str().unwrap_or("").to_string());
            for k in ["shortDescription", "fullDescription", "help"] {
                match rule.get(k) {
                    Some(m) => multiformat(m, &format!("{at}.{k}"), &mut p),
                    None => p.push(format!("{at}: GitHub shows {k}; it is missing")),
                }
            }
            // Optional; when present GitHub links it, so it must be absolute.
            if rule
                .get("helpUri")
                .is_some_and(|u| !u.as_str().is_some_and(|u| u.starts_with("https://")))
            {
                p.push(format!("{at}: helpUri must be an absolute URI"));
            }
            if let Some(dc) = rule.get("defaultConfiguration") {
                keys(
                    dc,
                    &format!("{at}.defaultConfiguration"),
                    &[],
                    &["enabled", "level", "rank", "parameters", "properties"],
                    &mut p,
                );
                level(dc.get("level"), &at, &mut p);
            }
            if let Some(props) = rule.get("properties") {
                property_bag(props, &format!("{at}.properties"), &mut p);
            }
        }
        let results = run["results"].as_array().cloned().unwrap_or_default();
        for (i, r) in results.iter().enumerate() {
            let at = format!("{at}.results[{i}]");
            keys(
                r,
                &at,
                &["message"],
                &[
                    "ruleId",
                    "ruleIndex",
                    "rule",
                    "kind",
                    "level",
                    "analysisTarget",
                    "locations",
                    "guid",
                    "correlationGuid",
                    "occurrenceCount",
                    "partialFingerprints",
                    "fingerprints",
                    "stacks",
                    "codeFlows",
                    "graphs",
                    "graphTraversals",
                    "relatedLocations",
                    "suppressions",
                    "baselineState",
                    "rank",
                    "attachments",
                    "hostedViewerUri",
                    "workItemUris",
                    "provenance",
                    "fixes",
                    "taxa",
                    "webRequest",
                    "webResponse",
                    "properties",
                ],
                &mut p,
            );
            message(&r["message"], &format!("{at}.message"), &mut p);
            level(r.get("level"), &at, &mut p);
            let rule_id = r["ruleId"].as_str().unwrap_or("");
            if !ids.contains(rule_id) {
                p.push(format!(
                    "{at}: ruleId `{rule_id}` not among the driver's rules"
                ));
            }
            if let Some(ix) = r.get("ruleIndex").and_then(Value::as_u64)
                && rules.get(ix as usize).and_then(|x| x["id"].as_str()) != Some(rule_id)
            {
                p.push(format!("{at}: ruleIndex does not point at ruleId"));
            }
            match r["locations"].as_array() {
                Some(locs) if !locs.is_empty() => {
                    for (j, l) in locs.iter().enumerate() {
                        location(l, &format!("{at}.locations[{j}]"), &mut p);
                    }
                }
                _ => p.push(format!("{at}: GitHub needs at least one location")),
            }
            for (j, l) in r["relatedLocations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                location(l, &format!("{at}.relatedLocations[{j}]"), &mut p);
            }
            match r.get("partialFingerprints").and_then(Value::as_object) {
                Some(fp) if fp.values().all(Value::is_string) && !fp.is_empty() => {}
                _ => p.push(format!(
                    "{at}: partialFingerprints must map names to strings"
                )),
            }
            if let Some(props) = r.get("properties") {
                property_bag(props, &format!("{at}.properties"), &mut p);
            }
        }
    }
    p
}

#[test]
fn sarif_output_matches_the_2_1_0_shape() {
    let dir = fixture();
    let (code, out) = run(&[dir.path().to_str().unwrap(), "--format", "sarif"]);
    assert_eq!(code, 1);
    let log: Value = serde_json::from_str(&out).unwrap();
    let problems = validate(&log);
    assert!(
        problems.is_empty(),
        "SARIF problems:\n  {}",
        problems.join("\n  ")
    );
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    // Every registered rule is described, with its docs link.
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert_eq!(rules.len(), orchestra_audit::registry::ids().len());
    // The port conflict carries its related location.
    let port = results
        .iter()
        .find(|r| r["ruleId"] == "compose-port-conflict")
        .unwrap();
    assert_eq!(port["relatedLocations"].as_array().unwrap().len(), 1);
    assert_eq!(port["level"], "error");
}

#[test]
fn the_validator_catches_bad_logs() {
    let bad = serde_json::json!({
        "version": "2.0.0",
        "runs": [{
            "tool": {"driver": {"name": "x", "rules": [{"id": "r", "helpUri": "x"}]}},
            "results": [{
                "ruleId": "other",
                "message": {},
                "level": "fatal",
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": "C:\\x"}, "region": {"startLine": 0}}}],
                "extra": 1
            }]
        }]
    });
    let p = validate(&bad);
    for needle in [
        "2.1.0",
        "helpUri",
        "not among",
        "message needs",
        "bad level",
        "startLine",
        "`extra`",
        "relative URI",
        "partialFingerprints",
    ] {
        assert!(
            p.iter().any(|x| x.contains(needle)),
            "expected a problem about {needle}: {p:#?}"
        );
    }
}
