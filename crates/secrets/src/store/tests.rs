#![allow(clippy::unwrap_used)]

use super::*;

struct Fixture {
    _tmp: tempfile::TempDir,
    store: Store,
    id: Identity,
    who: Who,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let id = Identity::init(&tmp.path().join("keys/me.key")).unwrap();
    let store = Store::open(tmp.path().join("secrets"));
    assert!(store.init(&id.recipient()).unwrap());
    assert!(
        !store.init(&id.recipient()).unwrap(),
        "init twice creates nothing"
    );
    Fixture {
        _tmp: tmp,
        store,
        id,
        who: Who {
            user: "tester".into(),
            uid: 1234,
        },
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn round_trip_and_versions_increment() {
    let f = fixture();
    let v1 = f
        .store
        .set("default", "DB_PASSWORD", b"hunter2", &f.who)
        .unwrap();
    let v2 = f
        .store
        .set("default", "DB_PASSWORD", b"multi\nline\n\0binary", &f.who)
        .unwrap();
    assert_eq!((v1, v2), (1, 2));
    let get = |v| {
        f.store
            .get("default", "DB_PASSWORD", v, &f.id)
            .unwrap()
            .to_vec()
    };
    assert_eq!(get(Version::Latest), b"multi\nline\n\0binary");
    assert_eq!(get(Version::Number(1)), b"hunter2");
    assert_eq!(get(Version::Number(2)), get(Version::Latest));
    assert!(matches!(
        f.store
            .get("default", "DB_PASSWORD", Version::Number(3), &f.id),
        Err(Error::NoSuchVersion { version: 3, .. })
    ));
    assert!(matches!(
        f.store.get("default", "OTHER", Version::Latest, &f.id),
        Err(Error::NotFound { .. })
    ));
    // Environments are separate.
    assert_eq!(f.store.set("prod", "DB_PASSWORD", b"", &f.who).unwrap(), 1);
    assert_eq!(
        f.store
            .get("prod", "DB_PASSWORD", Version::Latest, &f.id)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(f.store.envs().unwrap(), ["default", "prod"]);
    assert!(
        f.store
            .exists("default", "DB_PASSWORD", Version::Number(2))
            .unwrap()
    );
    assert!(
        !f.store
            .exists("default", "DB_PASSWORD", Version::Number(9))
            .unwrap()
    );
    assert_eq!(f.store.latest("default", "DB_PASSWORD").unwrap(), Some(2));
}

#[test]
fn files_are_real_age_files_encrypted_to_the_recipients() {
    let f = fixture();
    f.store
        .set("default", "TOKEN", b"s3cret-value", &f.who)
        .unwrap();
    let path = f.store.version_path("default", "TOKEN", 1);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!bytes.windows(12).any(|w| w == b"s3cret-value"));
    let plain = age::decrypt(f.id.age(), &bytes).unwrap();
    assert_eq!(plain, b"s3cret-value");
}

#[test]
fn list_history_and_metadata_never_contain_values() {
    let f = fixture();
    let secret = b"VALUE-THAT-MUST-NOT-LEAK";
    f.store.set("default", "API_KEY", secret, &f.who).unwrap();
    f.store.set("default", "API_KEY", secret, &f.who).unwrap();
    f.store.set("default", "B_KEY", b"x", &f.who).unwrap();
    let list = f.store.list("default").unwrap();
    assert_eq!(
        list.iter()
            .map(|s| (s.name.as_str(), s.versions, s.latest))
            .collect::<Vec<_>>(),
        [("API_KEY", 2, Some(2)), ("B_KEY", 1, Some(1))]
    );
    assert!(list[0].updated_at_ms.is_some());
    let history = f.store.history("default", "API_KEY").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].created_by.as_ref().unwrap().user, "tester");
    assert!(history.iter().all(|h| h.present));
    let dump = format!(
        "{}{}",
        serde_json::to_string(&list).unwrap(),
        serde_json::to_string(&history).unwrap()
    );
    assert!(!dump.contains("VALUE-THAT-MUST-NOT-LEAK"), "{dump}");
    for file in files(f.store.dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{} holds the value",
            file.display()
        );
    }
    let meta =
        std::fs::read_to_string(f.store.dir().join("default/API_KEY/versions.json")).unwrap();
    assert!(meta.contains("\"uid\": 1234"), "{meta}");
}

#[test]
fn rm_marks_removed_and_keeps_versions() {
    let f = fixture();
    f.store.set("default", "GONE", b"one", &f.who).unwrap();
    f.store.rm("default", "GONE", &f.who).unwrap();
    assert!(matches!(
        f.store.get("default", "GONE", Version::Latest, &f.id),
        Err(Error::Removed { .. })
    ));
    assert_eq!(
        &f.store
            .get("default", "GONE", Version::Number(1), &f.id)
            .unwrap()[..],
        b"one"
    );
    assert!(f.store.list("default").unwrap()[0].removed);
    assert_eq!(f.store.latest("default", "GONE").unwrap(), None);
    assert!(matches!(
        f.store.rm("default", "GONE", &f.who),
        Err(Error::Removed { .. })
    ));
    assert!(matches!(
        f.store.rm("default", "NEVER", &f.who),
        Err(Error::NotFound { .. })
    ));
    // Setting again brings it back as the next version.
    assert_eq!(f.store.set("default", "GONE", b"two", &f.who).unwrap(), 2);
    assert!(!f.store.list("default").unwrap()[0].removed);
}

#[test]
fn tampering_is_detected_and_named() {
    let f = fixture();
    f.store
        .set("default", "T", b"some value here", &f.who)
        .unwrap();
    let path = f.store.version_path("default", "T", 1);
    let orig = std::fs::read(&path).unwrap();

    // Flip a byte of the payload (the end of the file).
    let mut bytes = orig.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let e = f
        .store
        .get("default", "T", Version::Latest, &f.id)
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(
        e.to_string().contains("T/1.age") && e.to_string().contains("tampered"),
        "{e}"
    );

    // Change the header MAC.
    let mut bytes = orig.clone();
    let mac_at = bytes.windows(4).position(|w| w == b"--- ").unwrap() + 4;
    bytes[mac_at] = if bytes[mac_at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, &bytes).unwrap();
    let e = f
        .store
        .get("default", "T", Version::Latest, &f.id)
        .unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");

    // Not an age file at all; truncated.
    std::fs::write(&path, b"plain text").unwrap();
    assert!(matches!(
        f.store.get("default", "T", Version::Latest, &f.id),
        Err(Error::Corrupt { .. })
    ));
    std::fs::write(&path, &orig[..orig.len() - 5]).unwrap();
    assert!(matches!(
        f.store.get("default", "T", Version::Latest, &f.id),
        Err(Error::Corrupt { .. })
    ));
    std::fs::write(&path, &orig).unwrap();
    assert_eq!(
        &f.store.get("default", "T", Version::Latest, &f.id).unwrap()[..],
        b"some value here"
    );
}

#[test]
fn a_wrong_key_is_told_apart_and_names_both_files() {
    let f = fixture();
    f.store.set("default", "W", b"v", &f.who).unwrap();
    let other = Identity::init(&f._tmp.path().join("other.key")).unwrap();
    let e = f
        .store
        .get("default", "W", Version::Latest, &other)
        .unwrap_err();
    assert!(matches!(e, Error::WrongKey { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("wrong key") && msg.contains("W/1.age") && msg.contains("other.key"),
        "{msg}"
    );
    assert!(matches!(
        f.store.check_access(&other),
        Err(Error::NotARecipient { .. })
    ));
    f.store.check_access(&f.id).unwrap();
}

#[test]
fn adding_and_removing_recipients_reencrypts_every_version() {
    let f = fixture();
    f.store.set("default", "A", b"a1", &f.who).unwrap();
    f.store.set("default", "A", b"a2", &f.who).unwrap();
    f.store.set("prod", "B", b"b1", &f.who).unwrap();
    let bob = Identity::init(&f._tmp.path().join("bob.key")).unwrap();
    assert!(matches!(
        f.store.get("default", "A", Version::Number(1), &bob),
        Err(Error::WrongKey { .. })
    ));

    assert_eq!(f.store.add_recipient(&bob.recipient(), &f.id).unwrap(), 3);
    assert_eq!(f.store.recipients().unwrap().len(), 2);
    for (env, name, n, want) in [
        ("default", "A", 1, &b"a1"[..]),
        ("default", "A", 2, b"a2"),
        ("prod", "B", 1, b"b1"),
    ] {
        for id in [&f.id, &bob] {
            assert_eq!(
                &f.store.get(env, name, Version::Number(n), id).unwrap()[..],
                want
            );
        }
    }
    assert!(matches!(
        f.store.add_recipient(&bob.recipient(), &f.id),
        Err(Error::RecipientExists { .. })
    ));
    // New versions go to both.
    f.store.set("default", "A", b"a3", &f.who).unwrap();
    assert_eq!(
        &f.store.get("default", "A", Version::Latest, &bob).unwrap()[..],
        b"a3"
    );

    // Bob cannot remove himself; the owner removes him.
    assert!(matches!(
        f.store.rm_recipient(&bob.recipient(), &bob),
        Err(Error::RecipientRemovalRefused { .. })
    ));
    assert_eq!(f.store.rm_recipient(&bob.recipient(), &f.id).unwrap(), 4);
    assert_eq!(f.store.recipients().unwrap().len(), 1);
    for n in 1..=3 {
        assert!(matches!(
            f.store.get("default", "A", Version::Number(n), &bob),
            Err(Error::WrongKey { .. })
        ));
        assert!(
            f.store
                .get("default", "A", Version::Number(n), &f.id)
                .is_ok()
        );
    }
    assert!(matches!(
        f.store.rm_recipient(&bob.recipient(), &f.id),
        Err(Error::RecipientNotFound { .. })
    ));
    // The comment lines of recipients.txt survive.
    let text = std::fs::read_to_string(f.store.recipients_path()).unwrap();
    assert!(text.starts_with("# age recipients"), "{text}");
}

#[test]
fn recipients_file_errors_name_the_line() {
    let f = fixture();
    let path = f.store.recipients_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("# fine\nage1bogus\n");
    std::fs::write(&path, text).unwrap();
    let e = f.store.recipients().unwrap_err();
    assert!(e.to_string().contains("recipients.txt:5"), "{e}");
    let e = f.store.set("default", "X", b"v", &f.who).unwrap_err();
    assert!(matches!(e, Error::InvalidRecipient { .. }), "{e}");
}

#[test]
fn names_and_envs_are_validated() {
    // The names the manifest's `secrets:` accepts, lower case included.
    for ok in ["A", "_X", "DATABASE_URL", "K8S_TOKEN_2", "db_password"] {
        validate_name(ok).unwrap();
    }
    for bad in ["", "1ABC", "A-B", "A B", "../X", "A/B", "Ä"] {
        let e = validate_name(bad).unwrap_err();
        assert!(e.to_string().contains("environment variable name"), "{e}");
    }
    for bad in ["", ".", "..", "a/b", "-x", ".hidden"] {
        assert!(validate_env(bad).is_err(), "{bad}");
    }
    validate_env("prod-eu_1").unwrap();
    let f = fixture();
    assert!(matches!(
        f.store.set("default", "bad-name", b"v", &f.who),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        f.store.set("../up", "OK", b"v", &f.who),
        Err(Error::InvalidEnv { .. })
    ));
}

#[test]
fn writes_leave_no_temporary_files() {
    let f = fixture();
    for i in 0..5 {
        f.store
            .set("default", "ATOMIC", format!("v{i}").as_bytes(), &f.who)
            .unwrap();
    }
    let bob = Identity::init(&f._tmp.path().join("bob.key")).unwrap();
    f.store.add_recipient(&bob.recipient(), &f.id).unwrap();
    f.store.rm("default", "ATOMIC", &f.who).unwrap();
    let names: Vec<String> = files(f.store.dir())
        .iter()
        .map(|p| p.strip_prefix(f.store.dir()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            ".gitignore",
            ".lock",
            "default/ATOMIC/1.age",
            "default/ATOMIC/2.age",
            "default/ATOMIC/3.age",
            "default/ATOMIC/4.age",
            "default/ATOMIC/5.age",
            "default/ATOMIC/versions.json",
            "recipients.txt",
        ]
    );
}

#[test]
fn a_version_placed_by_hand_is_the_next_version() {
    let f = fixture();
    f.store.set("default", "HAND", b"one", &f.who).unwrap();
    let bytes = age::encrypt(&f.id.recipient(), b"two by hand").unwrap();
    std::fs::write(f.store.version_path("default", "HAND", 2), bytes).unwrap();
    assert_eq!(
        &f.store
            .get("default", "HAND", Version::Latest, &f.id)
            .unwrap()[..],
        b"two by hand"
    );
    let h = f.store.history("default", "HAND").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].created_at_ms, None);
    // And `set` continues after it.
    assert_eq!(f.store.set("default", "HAND", b"three", &f.who).unwrap(), 3);
}

#[test]
fn invalid_metadata_names_the_file() {
    let f = fixture();
    f.store.set("default", "M", b"v", &f.who).unwrap();
    let meta = f.store.dir().join("default/M/versions.json");
    std::fs::write(&meta, "{not json").unwrap();
    let e = f.store.list("default").unwrap_err();
    assert!(matches!(e, Error::Metadata { .. }));
    assert!(e.to_string().contains("M/versions.json"), "{e}");
}
