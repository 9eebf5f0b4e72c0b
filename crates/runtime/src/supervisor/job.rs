//! Runs of scheduled jobs: each tick starts the job's service once, outside
//! the plan `up` starts (a job is not a service that stays up, so it is not
//! in `ps`, the aggregate health or the stop waves); the scheduler owns when.

use std::time::Duration;

use orchestra_manifest::Service;

use super::{Runtime, instance_key};
use crate::status::{Role, ServiceStatus};

impl Runtime {
    /// Start one run of `svc` (a scheduled job) now, with the same driver,
    /// environment, secrets, user and logs as any service. Returns the run's
    /// instance key, or `None` while a run of it is still going.
    pub fn start_job_run(&self, svc: &Service) -> Option<String> {
        let key = instance_key(&svc.name, &svc.revision());
        let going = self
            .inner
            .table
            .lock()
            .entries
            .get(&key)
            .is_some_and(super::table::Entry::running);
        if going {
            return None;
        }
        Some(self.start_revision(svc, Role::Live))
    }

    /// Wait until the run of `key` has ended: its process exited (for good,
    /// after any `on-failure` retries) and its last log lines are in. Returns
    /// its last status; `None` when no such run exists.
    pub async fn job_run_ended(&self, key: &str) -> Option<ServiceStatus> {
        let mut rx = self.subscribe();
        loop {
            rx.borrow_and_update();
            {
                let t = self.inner.table.lock();
                match t.entries.get(key) {
                    None => return None,
                    Some(e) if !e.running() => return Some(e.status.clone()),
                    Some(_) => {}
                }
            }
            // The driving task ends just after its last status change: look again shortly.
            tokio::select! {
                r = rx.changed() => if r.is_err() { return self.instance(key) },
                () = tokio::time::sleep(Duration::from_millis(25)) => {}
            }
        }
    }

    /// Stop a run (the daemon stops) and forget it; returns how it ended.
    pub async fn stop_job_run(&self, key: &str) -> Option<ServiceStatus> {
        self.stop_instance(key).await;
        let status = self.instance(key);
        self.remove_instance(key).await;
        status
    }
}
