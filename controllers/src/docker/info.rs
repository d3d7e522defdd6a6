//! What a daemon says about its host: the facts a Server's status shows.
//!
//! # Caveats
//! - `disk_usage_bytes` is what Docker itself accounts for (images, writable layers,
//!   volumes, build cache) via `/system/df`, not the free space of the file system
//!   holding `docker_root_dir`: the Engine API does not report that.
//! - Engines older than API 1.52 (e.g. 20.10) answer `/system/df` in a shape bollard's
//!   models no longer read: there `disk_usage_bytes` is `None`.

use super::connect::Docker;
use super::error::Result;

/// A daemon's version and host facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Engine version, e.g. `20.10.24`.
    pub version: String,
    /// Negotiated API version, e.g. `1.41`.
    pub api_version: String,
    /// Host operating system, e.g. `Debian GNU/Linux 13 (trixie)`.
    pub operating_system: String,
    /// `linux` or `windows`.
    pub os_type: String,
    /// Host architecture, e.g. `x86_64`.
    pub architecture: String,
    /// Logical CPUs.
    pub cpus: u32,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Docker's data directory on the host, e.g. `/var/lib/docker`.
    pub docker_root_dir: String,
    /// Bytes used by images, containers, volumes and build cache, when the daemon
    /// could compute it.
    pub disk_usage_bytes: Option<u64>,
}

impl Docker {
    /// Engine and host facts. Two calls: `/info`, then `/system/df` (whose failure
    /// only leaves `disk_usage_bytes` empty, and is logged).
    pub async fn info(&self) -> Result<EngineInfo> {
        self.count("info");
        let info = self.client.info().await?;
        let disk_usage_bytes = self.disk_usage().await;
        let text = |s: Option<String>| s.unwrap_or_default();
        Ok(EngineInfo {
            version: text(info.server_version),
            api_version: self.api_version(),
            operating_system: text(info.operating_system),
            os_type: text(info.os_type),
            architecture: text(info.architecture),
            cpus: info.ncpu.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            memory_bytes: info.mem_total.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            docker_root_dir: text(info.docker_root_dir),
            disk_usage_bytes,
        })
    }

    async fn disk_usage(&self) -> Option<u64> {
        self.count("system_df");
        let df = match self.client.df(None).await {
            Ok(df) => df,
            Err(err) => {
                tracing::warn!(error = %err, "docker disk usage unavailable");
                return None;
            }
        };
        if df.image_usage.is_none()
            && df.container_usage.is_none()
            && df.volume_usage.is_none()
            && df.build_cache_usage.is_none()
        {
            // Engines before API 1.52 answer in the older `LayersSize`/`Images` shape,
            // which bollard's current models do not read.
            tracing::debug!("docker disk usage not reported in a shape bollard reads");
            return None;
        }
        let positive = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        let mut total = 0u64;
        if let Some(images) = df.image_usage {
            total += positive(images.total_size);
        }
        if let Some(containers) = df.container_usage {
            total += positive(containers.total_size);
        }
        if let Some(volumes) = df.volume_usage {
            total += positive(volumes.total_size);
        }
        if let Some(cache) = df.build_cache_usage {
            total += positive(cache.total_size);
        }
        Some(total)
    }
}
