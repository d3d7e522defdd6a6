//! Running commands inside containers: collected output, or a byte stream for large
//! output such as database dumps.
//!
//! # Guarantees
//! - [`Docker::exec`] returns only after the command exited, with its exit code.
//!
//! # Caveats
//! - Output of [`Docker::exec`] is held in memory: use [`Docker::exec_stream`] for
//!   anything large.

use bollard::exec::{CreateExecOptions, StartExecResults};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};

use super::connect::Docker;
use super::error::{Error, Result};
use super::logs::{OutputStream, split_output};

/// Collected result of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code.
    pub exit_code: i64,
    /// Standard output (lossily decoded as UTF-8).
    pub stdout: String,
    /// Standard error (lossily decoded as UTF-8).
    pub stderr: String,
}

/// A running command's output, as Docker delivers it.
pub struct ExecStream {
    /// Output chunks in arrival order; ends when the command exits.
    pub output: BoxStream<'static, Result<(OutputStream, Bytes)>>,
    exec_id: String,
    docker: Docker,
}

impl std::fmt::Debug for ExecStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecStream")
            .field("exec_id", &self.exec_id)
            .finish_non_exhaustive()
    }
}

impl ExecStream {
    /// The exit code, once [`ExecStream::output`] has ended; `None` while running.
    pub async fn exit_code(&self) -> Result<Option<i64>> {
        self.docker.exec_exit_code(&self.exec_id).await
    }
}

impl Docker {
    /// Runs `cmd` (exec form) in a running container and collects its output.
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> Result<ExecOutput> {
        self.exec_with_env(container, cmd, &[]).await
    }

    /// Runs `cmd` with extra environment variables (`KEY=value`; they stay out of the
    /// command line) and collects its output.
    pub async fn exec_with_env(&self, container: &str, cmd: &[&str], env: &[String]) -> Result<ExecOutput> {
        let ExecStream {
            mut output, exec_id, ..
        } = self.start_exec(container, cmd, env).await?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(chunk) = output.next().await {
            match chunk? {
                (OutputStream::Stderr, bytes) => stderr.extend_from_slice(&bytes),
                (_, bytes) => stdout.extend_from_slice(&bytes),
            }
        }
        drop(output);
        let exit_code = self
            .exec_exit_code(&exec_id)
            .await?
            .ok_or_else(|| Error::Decode {
                message: "exec output ended while the command still runs".to_string(),
            })?;
        Ok(ExecOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// The exit code of exec `exec_id`; `None` while it runs.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>> {
        self.count("exec_inspect");
        let inspect = self.client.inspect_exec(exec_id).await?;
        if inspect.running.unwrap_or(false) {
            return Ok(None);
        }
        Ok(inspect.exit_code)
    }

    /// Starts `cmd` (exec form) in a running container and streams its output.
    pub async fn exec_stream(&self, container: &str, cmd: &[&str]) -> Result<ExecStream> {
        self.start_exec(container, cmd, &[]).await
    }

    async fn start_exec(&self, container: &str, cmd: &[&str], env: &[String]) -> Result<ExecStream> {
        let options = CreateExecOptions {
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect::<Vec<String>>()),
            env: (!env.is_empty()).then(|| env.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        self.count("exec_create");
        let created = self.client.create_exec(container, options).await?;
        self.count("exec_start");
        match self.client.start_exec(&created.id, None).await? {
            StartExecResults::Attached { output, .. } => Ok(ExecStream {
                output: output
                    .map(|item| item.map(split_output).map_err(Error::from))
                    .boxed(),
                exec_id: created.id,
                docker: self.clone(),
            }),
            StartExecResults::Detached => Err(Error::Decode {
                message: "exec started detached although output was requested".to_string(),
            }),
        }
    }
}
