//! Carrying out a transition's effects: one worker per service runs them in
//! the order the transitions were persisted, so a stop and a later start of
//! the same instance never overtake each other.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Deployer, Work};
use crate::rollout::{Effect, Role, Transition};

/// Time after a route swap before the old revision's in-flight count is trusted:
/// a request that picked the old table just before the swap registers a moment later.
const SWAP_SETTLE: Duration = Duration::from_millis(100);
/// How often a drain looks at the in-flight count.
const DRAIN_POLL: Duration = Duration::from_millis(20);

impl Deployer {
    /// Queue a transition's effects (called under the rollouts lock, so the
    /// queue order is the transition order).
    pub(super) fn enqueue(&self, service: &str, t: &Transition) {
        if t.effects.is_empty() {
            return;
        }
        let tx = self.queue(service);
        for e in &t.effects {
            let _ = tx.send(Work::Effect(e.clone()));
        }
    }

    fn queue(&self, service: &str) -> mpsc::UnboundedSender<Work> {
        let mut queues = self.inner.queues.lock();
        if let Some(q) = queues.get(service).filter(|q| !q.is_closed()) {
            return q.clone();
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Work>();
        queues.insert(service.to_owned(), tx.clone());
        let me = self.clone();
        let svc = service.to_owned();
        tokio::spawn(async move {
            while let Some(w) = rx.recv().await {
                match w {
                    Work::Effect(e) => me.carry_out(&svc, e).await,
                    Work::Barrier(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        tx
    }

    /// Wait until every effect queued so far for `service` is done.
    pub(super) async fn flush(&self, service: &str) {
        let (tx, rx) = oneshot::channel();
        if self.queue(service).send(Work::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    async fn carry_out(&self, service: &str, e: Effect) {
        let rt = &self.inner.runtime;
        match e {
            Effect::Start(key) => {
                let Some(def) = self.definition(service, &key) else {
                    tracing::error!("cannot start {key}: its definition is not known");
                    return;
                };
                let role = self
                    .rollout(service)
                    .and_then(|r| r.roles().into_iter().find(|(k, _)| *k == key))
                    .map(|(_, role)| role)
                    .unwrap_or(Role::Candidate);
                rt.start_revision(&def, role);
            }
            Effect::Stop { key, drain } => {
                let revision = key.rsplit('@').next().unwrap_or_default().to_owned();
                if drain {
                    let timeout = self
                        .definition(service, &key)
                        .map(|d| d.deploy.drain_timeout)
                        .unwrap_or(Duration::from_secs(30));
                    tokio::time::sleep(SWAP_SETTLE).await;
                    let deadline = Instant::now() + timeout;
                    while self.inner.proxy.in_flight(&revision) > 0 && Instant::now() < deadline {
                        tokio::time::sleep(DRAIN_POLL).await;
                    }
                }
                // Started again meanwhile (a rollback, a redeploy): the later transition wins.
                let wanted = self
                    .rollout(service)
                    .is_some_and(|r| r.roles().iter().any(|(k, _)| *k == key));
                if !wanted {
                    rt.remove_instance(&key).await;
                    self.inner.proxy.forget(&revision);
                }
            }
        }
        self.sync_roles(service);
        self.publish();
    }
}
