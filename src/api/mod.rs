//! The Kubernetes-style API: the object layer every writer goes through, and its HTTP server.

pub mod admission;
pub mod auth;
pub mod body;
pub mod client;
pub mod error;
pub mod gc;
pub mod hooks;
pub mod logs;
pub mod object;
pub mod objects;
pub mod production;
pub mod request;
pub mod response;
pub mod selector;
pub mod server;
pub mod watch;

pub use error::{Error, Result, Status};
pub use objects::{Api, DeleteOptions, List, WriteOptions};
