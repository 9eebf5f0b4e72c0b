//! Status publication: every change to the table goes through here, bumps
//! the watch counter so waiters re-decide, and events go out to the event
//! channel and, as `orchestra` lines, to the service's log.

use super::table::Inner;
use super::{Event, EventKind, ProcessInfo};
use crate::logs::{LogLine, Stream};
use crate::probe::ProbeResult;
use crate::status::{ReplicaStatus, ServiceStatus};

pub(super) use orchestra_clock::now_ms;

impl Inner {
    /// Wake everything that waits on a status change.
    pub(super) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Change one instance's status, then recompute its aggregate phase.
    pub(super) fn update(&self, key: &str, f: impl FnOnce(&mut ServiceStatus)) {
        {
            let mut t = self.table.lock();
            if let Some(e) = t.entries.get_mut(key) {
                f(&mut e.status);
                e.status.refresh();
            }
        }
        self.bump();
    }

    /// Change one replica's status.
    pub(super) fn update_replica(&self, key: &str, idx: u32, f: impl FnOnce(&mut ReplicaStatus)) {
        self.update(key, |s| {
            if let Some(r) = s.replicas.get_mut(idx as usize) {
                f(r);
            }
        });
    }

    /// Read one replica's status.
    pub(super) fn replica_status<T>(
        &self,
        key: &str,
        idx: u32,
        f: impl FnOnce(&ReplicaStatus) -> T,
    ) -> Option<T> {
        self.table
            .lock()
            .entries
            .get(key)
            .and_then(|e| e.status.replicas.get(idx as usize).map(f))
    }

    /// Record a probe result without waking every waiter: a failed probe
    /// while starting changes nothing anyone decides on, and they come
    /// every few milliseconds.
    pub(super) fn record_probe_quietly(&self, key: &str, idx: u32, p: ProbeResult) {
        let mut t = self.table.lock();
        if let Some(r) = t
            .entries
            .get_mut(key)
            .and_then(|e| e.status.replicas.get_mut(idx as usize))
        {
            r.record_probe(p);
        }
    }

    pub(super) fn emit(
        &self,
        instance: &str,
        service: &str,
        replica: Option<u32>,
        kind: EventKind,
        reason: impl Into<String>,
    ) {
        self.emit_process(instance, service, replica, kind, reason, None);
    }

    pub(super) fn emit_process(
        &self,
        instance: &str,
        service: &str,
        replica: Option<u32>,
        kind: EventKind,
        reason: impl Into<String>,
        process: Option<ProcessInfo>,
    ) {
        let reason = reason.into();
        let at_ms = now_ms();
        self.logs.push(LogLine {
            at_ms,
            service: service.to_owned(),
            replica: replica.unwrap_or(0),
            stream: Stream::Orchestra,
            text: if reason.is_empty() {
                kind.as_str().to_owned()
            } else {
                format!("{}: {reason}", kind.as_str())
            },
        });
        let _ = self.events.send(Event {
            at_ms,
            instance: instance.to_owned(),
            service: service.to_owned(),
            replica,
            kind,
            reason,
            process,
        });
    }
}
