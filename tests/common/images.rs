//! Test images built locally (no registry here): `FROM scratch` with Debian's busybox-static.

use std::{process::Command, sync::OnceLock};

/// Tag of the httpd image: serves `$MESSAGE` on `${PORT:-8080}` with `busybox httpd`.
pub const BUSYBOX_HTTPD: &str = "berth-test/apps-httpd:v3";

/// Builds (once per process) and returns the busybox httpd image tag.
pub fn busybox_httpd() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("/bin/busybox", dir.path().join("busybox")).expect("busybox-static is installed");
        // Debian's static busybox wget segfaults with `-T` (timeout), which HTTP health checks
        // pass before falling back to `curl`: a tiny `curl` (GET of its last argument) catches
        // the fallback.
        std::fs::write(
            dir.path().join("curl"),
            "#!/bin/sh\nfor url in \"$@\"; do :; done\nexec /bin/busybox wget -q -O /dev/null \"$url\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path().join("curl"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             COPY curl /usr/local/bin/curl\n\
             CMD [\"/bin/sh\", \"-c\", \"mkdir -p /www && echo \\\"$MESSAGE\\\" > /www/index.html && exec httpd -f -p ${PORT:-8080} -h /www\"]\n",
        )
        .unwrap();
        let out = Command::new("docker")
            .args(["build", "-q", "-t", BUSYBOX_HTTPD])
            .arg(dir.path())
            .output()
            .expect("run docker build");
        assert!(
            out.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    BUSYBOX_HTTPD
}
