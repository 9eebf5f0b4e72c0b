//! `user:` of a process service: who on this machine the process runs as.
//!
//! Read from the system's user database (`/etc/passwd`, `/etc/group`, NSS) when the
//! manifest is validated, so an unknown user is a manifest error, and again when a
//! replica starts, so the process gets that user's current ids, groups and home.

use nix::unistd::{Gid, Group, Uid, User};

/// A resolved `user:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessUser {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The login name (the uid as text when the uid has no entry).
    pub name: String,
    /// The home directory (`/` when the uid has no entry).
    pub home: String,
    /// Whether the user has an entry in the user database (then its supplementary
    /// groups apply too).
    pub known: bool,
}

/// Resolves `name`, `uid`, `name:group` or `uid:gid`.
///
/// # Errors
/// A sentence saying what is unknown or malformed.
pub fn resolve(spec: &str) -> Result<ProcessUser, String> {
    let spec = spec.trim();
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(format!("invalid user {spec:?}"));
    }
    let entry = if let Ok(uid) = user.parse::<u32>() {
        lookup(User::from_uid(Uid::from_raw(uid)), user)?
    } else {
        match lookup(User::from_name(user), user)? {
            Some(u) => Some(u),
            None => return Err(format!("no user named `{user}` on this machine")),
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match Group::from_name(g) {
                Ok(Some(grp)) => grp.gid.as_raw(),
                Ok(None) => return Err(format!("no group named `{g}` on this machine")),
                Err(e) => return Err(format!("cannot read the group database: {e}")),
            },
        },
        None => match &entry {
            Some(u) => u.gid.as_raw(),
            None => {
                return Err(format!(
                    "no user with uid {user} on this machine; give its group too, as `{user}:GID`"
                ));
            }
        },
    };
    Ok(match entry {
        Some(u) => ProcessUser {
            uid: u.uid.as_raw(),
            gid,
            name: u.name,
            home: u.dir.to_string_lossy().into_owned(),
            known: true,
        },
        None => ProcessUser {
            uid: user.parse().unwrap_or_default(),
            gid,
            name: user.to_owned(),
            home: "/".to_owned(),
            known: false,
        },
    })
}

fn lookup(r: nix::Result<Option<User>>, what: &str) -> Result<Option<User>, String> {
    r.map_err(|e| format!("cannot read the user database for `{what}`: {e}"))
}

/// Whether `spec` names a user of this machine.
///
/// # Errors
/// As [`resolve`].
pub fn check(spec: &str) -> Result<(), String> {
    resolve(spec).map(|_| ())
}

/// The ids this process runs as, to tell whether it may switch to another user.
#[must_use]
pub fn effective() -> (u32, u32) {
    (Uid::effective().as_raw(), Gid::effective().as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_uids_and_groups() {
        let root = resolve("root").unwrap();
        assert_eq!((root.uid, root.gid, root.name.as_str()), (0, 0, "root"));
        assert!(root.known);
        let by_uid = resolve("0").unwrap();
        assert_eq!(by_uid.name, "root");
        let with_gid = resolve("0:12345").unwrap();
        assert_eq!(with_gid.gid, 12345);
        let unknown_uid = resolve("54321:54321").unwrap();
        assert_eq!((unknown_uid.uid, unknown_uid.known), (54321, false));
    }

    #[test]
    fn unknown_users_and_groups_are_errors() {
        let e = resolve("no-such-user-here").unwrap_err();
        assert!(e.contains("no user named `no-such-user-here`"), "{e}");
        let e = resolve("root:no-such-group-here").unwrap_err();
        assert!(e.contains("no group named"), "{e}");
        let e = resolve("54321").unwrap_err();
        assert!(e.contains("54321:GID"), "{e}");
        assert!(resolve(":0").is_err());
    }
}
