//! Signing webhook bodies the way GitHub does, for tests of the hook receivers.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `X-Hub-Signature-256` value of `body` under `secret`: `sha256=<hex HMAC-SHA256>`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}
