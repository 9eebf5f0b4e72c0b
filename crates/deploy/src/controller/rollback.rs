//! `orchestra rollback`: to a warm revision, one transition; to a cold one, a
//! release that starts it health-gated and then switches.

use orchestra_state::{NewRelease, ReleaseStatus};
use serde_json::json;
use tokio::time::Instant;

use super::{DeployError, Deployer, ms};
use crate::rollout::{Input, Kind, Phase, Plan, Refused, Rev};

impl Deployer {
    /// `orchestra rollback SERVICE [--to REV]`. During a deploy that has not
    /// switched yet, it aborts that deploy.
    pub async fn rollback(&self, service: &str, to: Option<&str>) -> Result<String, DeployError> {
        let r = self
            .rollout(service)
            .ok_or_else(|| DeployError::UnknownService(service.to_owned()))?;
        if matches!(r.phase, Phase::Starting { .. } | Phase::Canary { .. }) {
            let release = self.abort(service)?;
            return Ok(format!(
                "release {release} was in progress and is aborted; traffic stays on {}",
                r.stable.revision
            ));
        }
        let current = r.stable.revision.clone();
        let target = match (to, &r.phase) {
            (Some(t), _) => t.to_owned(),
            (None, Phase::Switched { previous, .. }) => previous.revision.clone(),
            (None, _) => self
                .inner
                .state
                .releases(Some(service), 200)?
                .into_iter()
                .filter(|rel| {
                    rel.to_revision == current
                        && matches!(
                            rel.status,
                            ReleaseStatus::Succeeded
                                | ReleaseStatus::Live
                                | ReleaseStatus::Superseded
                        )
                })
                .find_map(|rel| rel.from_revision)
                .ok_or_else(|| DeployError::NoPrevious(service.to_owned()))?,
        };
        if target == current {
            return Err(Refused::AlreadyLive(target).into());
        }
        let key = orchestra_runtime::instance_key(service, &target);
        let keep_warm_ms = self
            .definition(service, &r.stable.key)
            .map(|d| ms(d.deploy.keep_warm))
            .unwrap_or(0);
        // The versions the revision rolled back to shipped with (a warm one is running them).
        let versions = self
            .definition(service, &key)
            .map(|d| serde_json::to_string(&d.secret_versions).unwrap_or_default())
            .unwrap_or_default();
        let new = NewRelease {
            service,
            strategy: Kind::Rollback.as_str(),
            from: Some(&current),
            to: &target,
            manifest: "",
            secrets: &versions,
        };
        if r.is_warm(&key) {
            let t0 = Instant::now();
            let (release, _) = self.begin(&new, |id| Input::RollbackWarm {
                release: id,
                to: key.clone(),
                keep_warm_ms,
            })?;
            let took = t0.elapsed().as_secs_f64() * 1000.0;
            self.figures_of(release, json!({"switch_ms": took, "warm": true}));
            return Ok(format!(
                "rolled back to warm revision {target}; traffic switched in {took:.1}ms"
            ));
        }
        // Known before anything is recorded: an unknown revision starts no release.
        let def = self
            .definition(service, &key)
            .ok_or_else(|| DeployError::UnknownRevision {
                service: service.to_owned(),
                revision: target.clone(),
            })?;
        let candidate = Rev {
            revision: target.clone(),
            key,
            route: def.route.clone(),
        };
        let (release, _) = self.begin(&new, |id| Input::Begin {
            plan: Plan {
                release: id,
                kind: Kind::Rollback,
                steps: vec![100],
                keep_warm_ms,
                note: String::new(),
            },
            candidate: candidate.clone(),
        })?;
        self.drive(release, def).await;
        let rec = self.inner.state.release(release)?;
        match rec {
            Some(rec) if rec.status == ReleaseStatus::Succeeded => Ok(rec.reason),
            Some(rec) => Err(DeployError::RollbackFailed(format!(
                "rollback to {target} {}: {}; {current} stays live",
                rec.status, rec.reason
            ))),
            None => Err(DeployError::RollbackFailed(format!(
                "release {release} is not recorded"
            ))),
        }
    }

    fn figures_of(&self, release: i64, figures: serde_json::Value) {
        if let Err(e) = self.inner.state.release_figures(release, &figures) {
            tracing::warn!("cannot record the figures of release {release}: {e}");
        }
    }
}
