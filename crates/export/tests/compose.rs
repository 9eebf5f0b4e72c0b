//! `orchestra export compose`: Compose files import back with `orchestra import` to the
//! same definitions, and import -> export -> import is stable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use orchestra_export::{Options, Outcome, Target, export};
use orchestra_manifest::{LoadOptions, Manifest, compose::import_str, load_str};

/// Variables the fixtures' `${X:?}` and `~` need at load time.
fn vars() -> LoadOptions {
    let vars: BTreeMap<String, String> = [
        ("HOME", "/home/test"),
        ("POSTGRES_PASSWORD", "s3cret"),
        ("REGISTRY", "registry.example.com"),
        ("API_TAG", "1.4.2"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    LoadOptions {
        environment: None,
        vars,
    }
}

/// Compose text imported and loaded as the manifest beside `compose`.
fn import_load(text: &str, compose: &Path) -> Manifest {
    let imported =
        import_str(text, compose).unwrap_or_else(|e| panic!("{}: {e}\n{text}", compose.display()));
    let beside = compose.with_file_name("orchestra.yaml");
    load_str(&imported.yaml, &beside, &vars())
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", compose.display(), imported.yaml))
}

fn compose_text(m: &Manifest) -> String {
    let e = export(m, Target::Compose, &Options::default()).unwrap();
    assert_eq!(e.files.len(), 1);
    assert_eq!(e.files[0].path, "compose.yaml");
    e.files[0].contents.clone()
}

/// Each definition as the runtime sees it: its revision (a hash of everything but
/// locations) and its environment, by service name.
fn definitions(m: &Manifest) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    m.services
        .iter()
        .map(|s| (s.name.clone(), (s.revision(), s.env.clone())))
        .collect()
}

#[test]
fn compose_fixtures_round_trip_through_export_and_import() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifest/tests/compose");
    let mut fixtures: Vec<_> = [
        "ai_platform",
        "gpu",
        "depends_long",
        "healthchecks",
        "env_files",
        "ports_volumes",
        "build",
        "commands",
    ]
    .iter()
    .map(|n| dir.join(format!("{n}.yml")))
    .collect();
    fixtures.push(common::fixture("gpu-platform/docker-compose.yml"));
    for compose in fixtures {
        let original = std::fs::read_to_string(&compose).unwrap();
        let m1 = import_load(&original, &compose);
        let c1 = compose_text(&m1);
        let m2 = import_load(&c1, &compose);
        assert_eq!(
            definitions(&m1),
            definitions(&m2),
            "{}:\n{c1}",
            compose.display()
        );
        // And the export of the re-import is the same text: the round trip is stable.
        let c2 = compose_text(&m2);
        assert_eq!(c1, c2, "{}", compose.display());
        // It parses back as YAML.
        orchestra_export::yaml::parse_documents(&c1).unwrap();
    }
}

#[test]
fn what_compose_cannot_express_is_reported_at_the_field() {
    let path = common::fixture("canary/orchestra.yaml");
    let m = common::load(&path);
    let e = export(&m, Target::Compose, &Options::default()).unwrap();
    for (field, outcome) in [
        ("services.llm.route", Outcome::Impossible),
        ("services.llm.deploy", Outcome::Impossible),
        ("services.llm.readiness", Outcome::Impossible),
        ("services.llm.port", Outcome::Approximated),
        ("services.llm.healthcheck", Outcome::Approximated),
        ("services.llm.image", Outcome::Mapped),
    ] {
        let notes = e.report.find(field);
        assert_eq!(notes.len(), 1, "{field}: {:#?}", e.report.notes);
        assert_eq!(notes[0].outcome, outcome, "{}", notes[0]);
    }
    // The HTTP probe is a command Compose runs; the manifest still loads from it.
    let text = &e.files[0].contents;
    assert!(
        text.contains("wget -q --spider http://localhost:8000/health"),
        "{text}"
    );
    // `$` in values is escaped, `${PORT}` kept as the reference it is.
    assert!(text.contains("${PORT}"), "{text}");
    let m2 = import_load(text, &path);
    assert_eq!(m2.services.len(), 2);
}

#[test]
fn process_services_are_not_rendered_and_say_why() {
    let m = common::load(&common::root().join("examples/ai-platform-containers/orchestra.yaml"));
    let e = export(&m, Target::Compose, &Options::default()).unwrap();
    let docs = orchestra_export::yaml::parse_documents(&e.files[0].contents).unwrap();
    let services: Vec<&String> = docs[0]["services"].as_object().unwrap().keys().collect();
    assert_eq!(services, ["api", "store"]);
    let n = e.report.find("services.worker");
    assert_eq!(n[0].outcome, Outcome::Impossible);
    assert!(n[0].message.contains("process"), "{}", n[0]);
}
