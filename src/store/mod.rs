//! Store backends: the embedded on-disk store (default) and etcd (for HA).

pub mod embedded;
pub mod etcd;
