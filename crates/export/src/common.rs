//! Helpers the renderers share: names, quantities, durations, ports, credentials.

use std::hash::Hasher;
use std::time::Duration;

use orchestra_manifest::{Check, Service, Workload};

/// The port a container listens on: the service's `port`, else its first published
/// container port, else 8080 (what `PORT` is inside a container without either).
pub(crate) fn container_port(svc: &Service) -> u16 {
    svc.port
        .or_else(|| svc.ports.first().map(|p| p.container_port))
        .unwrap_or(8080)
}

/// `${PORT}` replaced by the port (Kubernetes and Cloud Run set no such variable in argv).
pub(crate) fn subst_port(s: &str, port: u16) -> String {
    s.replace("${PORT}", &port.to_string())
}

/// A DNS-1123 label: lowercase letters, digits and `-`, at most 63 characters.
pub(crate) fn dns_label(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let mut out = out.trim_matches('-').to_owned();
    out.truncate(63);
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "x".to_owned() } else { out }
}

/// Whole seconds, rounded up, at least `min`.
pub(crate) fn secs(d: Duration, min: u64) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(min)
}

/// Whether `d` is not a whole number of seconds (Kubernetes counts probes in seconds).
pub(crate) fn sub_second(d: Duration) -> bool {
    d.subsec_nanos() > 0
}

/// A duration as Compose and Orchestra write it: `500ms`, `30s`, `5m`, `2h`.
pub(crate) fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// CPU cores as a Kubernetes quantity: `1`, `500m`.
pub(crate) fn cpu_quantity(cpus: f64) -> String {
    // Bounded by validation (a positive count of cores); millicores are Kubernetes' unit.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let milli = (cpus * 1000.0).round().max(1.0) as u64;
    if milli.is_multiple_of(1000) {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// Bytes as a Kubernetes quantity: `512Mi`, `2Gi`, else bytes.
pub(crate) fn memory_quantity(bytes: u64) -> String {
    const KI: u64 = 1024;
    for (unit, size) in [
        ("Ti", KI.pow(4)),
        ("Gi", KI.pow(3)),
        ("Mi", KI.pow(2)),
        ("Ki", KI),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// FNV-1a 64 of `bytes`, 10 hex characters: a stable suffix for content-named objects.
pub(crate) fn short_hash(bytes: &[u8]) -> String {
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    format!("{:016x}", h.finish())[..10].to_owned()
}

pub(crate) use orchestra_manifest::credential::credential;

/// The file name the secret `name` is mounted as, when it is given as a file (`as:`'s
/// `target`, else the secret's own name); `None` when it is a variable.
pub(crate) fn secret_file(svc: &Service, name: &str) -> Option<String> {
    svc.secret_as_file(name).then(|| {
        svc.secret_options
            .get(name)
            .and_then(|o| o.target.as_deref())
            .map_or_else(
                || name.to_owned(),
                |t| t.rsplit('/').next().unwrap_or(t).to_owned(),
            )
    })
}

/// What runs, for a container engine: image (or the tag `orchestra` builds), entrypoint
/// and command. `None` for a process or a static site.
pub(crate) struct Container<'a> {
    pub image: String,
    pub built: bool,
    pub entrypoint: Option<&'a Vec<String>>,
    pub command: Option<&'a Vec<String>>,
}

pub(crate) fn container<'a>(project: &str, svc: &'a Service) -> Option<Container<'a>> {
    match &svc.workload {
        Workload::Image {
            image,
            command,
            entrypoint,
        } => Some(Container {
            image: image.clone(),
            built: false,
            entrypoint: entrypoint.as_ref(),
            command: command.as_ref(),
        }),
        Workload::Build {
            command,
            entrypoint,
            ..
        } => Some(Container {
            image: built_image(project, svc),
            built: true,
            entrypoint: entrypoint.as_ref(),
            command: command.as_ref(),
        }),
        Workload::Process { .. } | Workload::Static { .. } => None,
    }
}

/// The tag `orchestra up` gives the image it builds for a service.
pub(crate) fn built_image(project: &str, svc: &Service) -> String {
    format!(
        "orchestra/{}-{}:{}",
        dns_label(project),
        dns_label(&svc.name),
        svc.revision()
    )
}

/// Why a service that is not a container cannot run on a container platform.
pub(crate) fn not_a_container(svc: &Service) -> &'static str {
    match svc.workload {
        Workload::Static { .. } => {
            "a static route is served by Orchestra's proxy from a directory; there is no container to run: build an image that serves the directory (nginx, caddy) and give the service `image:`"
        }
        _ => {
            "a process service runs a local command; there is no image to run: give the service `image:` or `build:` (a Dockerfile that runs the command)"
        }
    }
}

/// The port a probe checks (its own, else the container's).
pub(crate) fn probe_port(check: &Check, port: u16) -> Option<u16> {
    match check {
        Check::Http { port: p, .. } | Check::Tcp { port: p } => Some(p.unwrap_or(port)),
        Check::Exec { .. } => None,
    }
}

/// The first line of every file: what made it, from which manifest.
pub(crate) fn header(target: &str, m: &orchestra_manifest::Manifest) -> String {
    let file = m.file.file_name().map_or_else(
        || "the manifest".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!(
        "# Generated by `orchestra export {target}` from {file}: export again rather than edit.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_names() {
        assert_eq!(cpu_quantity(0.5), "500m");
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(memory_quantity(128 * 1024 * 1024), "128Mi");
        assert_eq!(memory_quantity(3 * 1024 * 1024 * 1024), "3Gi");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(dns_label("My_Service.v2"), "my-service-v2");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration_text(Duration::from_secs(300)), "5m");
        assert_eq!(duration_text(Duration::from_secs(90)), "90s");
        assert_eq!(secs(Duration::from_millis(1500), 1), 2);
        assert_eq!(secs(Duration::ZERO, 1), 1);
        assert!(credential("OPENAI_API_KEY", "x"));
        assert!(credential("DATABASE_URL", "postgres://u:p@db/app"));
        assert!(!credential("MODEL_NAME", "demo"));
    }
}
