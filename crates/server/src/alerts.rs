//! Alert decisions: which recorded events fire or resolve which alert, the
//! grouping key, the idempotency key, cooldown and the retry schedule, and the
//! webhook payload shapes. Pure functions over data; delivery is an edge.

use orchestra_state::EventRecord;
use serde_json::{Value, json};

/// Version tag of the JSON payload; bump on any breaking change.
pub const SCHEMA: &str = "orchestra.alert/v1";

/// Whether an event opens an alert or clears one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The condition started.
    Firing,
    /// The condition cleared.
    Resolved,
}

/// One decision taken from one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Groups occurrences of the same condition (`kind:service`).
    pub group: String,
    /// Firing or resolved.
    pub transition: Transition,
    /// The alert name (`service-unhealthy`, `deploy-failed`, ...).
    pub alert: &'static str,
}

/// Maps an event to an alert transition; `None` for events that alert nothing.
pub fn decide(event: &EventRecord) -> Option<Decision> {
    let (alert, transition) = match event.kind.as_str() {
        "unhealthy" => ("service-unhealthy", Transition::Firing),
        "crash-looping" => ("service-unhealthy", Transition::Firing),
        "failed" => ("service-unhealthy", Transition::Firing),
        "healthy" | "recovered" => ("service-unhealthy", Transition::Resolved),
        // The deploy controller records `release-{status}`.
        "release-failed" => ("deploy-failed", Transition::Firing),
        "release-rolled-back" => ("deploy-rolled-back", Transition::Firing),
        "release-succeeded" => ("deploy-promoted", Transition::Firing),
        "secret-rotated" => ("secret-rotated", Transition::Firing),
        "job-failed" => ("job-failed", Transition::Firing),
        "backup-failed" => ("backup-failed", Transition::Firing),
        _ => return None,
    };
    let service = event.service.as_deref().unwrap_or("platform");
    Some(Decision {
        group: format!("{alert}:{service}"),
        transition,
        alert,
    })
}

/// Stable per occurrence: the group and the id of the event that opened it,
/// so every retry and the resolved message carry the same key base.
pub fn idempotency_key(group: &str, opened_by_event: i64, transition: Transition) -> String {
    let suffix = match transition {
        Transition::Firing => "firing",
        Transition::Resolved => "resolved",
    };
    format!("{group}:{opened_by_event}:{suffix}")
}

/// A firing alert is sent unless the same group was sent less than
/// `cooldown_ms` ago; resolved messages are only sent for groups that fired.
pub fn should_send(last_sent_ms: Option<i64>, now_ms: i64, cooldown_ms: i64) -> bool {
    match last_sent_ms {
        None => true,
        Some(last) => now_ms.saturating_sub(last) >= cooldown_ms,
    }
}

/// Delay before retry `attempt` (1-based): 200 ms doubling, capped at 10 s;
/// `None` once the attempts are spent.
pub fn retry_delay_ms(attempt: u32, max_attempts: u32) -> Option<u64> {
    if attempt >= max_attempts {
        return None;
    }
    Some((200u64 << attempt.saturating_sub(1).min(10)).min(10_000))
}

/// Webhook payload formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The documented, versioned schema.
    Json,
    /// `{"text": ...}`.
    Slack,
    /// `{"content": ...}`.
    Discord,
}

/// An alert ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Decision it came from.
    pub decision: Decision,
    /// Idempotency key.
    pub key: String,
    /// Service, if any.
    pub service: Option<String>,
    /// Event reason (the figures).
    pub reason: String,
    /// Last log lines, evidence.
    pub log_tail: Vec<String>,
    /// When, ms since the epoch.
    pub at_ms: i64,
}

/// One line a human reads.
pub fn summary(alert: &Alert) -> String {
    let state = match alert.decision.transition {
        Transition::Firing => "FIRING",
        Transition::Resolved => "RESOLVED",
    };
    let service = alert.service.as_deref().unwrap_or("platform");
    format!(
        "[{state}] {} {service}: {}",
        alert.decision.alert, alert.reason
    )
}

/// The request body in the given format.
pub fn payload(alert: &Alert, format: Format) -> Value {
    match format {
        Format::Json => json!({
            "schema": SCHEMA,
            "idempotency_key": alert.key,
            "alert": alert.decision.alert,
            "group": alert.decision.group,
            "status": match alert.decision.transition {
                Transition::Firing => "firing",
                Transition::Resolved => "resolved",
            },
            "service": alert.service,
            "reason": alert.reason,
            "log_tail": alert.log_tail,
            "at_ms": alert.at_ms,
        }),
        Format::Slack => json!({ "text": text_with_logs(alert) }),
        Format::Discord => json!({ "content": text_with_logs(alert) }),
    }
}

fn text_with_logs(alert: &Alert) -> String {
    let mut text = summary(alert);
    if !alert.log_tail.is_empty() {
        text.push_str("\n```\n");
        text.push_str(&alert.log_tail.join("\n"));
        text.push_str("\n```");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, kind: &str, service: Option<&str>) -> EventRecord {
        EventRecord {
            id,
            run_id: Some(1),
            at_ms: 1_000,
            service: service.map(str::to_string),
            replica: None,
            kind: kind.to_string(),
            reason: "probe failed 3 times".to_string(),
        }
    }

    fn alert(format_transition: Transition) -> Alert {
        Alert {
            decision: Decision {
                group: "service-unhealthy:api".into(),
                transition: format_transition,
                alert: "service-unhealthy",
            },
            key: "service-unhealthy:api:7:firing".into(),
            service: Some("api".into()),
            reason: "exited 3 times in 60s".into(),
            log_tail: vec!["panic: boom".into()],
            at_ms: 5,
        }
    }

    #[test]
    fn crash_loop_fires_and_healthy_resolves_the_same_group() {
        let fire = decide(&event(7, "crash-looping", Some("api"))).expect("fires");
        let clear = decide(&event(9, "healthy", Some("api"))).expect("resolves");
        assert_eq!(fire.transition, Transition::Firing);
        assert_eq!(clear.transition, Transition::Resolved);
        assert_eq!(fire.group, clear.group);
    }

    #[test]
    fn release_outcomes_fire_under_the_names_the_controller_records() {
        let alert = |kind: &str| decide(&event(3, kind, Some("api"))).map(|d| d.alert);
        assert_eq!(alert("release-failed"), Some("deploy-failed"));
        assert_eq!(alert("release-rolled-back"), Some("deploy-rolled-back"));
        assert_eq!(alert("release-succeeded"), Some("deploy-promoted"));
        assert_eq!(alert("release-in-progress"), None);
    }

    #[test]
    fn unrelated_events_alert_nothing() {
        assert_eq!(decide(&event(1, "started", Some("api"))), None);
        assert_eq!(decide(&event(1, "stopped", Some("api"))), None);
    }

    #[test]
    fn job_and_backup_failures_fire() {
        assert_eq!(
            decide(&event(1, "job-failed", Some("nightly"))).map(|d| d.alert),
            Some("job-failed")
        );
        assert_eq!(
            decide(&event(1, "backup-failed", None)).map(|d| d.group),
            Some("backup-failed:platform".to_string())
        );
    }

    #[test]
    fn idempotency_key_is_stable_per_occurrence() {
        let a = idempotency_key("g", 7, Transition::Firing);
        assert_eq!(a, idempotency_key("g", 7, Transition::Firing));
        assert_ne!(a, idempotency_key("g", 8, Transition::Firing));
        assert_ne!(a, idempotency_key("g", 7, Transition::Resolved));
    }

    #[test]
    fn cooldown_suppresses_repeats_until_it_elapses() {
        assert!(should_send(None, 0, 300_000));
        assert!(!should_send(Some(0), 299_999, 300_000));
        assert!(should_send(Some(0), 300_000, 300_000));
    }

    #[test]
    fn retries_back_off_and_stop() {
        assert_eq!(retry_delay_ms(1, 5), Some(200));
        assert_eq!(retry_delay_ms(2, 5), Some(400));
        assert_eq!(retry_delay_ms(4, 5), Some(1_600));
        assert_eq!(retry_delay_ms(5, 5), None);
        assert_eq!(retry_delay_ms(30, 100), Some(10_000));
    }

    #[test]
    fn json_payload_is_versioned_and_carries_the_key_and_evidence() {
        let body = payload(&alert(Transition::Firing), Format::Json);
        assert_eq!(body["schema"], SCHEMA);
        assert_eq!(body["idempotency_key"], "service-unhealthy:api:7:firing");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["log_tail"][0], "panic: boom");
    }

    #[test]
    fn slack_and_discord_shapes() {
        let slack = payload(&alert(Transition::Resolved), Format::Slack);
        let text = slack["text"].as_str().expect("text");
        assert!(
            text.starts_with("[RESOLVED] service-unhealthy api"),
            "{text}"
        );
        assert!(text.contains("panic: boom"));
        let discord = payload(&alert(Transition::Firing), Format::Discord);
        assert!(
            discord["content"]
                .as_str()
                .expect("content")
                .starts_with("[FIRING]")
        );
        assert!(discord.get("text").is_none());
    }
}
