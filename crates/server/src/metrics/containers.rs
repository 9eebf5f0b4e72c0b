//! Container replicas' CPU and memory for `/metrics`. The Engine takes tens
//! of milliseconds per container to answer a stats request, too slow to ask
//! at every scrape: a scrape serves the figures last fetched and, when they
//! are older than [`REFRESH`], asks for new ones in the background (all
//! containers at once). So container figures lag by up to one refresh plus a
//! scrape interval, and the first scrape after a start has none yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestra_docker::DockerDriver;
use orchestra_runtime::status::ServiceStatus;

use super::ReplicaUsage;

/// How old the cached figures may get before a scrape asks for new ones.
pub const REFRESH: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Cache {
    by_container: HashMap<String, ReplicaUsage>,
    fetched: Option<Instant>,
    fetching: bool,
}

/// The cache, shared by every scrape. Cheap to clone.
#[derive(Clone)]
pub struct ContainerStats {
    driver: Option<Arc<DockerDriver>>,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for ContainerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerStats").finish_non_exhaustive()
    }
}

impl ContainerStats {
    /// Figures from this driver's Engine; `None`: no containers, no figures.
    pub fn new(driver: Option<Arc<DockerDriver>>) -> Self {
        ContainerStats {
            driver,
            cache: Arc::default(),
        }
    }

    /// The cached usage of every container replica among `instances`, by (instance key,
    /// replica); starts a refresh when the cache is stale.
    pub fn usage(&self, instances: &[ServiceStatus]) -> HashMap<(String, u32), ReplicaUsage> {
        let replicas: Vec<(&str, u32, &str)> = instances
            .iter()
            .flat_map(|i| {
                i.replicas.iter().filter_map(|r| {
                    r.container
                        .as_deref()
                        .map(|c| (i.instance.as_str(), r.index, c))
                })
            })
            .collect();
        let Some(driver) = &self.driver else {
            return HashMap::new();
        };
        if replicas.is_empty() {
            return HashMap::new();
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let out = replicas
            .iter()
            .filter_map(|(key, idx, c)| {
                Some(((key.to_string(), *idx), *cache.by_container.get(*c)?))
            })
            .collect();
        let stale = cache.fetched.is_none_or(|t| t.elapsed() >= REFRESH);
        if stale && !cache.fetching && tokio::runtime::Handle::try_current().is_ok() {
            cache.fetching = true;
            let ids: Vec<String> = replicas.iter().map(|r| r.2.to_owned()).collect();
            let driver = driver.clone();
            let shared = self.cache.clone();
            tokio::spawn(async move {
                let answers =
                    futures_util::future::join_all(ids.iter().map(|id| driver.usage(id))).await;
                let mut fresh = HashMap::new();
                for (id, a) in ids.into_iter().zip(answers) {
                    match a {
                        Ok(u) => {
                            fresh.insert(
                                id,
                                ReplicaUsage {
                                    cpu_seconds: u.cpu_seconds,
                                    rss_bytes: u.memory_bytes,
                                },
                            );
                        }
                        // A container that just stopped; its replica reports why.
                        Err(e) => tracing::debug!("/metrics: {e}"),
                    }
                }
                let mut c = shared.lock().unwrap_or_else(|e| e.into_inner());
                c.by_container = fresh;
                c.fetched = Some(Instant::now());
                c.fetching = false;
            });
        }
        out
    }
}
