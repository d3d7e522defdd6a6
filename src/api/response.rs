//! Responses: the body type, JSON and text bodies, streamed bodies, and errors as
//! Kubernetes `Status` objects with the code [`super::error::Error::status`] gives.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

use super::error::Error;

/// The response body type: whole or streamed.
pub type Body = BoxBody<Bytes, Infallible>;

pub(super) fn stream_response(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(super) fn json_response(code: StatusCode, v: &impl serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(super) fn metrics_response(body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

pub(super) fn text(code: StatusCode, s: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(s.as_bytes())).boxed());
    *resp.status_mut() = code;
    resp
}

pub(super) fn error_response(e: &Error) -> Response<Body> {
    let status = e.status();
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &status)
}
