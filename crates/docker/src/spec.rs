//! From a service definition to the Engine's container definition: names,
//! labels, environment, ports, mounts and limits. Pure functions, tested
//! without an engine.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceRequest, EndpointSettings, HealthConfig, HostConfig, Mount,
    MountType, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use orchestra_manifest::{Resources, Service, VolumeKind, Workload};
use orchestra_runtime::driver::process::{fill_port, replica_env};

/// Label prefix of everything Orchestra creates in the Engine.
pub const LABEL_PROJECT: &str = "orchestra.project";
/// The service a container runs.
pub const LABEL_SERVICE: &str = "orchestra.service";
/// The service's revision.
pub const LABEL_REVISION: &str = "orchestra.revision";
/// The replica index.
pub const LABEL_REPLICA: &str = "orchestra.replica";
/// The container port (what `PORT` is inside).
pub const LABEL_PORT: &str = "orchestra.port";

/// The container port when neither the service (`port:`) nor the image
/// (a single `EXPOSE`) names one.
pub const DEFAULT_PORT: u16 = 8080;

/// Keep what a Docker name allows (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.trim_start_matches(['_', '.', '-']).to_owned()
}

/// The project's network: `orchestra_<project>`.
pub fn network_name(project: &str) -> String {
    format!("orchestra_{}", sanitize(project))
}

/// One replica's container: `<project>-<service>-<revision>-<replica>`.
pub fn container_name(project: &str, service: &str, revision: &str, replica: u32) -> String {
    format!(
        "{}-{}-{}-{replica}",
        sanitize(project),
        sanitize(service),
        sanitize(revision)
    )
}

/// The tag a `build:` service's image gets: `orchestra/<project>-<service>:<revision>`.
pub fn image_tag(project: &str, service: &str, revision: &str) -> String {
    let repo = format!("{}-{}", sanitize(project), sanitize(service)).to_ascii_lowercase();
    format!("orchestra/{repo}:{}", sanitize(revision))
}

/// A named volume as the Engine knows it: `<project>_<name>`.
pub fn volume_name(project: &str, name: &str) -> String {
    format!("{}_{}", sanitize(project), sanitize(name))
}

/// The container port: the service's `port`, else the image's one exposed
/// port, else [`DEFAULT_PORT`].
pub fn container_port(svc: &Service, exposed: &[String]) -> u16 {
    if let Some(p) = svc.port {
        return p;
    }
    let tcp: Vec<u16> = exposed
        .iter()
        .filter_map(|e| {
            let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            (proto == "tcp").then(|| port.parse().ok()).flatten()
        })
        .collect();
    match tcp.as_slice() {
        [one] => *one,
        _ => DEFAULT_PORT,
    }
}

/// Labels every object of this project carries.
pub fn project_labels(project: &str) -> HashMap<String, String> {
    HashMap::from([(LABEL_PROJECT.to_owned(), project.to_owned())])
}

/// What one replica's container is made of.
#[derive(Debug, Clone)]
pub struct ContainerPlan<'a> {
    /// Project name.
    pub project: &'a str,
    /// The service.
    pub svc: &'a Service,
    /// Its revision.
    pub revision: &'a str,
    /// Replica index.
    pub replica: u32,
    /// The image to run (pulled or built).
    pub image: &'a str,
    /// The port the service listens on inside (`PORT`).
    pub port: u16,
    /// The revision's secret files on the host's tmpfs (mounted read-only at
    /// `/run/secrets`) and the `NAME_FILE` variables pointing into it.
    pub secrets: Option<(
        std::path::PathBuf,
        std::collections::BTreeMap<String, String>,
    )>,
}

impl ContainerPlan<'_> {
    /// The Engine's container definition.
    pub fn body(&self) -> ContainerCreateBody {
        let svc = self.svc;
        let port = self.port;
        let (command, entrypoint) = match &svc.workload {
            Workload::Image {
                command,
                entrypoint,
                ..
            }
            | Workload::Build {
                command,
                entrypoint,
                ..
            } => (command.clone(), entrypoint.clone()),
            Workload::Process { .. } | Workload::Static { .. } => (None, None),
        };
        let fill = |v: Option<Vec<String>>| {
            v.map(|args| args.iter().map(|a| fill_port(a, port)).collect::<Vec<_>>())
        };
        let mut vars = replica_env(svc, port, self.replica);
        if let Some((_, files)) = &self.secrets {
            vars.extend(files.clone());
        }
        let env: Vec<String> = vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut labels: HashMap<String, String> = svc.labels.clone().into_iter().collect();
        labels.extend(project_labels(self.project));
        labels.insert(LABEL_SERVICE.into(), svc.name.clone());
        labels.insert(LABEL_REVISION.into(), self.revision.to_owned());
        labels.insert(LABEL_REPLICA.into(), self.replica.to_string());
        labels.insert(LABEL_PORT.into(), port.to_string());

        // The service port on loopback, on a port the Engine picks: each
        // replica of each revision gets its own, side by side.
        let key = format!("{port}/tcp");
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::from([(
            key.clone(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            }]),
        )]);
        let mut exposed = vec![key];
        for p in &svc.ports {
            let k = format!("{}/{}", p.container_port, p.protocol);
            let b = PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            };
            bindings
                .entry(k.clone())
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(b);
            if !exposed.contains(&k) {
                exposed.push(k);
            }
        }

        let network = network_name(self.project);
        let host = HostConfig {
            port_bindings: Some(bindings),
            mounts: Some(self.mounts()),
            network_mode: Some(network.clone()),
            // Restarts are Orchestra's, after its own backoff.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            // A tiny init as PID 1 forwards the stop signal and reaps zombies:
            // many programs ignore SIGTERM as PID 1.
            init: Some(true),
            ..limits(&svc.resources)
        };
        ContainerCreateBody {
            image: Some(self.image.to_owned()),
            cmd: fill(command),
            entrypoint: fill(entrypoint),
            env: Some(env),
            user: svc.user.clone(),
            // Absolute (the loader checks), inside the container; else the image's WORKDIR.
            working_dir: svc
                .working_dir
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned()),
            labels: Some(labels),
            exposed_ports: Some(exposed),
            stop_signal: Some(svc.stop_signal.clone()),
            stop_timeout: Some(svc.stop_grace_period.as_secs().max(1) as i64),
            // Probes are Orchestra's: the image's HEALTHCHECK would only cost CPU.
            healthcheck: Some(HealthConfig {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }),
            host_config: Some(host),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network,
                    EndpointSettings {
                        // Other containers of the project reach it by service name.
                        aliases: Some(vec![svc.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    fn mounts(&self) -> Vec<Mount> {
        let secrets = self.secrets.as_ref().map(|(dir, _)| Mount {
            target: Some(orchestra_runtime::secret_files::CONTAINER_DIR.to_owned()),
            source: Some(dir.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        });
        self.svc
            .volumes
            .iter()
            .map(|v| {
                let (typ, source) = match v.kind {
                    VolumeKind::Named => (
                        MountType::VOLUME,
                        v.source.as_deref().map(|n| volume_name(self.project, n)),
                    ),
                    VolumeKind::Bind => (MountType::BIND, v.source.clone()),
                    VolumeKind::Tmpfs => (MountType::TMPFS, None),
                };
                Mount {
                    target: Some(v.target.clone()),
                    source,
                    typ: Some(typ),
                    read_only: Some(v.read_only),
                    ..Default::default()
                }
            })
            .chain(secrets)
            .collect()
    }
}

/// `resources:` as the Engine's limits.
pub fn limits(r: &Resources) -> HostConfig {
    HostConfig {
        nano_cpus: r.cpus.map(|c| (c * 1e9).round() as i64),
        memory: r.memory.and_then(|m| i64::try_from(m).ok()),
        pids_limit: r.pids.map(i64::from),
        device_requests: r.gpus.map(|n| {
            vec![DeviceRequest {
                count: Some(if n == Resources::ALL_GPUS {
                    -1
                } else {
                    i64::from(n)
                }),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            }]
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(yaml: &str) -> Service {
        let m = orchestra_manifest::load_str(
            yaml,
            std::path::Path::new("/srv/p/orchestra.yaml"),
            &orchestra_manifest::LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        m.services[0].clone()
    }

    #[test]
    fn names_are_what_docker_accepts() {
        assert_eq!(network_name("my app"), "orchestra_my-app");
        assert_eq!(
            container_name("p", "api", "0123abcd", 2),
            "p-api-0123abcd-2"
        );
        assert_eq!(image_tag("Demo", "API", "0a1b"), "orchestra/demo-api:0a1b");
        assert_eq!(volume_name("p", "data"), "p_data");
    }

    #[test]
    fn the_container_port_comes_from_the_service_then_a_single_expose() {
        let s = svc("services:\n  web:\n    image: local/busybox:1\n");
        assert_eq!(container_port(&s, &[]), DEFAULT_PORT);
        assert_eq!(container_port(&s, &["80/tcp".into()]), 80);
        assert_eq!(
            container_port(&s, &["80/tcp".into(), "443/tcp".into()]),
            DEFAULT_PORT
        );
        let s = svc("services:\n  web:\n    image: local/busybox:1\n    port: 9000\n");
        assert_eq!(container_port(&s, &["80/tcp".into()]), 9000);
    }

    #[test]
    fn the_body_carries_labels_env_ports_limits_and_the_network_alias() {
        let s = svc(
            "name: shop\nservices:\n  api:\n    image: local/busybox:1\n    command: [httpd, -f, -p, \"${PORT}\"]\n    env: { URL: \"http://localhost:${PORT}/\" }\n    resources: { cpus: 0.5, memory: 64Mi, pids: 50 }\n",
        );
        let plan = ContainerPlan {
            project: "shop",
            svc: &s,
            revision: "abc",
            replica: 1,
            image: "local/busybox:1",
            port: 8080,
            secrets: None,
        };
        let b = plan.body();
        assert_eq!(
            b.cmd.as_deref().unwrap(),
            ["httpd", "-f", "-p", "8080"].map(String::from)
        );
        let env = b.env.unwrap();
        assert!(env.contains(&"PORT=8080".to_owned()), "{env:?}");
        assert!(env.contains(&"URL=http://localhost:8080/".to_owned()));
        assert!(env.contains(&"ORCHESTRA_REPLICA=1".to_owned()));
        let labels = b.labels.unwrap();
        assert_eq!(labels[LABEL_PROJECT], "shop");
        assert_eq!(labels[LABEL_REVISION], "abc");
        let h = b.host_config.unwrap();
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(h.memory, Some(64 * 1024 * 1024));
        assert_eq!(h.pids_limit, Some(50));
        let bind = &h.port_bindings.unwrap()["8080/tcp"];
        assert_eq!(
            bind.as_ref().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(h.network_mode.as_deref(), Some("orchestra_shop"));
        let ep = &b.networking_config.unwrap().endpoints_config.unwrap()["orchestra_shop"];
        assert_eq!(ep.aliases.as_deref().unwrap(), ["api".to_owned()]);
        // No `working_dir`: the image's WORKDIR.
        assert_eq!(b.working_dir, None);
    }

    #[test]
    fn working_dir_and_all_gpus_reach_the_container() {
        let s = svc("services:
  api:
    image: local/busybox:1
    working_dir: /srv/app
    resources: { gpus: all }
");
        let plan = ContainerPlan {
            project: "p",
            svc: &s,
            revision: "abc",
            replica: 0,
            image: "local/busybox:1",
            port: 8080,
            secrets: None,
        };
        let b = plan.body();
        assert_eq!(b.working_dir.as_deref(), Some("/srv/app"));
        let gpus = b.host_config.unwrap().device_requests.unwrap();
        assert_eq!(gpus[0].count, Some(-1));
        assert_eq!(gpus[0].capabilities, Some(vec![vec!["gpu".to_owned()]]));
    }
}
