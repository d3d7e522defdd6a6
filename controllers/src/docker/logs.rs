//! Container logs as a stream of whole lines, tagged with the stream they came from.
//!
//! # Guarantees
//! - Lines are reassembled across Docker's frames: a line split over two writes
//!   arrives once, whole; a last line without a newline is still delivered.
//!
//! # Caveats
//! - Containers created with a TTY have no stdout/stderr split: their lines come as
//!   [`OutputStream::Console`].
//! - A `follow` stream ends when the container stops, or with an error when the
//!   daemon goes away; reconnecting is the caller's job.

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};

use super::connect::Docker;
use super::error::{Error, Result};

/// Which stream output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Standard input (echoed).
    Stdin,
    /// A TTY's merged output.
    Console,
}

/// One line of container output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Where it came from.
    pub stream: OutputStream,
    /// The text (lossily decoded as UTF-8).
    pub line: String,
}

/// What logs to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last `n` lines (all when `None`).
    pub tail: Option<usize>,
    /// Only lines since this Unix time (seconds).
    pub since: Option<i64>,
    /// Keep streaming new lines.
    pub follow: bool,
}

impl Docker {
    /// The container's stdout and stderr, line by line.
    pub fn logs(&self, name: &str, options: &LogOptions) -> BoxStream<'static, Result<LogLine>> {
        let mut builder = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(options.follow)
            .tail(&options.tail.map_or_else(|| "all".to_string(), |n| n.to_string()));
        if let Some(since) = options.since {
            builder = builder.since(i32::try_from(since).unwrap_or(i32::MAX));
        }
        self.count("container_logs");
        let chunks = self
            .client
            .logs(name, Some(builder.build()))
            .map(|item| item.map(split_output).map_err(Error::from));
        lines(chunks.boxed())
    }
}

/// Splits bollard's output frame into stream + bytes.
pub(super) fn split_output(output: LogOutput) -> (OutputStream, Bytes) {
    match output {
        LogOutput::StdOut { message } => (OutputStream::Stdout, message),
        LogOutput::StdErr { message } => (OutputStream::Stderr, message),
        LogOutput::StdIn { message } => (OutputStream::Stdin, message),
        LogOutput::Console { message } => (OutputStream::Console, message),
    }
}

/// Reassembles frames into lines, one buffer per stream.
fn lines(chunks: BoxStream<'static, Result<(OutputStream, Bytes)>>) -> BoxStream<'static, Result<LogLine>> {
    struct State {
        chunks: BoxStream<'static, Result<(OutputStream, Bytes)>>,
        partial: Vec<(OutputStream, Vec<u8>)>,
        ready: std::collections::VecDeque<Result<LogLine>>,
        done: bool,
    }
    let state = State {
        chunks,
        partial: Vec::new(),
        ready: Default::default(),
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((item, st));
            }
            if st.done {
                return None;
            }
            match st.chunks.next().await {
                Some(Ok((stream, bytes))) => {
                    let idx = match st.partial.iter().position(|(s, _)| *s == stream) {
                        Some(i) => i,
                        None => {
                            st.partial.push((stream, Vec::new()));
                            st.partial.len() - 1
                        }
                    };
                    let buf = &mut st.partial[idx].1;
                    buf.extend_from_slice(&bytes);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let rest = buf.split_off(pos + 1);
                        let mut line = std::mem::replace(buf, rest);
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        st.ready.push_back(Ok(LogLine {
                            stream,
                            line: String::from_utf8_lossy(&line).into_owned(),
                        }));
                    }
                }
                other => {
                    st.done = true;
                    for (stream, buf) in st.partial.drain(..) {
                        if !buf.is_empty() {
                            st.ready.push_back(Ok(LogLine {
                                stream,
                                line: String::from_utf8_lossy(&buf).into_owned(),
                            }));
                        }
                    }
                    if let Some(Err(e)) = other {
                        st.ready.push_back(Err(e));
                    }
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_reassembled_into_lines() {
        let frames: Vec<Result<(OutputStream, Bytes)>> = vec![
            Ok((OutputStream::Stdout, Bytes::from_static(b"hel"))),
            Ok((OutputStream::Stderr, Bytes::from_static(b"oops\n"))),
            Ok((OutputStream::Stdout, Bytes::from_static(b"lo\nwor"))),
            Ok((OutputStream::Stdout, Bytes::from_static(b"ld"))),
        ];
        let got: Vec<LogLine> = lines(futures::stream::iter(frames).boxed())
            .map(|l| l.unwrap())
            .collect()
            .await;
        let text: Vec<(OutputStream, &str)> = got.iter().map(|l| (l.stream, l.line.as_str())).collect();
        assert_eq!(
            text,
            vec![
                (OutputStream::Stderr, "oops"),
                (OutputStream::Stdout, "hello"),
                (OutputStream::Stdout, "world"),
            ]
        );
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_after_pending_lines() {
        let frames: Vec<Result<(OutputStream, Bytes)>> = vec![
            Ok((OutputStream::Stdout, Bytes::from_static(b"partial"))),
            Err(Error::Unreachable {
                message: "gone".into(),
            }),
        ];
        let got: Vec<Result<LogLine>> = lines(futures::stream::iter(frames).boxed()).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().line, "partial");
        assert!(matches!(got[1], Err(Error::Unreachable { .. })));
    }
}
