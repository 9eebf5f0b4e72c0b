//! A container's CPU time and memory, as the Engine's stats endpoint reports
//! them (one sample, not a stream).

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use futures_util::StreamExt;

use crate::DockerDriver;
use crate::error::DockerError;

/// What `/metrics` shows of a container.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ContainerUsage {
    /// CPU time of the container's processes, in seconds.
    pub cpu_seconds: f64,
    /// Memory in use, page cache that can be dropped left out (as `docker stats` shows it).
    pub memory_bytes: f64,
}

/// The figures of one stats answer.
pub fn usage_of(s: &ContainerStatsResponse) -> ContainerUsage {
    let cpu_ns = s
        .cpu_stats
        .as_ref()
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0);
    let memory = s.memory_stats.as_ref();
    let used = memory.and_then(|m| m.usage).unwrap_or(0);
    // cgroup v2 calls it inactive_file, v1 total_inactive_file.
    let cache = memory
        .and_then(|m| m.stats.as_ref())
        .and_then(|st| {
            st.get("inactive_file")
                .or_else(|| st.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    ContainerUsage {
        cpu_seconds: cpu_ns as f64 / 1e9,
        memory_bytes: used.saturating_sub(cache) as f64,
    }
}

impl DockerDriver {
    /// One sample of a container's usage (`one-shot`: the Engine does not wait a second
    /// for a second CPU reading).
    pub async fn usage(&self, container: &str) -> Result<ContainerUsage, DockerError> {
        let d = self.engine().await?;
        let mut stream = d.stats(
            container,
            Some(StatsOptions {
                stream: false,
                one_shot: true,
            }),
        );
        match stream.next().await {
            Some(Ok(s)) => Ok(usage_of(&s)),
            Some(Err(e)) => Err(DockerError::api(
                format!("cannot read the stats of {container}"),
                e,
            )),
            None => Err(DockerError::api(
                format!("cannot read the stats of {container}"),
                bollard::errors::Error::DockerStreamError {
                    error: "no stats in the answer".into(),
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    #[test]
    fn cpu_is_seconds_and_memory_leaves_out_inactive_page_cache() {
        let s = ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats {
                cpu_usage: Some(ContainerCpuUsage {
                    total_usage: Some(2_500_000_000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(10_000),
                stats: Some([("inactive_file".to_owned(), 4_000)].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let u = usage_of(&s);
        assert_eq!(u.cpu_seconds, 2.5);
        assert_eq!(u.memory_bytes, 6_000.0);
        assert_eq!(
            usage_of(&ContainerStatsResponse::default()),
            ContainerUsage::default()
        );
    }
}
