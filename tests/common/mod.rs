//! Shared helpers of the end-to-end tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
pub mod db_images;
pub mod docker_run;
pub mod etcd;
pub mod files;
pub mod git_http;
pub mod http;
pub mod images;
pub mod receivers;
pub mod registry;
pub mod seaweedfs;
pub mod server;
pub mod traffic;
pub mod webhook;
pub mod wordpress;
pub mod world;
