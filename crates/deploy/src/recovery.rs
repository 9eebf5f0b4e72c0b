//! What a starting daemon runs. After a crash the stored state wins: every
//! rollout is settled (nothing left in progress) and each service runs the
//! revision its last release left live. After a clean `down` the manifest
//! wins, and the services whose definition differs from their last release
//! are named. `up --restore` asks for the stored state on purpose.

use orchestra_manifest::Manifest;
use orchestra_state::{ReleaseStatus, ReleaseUpdate, StateError, StateStore};

use crate::rollout::Rollout;
use crate::stored::{self, SecretValues};

/// How the previous daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastStop {
    /// No daemon ran here before.
    None,
    /// It was killed or crashed: its run was never closed.
    Crash,
    /// `orchestra down` (or Ctrl-C) stopped it.
    Clean,
}

/// What recovery decided.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The manifest to run: the given one, with the services whose stored
    /// release wins replaced by that release's definition.
    pub manifest: Manifest,
    /// (service, what was done and why), for `up` to print.
    pub notes: Vec<(String, String)>,
}

/// Settle the stored rollouts and decide, per service, which definition runs.
pub fn recover(
    state: &StateStore,
    manifest: &Manifest,
    last: LastStop,
    restore: bool,
    secrets: &dyn SecretValues,
) -> Result<Recovery, StateError> {
    let mut m = manifest.clone();
    let mut notes = Vec::new();
    let stored_wins = last == LastStop::Crash || restore;
    let why = if restore {
        "--restore"
    } else {
        "after a crash"
    };
    for (service, json) in state.rollouts()? {
        let Ok(r) = serde_json::from_str::<Rollout>(&json) else {
            notes.push((
                service,
                "its stored rollout is unreadable (written by another version?); starting it from the manifest".into(),
            ));
            continue;
        };
        let (settled, updates, note) = r.recover();
        state.save_rollout(
            &service,
            &serde_json::to_string(&settled).unwrap_or_default(),
            &updates,
        )?;
        if let Some(n) = note {
            notes.push((service.clone(), n));
        }
        let Some(idx) = m.services.iter().position(|s| s.name == service) else {
            continue;
        };
        let wanted = m.services[idx].revision();
        // `--restore` brings back what the last release shipped, even if a
        // later `up` ran the manifest's definition instead.
        let last_release = if restore {
            state
                .releases(Some(&service), 200)?
                .into_iter()
                .find(|r| {
                    matches!(
                        r.status,
                        ReleaseStatus::Succeeded | ReleaseStatus::Live | ReleaseStatus::Superseded
                    )
                })
                .map(|r| r.to_revision)
        } else {
            None
        };
        let live = last_release.as_ref().unwrap_or(&settled.stable.revision);
        if wanted == *live {
            continue;
        }
        if !stored_wins {
            notes.push((
                service.clone(),
                format!(
                    "the manifest differs from its last release (revision {live}); starting revision {wanted} from the manifest; `orchestra up --restore` brings {live} back"
                ),
            ));
            continue;
        }
        let def = state
            .revision_definition(&service, live)?
            .and_then(|j| stored::decode(&j, Some(&m.services[idx]), secrets));
        match def {
            Some((def, _)) if def.revision() == *live => {
                notes.push((
                    service.clone(),
                    format!(
                        "running revision {live} as its last release left it ({why}); the manifest has {wanted}"
                    ),
                ));
                m.services[idx] = def;
            }
            Some((_, missing)) => notes.push((
                service.clone(),
                format!(
                    "cannot restore revision {live}: its private values ({}) differ in the manifest now; starting revision {wanted} from the manifest",
                    if missing.is_empty() { "env".to_owned() } else { missing.join(", ") }
                ),
            )),
            None => notes.push((
                service.clone(),
                format!(
                    "cannot restore revision {live}: its definition is not recorded; starting revision {wanted} from the manifest"
                ),
            )),
        }
    }
    // Releases no rollout carries (an older state.db) end too: nothing stays in progress.
    for r in state.open_releases()? {
        let (status, reason) = match r.status {
            ReleaseStatus::InProgress => (
                ReleaseStatus::RolledBack,
                "the daemon stopped during this release",
            ),
            ReleaseStatus::Live => (
                ReleaseStatus::Succeeded,
                "live; the daemon stopped while the old revision was warm",
            ),
            _ => continue,
        };
        state.end_release(&ReleaseUpdate {
            id: r.id,
            status,
            reason: reason.into(),
        })?;
    }
    Ok(Recovery { manifest: m, notes })
}
