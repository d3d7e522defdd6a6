//! Reading request bodies: the size limit (413 before parsing), JSON or YAML, and the patch
//! media types the server accepts.

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use super::error::{Error, Result};

pub(super) fn check_patch_type(req: &Request<Incoming>) -> Result<()> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Compare the media type itself: `application/json-patch+json` is not a merge patch.
    let media_type = ct.split(';').next().unwrap_or_default().trim();
    if matches!(
        media_type,
        "" | "application/merge-patch+json" | "application/json"
    ) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "unsupported patch type {ct:?}: use application/merge-patch+json"
        )))
    }
}

pub(super) async fn read_body_opt(limit: usize, req: Request<Incoming>) -> Result<Option<Value>> {
    let bytes = read_bytes(limit, req).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parse_body(&bytes).map(Some)
}

pub(super) async fn read_body(limit: usize, req: Request<Incoming>) -> Result<Value> {
    read_body_opt(limit, req)
        .await?
        .ok_or_else(|| Error::BadRequest("the request body is empty".into()))
}

pub(super) async fn read_bytes(limit: usize, req: Request<Incoming>) -> Result<Bytes> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::TooLarge { limit });
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(Error::TooLarge { limit })
        }
        Err(e) => Err(Error::BadRequest(format!("could not read the request body: {e}"))),
    }
}

/// Parses a JSON or YAML body (JSON is YAML, but serde_json gives better messages for it).
pub(super) fn parse_body(bytes: &[u8]) -> Result<Value> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return serde_json::from_slice(bytes)
            .map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")));
    }
    serde_yaml::from_slice(bytes).map_err(|e| Error::BadRequest(format!("invalid YAML body: {e}")))
}
