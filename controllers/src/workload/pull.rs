//! Pull progress: folds the daemon's per-layer pull messages into one line for status.
//!
//! # Guarantees
//! - [`PullMeter::summary`] counts layers done (pulled or already present) out of those
//!   seen, and bytes downloaded out of the bytes announced so far.
//! - [`PullMeter::digest`] is the registry digest the daemon reports at the end of a pull.
//!
//! # Caveats
//! - Layer sizes are announced as downloads start, so the byte total grows during a pull.

use std::collections::BTreeMap;

use crate::docker::PullProgress;

/// What is known of one layer.
#[derive(Debug, Default, Clone, Copy)]
struct Layer {
    current: i64,
    total: i64,
    done: bool,
}

/// Accumulates the progress messages of one pull.
#[derive(Debug, Default)]
pub struct PullMeter {
    layers: BTreeMap<String, Layer>,
    digest: Option<String>,
}

impl PullMeter {
    /// Takes one message of the daemon's pull stream.
    pub fn observe(&mut self, p: &PullProgress) {
        if let Some(d) = p.status.strip_prefix("Digest: ") {
            self.digest = Some(d.trim().to_owned());
        }
        let Some(id) = &p.layer else { return };
        // Messages about the whole image carry the tag as their id, not a layer.
        if p.status.starts_with("Pulling from") {
            return;
        }
        let layer = self.layers.entry(id.clone()).or_default();
        match p.status.as_str() {
            "Downloading" => {
                if let Some((current, total)) = p.progress {
                    layer.current = current;
                    layer.total = total.max(layer.total);
                }
            }
            "Download complete" | "Verifying Checksum" | "Extracting" => layer.current = layer.total,
            "Pull complete" | "Already exists" => {
                layer.current = layer.total;
                layer.done = true;
            }
            _ => {}
        }
    }

    /// The registry digest (`sha256:...`), once the daemon reported it.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Bytes downloaded so far and bytes announced.
    pub fn bytes(&self) -> (i64, i64) {
        self.layers
            .values()
            .fold((0, 0), |(c, t), l| (c + l.current, t + l.total))
    }

    /// One line for a condition message, e.g. `2/3 layers, 1.5 of 4.0 MiB`.
    pub fn summary(&self) -> String {
        let done = self.layers.values().filter(|l| l.done).count();
        let (current, total) = self.bytes();
        format!(
            "{done}/{} layers, {} of {} MiB",
            self.layers.len(),
            mib(current),
            mib(total)
        )
    }
}

fn mib(bytes: i64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(layer: Option<&str>, status: &str, progress: Option<(i64, i64)>) -> PullProgress {
        PullProgress {
            layer: layer.map(str::to_owned),
            status: status.to_owned(),
            progress,
        }
    }

    #[test]
    fn a_pull_is_summed_over_its_layers() {
        let mut m = PullMeter::default();
        m.observe(&msg(Some("v1"), "Pulling from t/httpd", None));
        m.observe(&msg(Some("a"), "Already exists", None));
        m.observe(&msg(Some("b"), "Pulling fs layer", None));
        m.observe(&msg(Some("c"), "Pulling fs layer", None));
        m.observe(&msg(Some("b"), "Downloading", Some((1 << 20, 2 << 20))));
        m.observe(&msg(Some("c"), "Downloading", Some((0, 2 << 20))));
        assert_eq!(m.summary(), "1/3 layers, 1.0 of 4.0 MiB");
        m.observe(&msg(Some("b"), "Download complete", None));
        m.observe(&msg(Some("b"), "Pull complete", None));
        m.observe(&msg(Some("c"), "Extracting", Some((5, 10))));
        m.observe(&msg(Some("c"), "Pull complete", None));
        assert_eq!(m.summary(), "3/3 layers, 4.0 of 4.0 MiB");
        assert_eq!(m.digest(), None);
        m.observe(&msg(None, "Digest: sha256:8477", None));
        m.observe(&msg(None, "Status: Downloaded newer image for t/httpd:v1", None));
        assert_eq!(m.digest(), Some("sha256:8477"));
    }
}
