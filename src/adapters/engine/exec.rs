//! Commands run inside containers through the engine's exec API, with their output streamed (a
//! database dump may not fit in memory) and their exit code read back.

use super::*;

impl Engine {
    /// Runs `cmd` and writes its stdout to `sink` as it comes (a database dump may not fit in
    /// memory). Returns the exit code and the last few KiB of stderr.
    pub async fn exec_stream_stdout(
        &self,
        id: &str,
        cmd: &[&str],
        mut sink: impl AsyncWrite + Unpin,
    ) -> anyhow::Result<(i64, String)> {
        let (exec_id, mut output) = self.start_exec(id, cmd, false).await?;
        let mut stderr = TailBuffer::new(STDERR_TAIL_BYTES);
        while let Some(item) = output.next().await {
            match item.with_context(|| exec_what(id, cmd, "reading the output of"))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => sink
                    .write_all(&message)
                    .await
                    .with_context(|| exec_what(id, cmd, "writing the output of"))?,
                LogOutput::StdErr { message } => stderr.push(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        sink.flush()
            .await
            .with_context(|| exec_what(id, cmd, "writing the output of"))?;
        let code = self.exec_exit_code(&exec_id, id, cmd).await?;
        Ok((code, stderr.into_string()))
    }

    /// Runs `cmd` with `source` streamed into its stdin (closed at the end of `source`). Returns the
    /// exit code and the combined output (its last few KiB).
    pub async fn exec_stream_stdin(
        &self,
        id: &str,
        cmd: &[&str],
        mut source: impl AsyncRead + Unpin,
    ) -> anyhow::Result<(i64, String)> {
        let exec = self
            .docker
            .create_exec(id, exec_options(cmd, true))
            .await
            .with_context(|| exec_what(id, cmd, "cannot start"))?;
        let started = self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .with_context(|| exec_what(id, cmd, "cannot start"))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            bail!(
                "{}: the engine detached it",
                exec_what(id, cmd, "cannot attach to")
            );
        };
        // Feed stdin and drain the output together: a command that writes while it reads would
        // otherwise block on a full pipe while we block on its stdin.
        let feed = async {
            tokio::io::copy(&mut source, &mut input).await?;
            // Closing our half of the connection is what gives the command end-of-file.
            input.shutdown().await
        };
        let drain = async {
            let mut tail = TailBuffer::new(STDERR_TAIL_BYTES);
            while let Some(item) = output.next().await {
                tail.push(&item?.into_bytes());
            }
            Ok::<_, BollardError>(tail)
        };
        tokio::pin!(feed, drain);
        // The command may finish before it has read everything (`pg_restore --list` reads only
        // the table of contents): once its output ends, feeding more is pointless, so stop.
        let mut input_result = None;
        let drained = loop {
            tokio::select! {
                r = &mut feed, if input_result.is_none() => input_result = Some(r),
                d = &mut drain => break d,
            }
        };
        let tail = drained.with_context(|| exec_what(id, cmd, "reading the output of"))?;
        let code = self.exec_exit_code(&exec.id, id, cmd).await?;
        // A command that stops reading early breaks the pipe; its exit code says whether that was
        // a failure. Any other input error (reading the source) is ours and fails the call.
        if let Some(Err(e)) = input_result {
            let stopped_reading = matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            );
            if !stopped_reading {
                return Err(anyhow::Error::new(e).context(exec_what(
                    id,
                    cmd,
                    "feeding the input of",
                )));
            }
        }
        Ok((code, tail.into_string()))
    }

    pub(super) async fn start_exec(
        &self,
        id: &str,
        cmd: &[&str],
        stdin: bool,
    ) -> anyhow::Result<(String, ExecOutput)> {
        let exec = self
            .docker
            .create_exec(id, exec_options(cmd, stdin))
            .await
            .with_context(|| exec_what(id, cmd, "cannot start"))?;
        match self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .with_context(|| exec_what(id, cmd, "cannot start"))?
        {
            StartExecResults::Attached { output, .. } => Ok((exec.id, output)),
            StartExecResults::Detached => {
                bail!(
                    "{}: the engine detached it",
                    exec_what(id, cmd, "cannot attach to")
                )
            }
        }
    }

    /// The exit code once the engine has recorded it (the output can end a moment before).
    pub(super) async fn exec_exit_code(
        &self,
        exec_id: &str,
        id: &str,
        cmd: &[&str],
    ) -> anyhow::Result<i64> {
        for _ in 0..50 {
            let state = self
                .docker
                .inspect_exec(exec_id)
                .await
                .with_context(|| exec_what(id, cmd, "cannot read the exit code of"))?;
            if state.running != Some(true)
                && let Some(code) = state.exit_code
            {
                return Ok(code);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{}: it still runs after its output ended",
            exec_what(id, cmd, "no exit code for")
        )
    }
}

pub(super) type ExecOutput =
    std::pin::Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>;

pub(super) fn exec_options(cmd: &[&str], stdin: bool) -> CreateExecOptions<String> {
    CreateExecOptions {
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        cmd: Some(cmd.iter().map(|&s| s.to_owned()).collect()),
        ..Default::default()
    }
}

pub(super) fn exec_what(id: &str, cmd: &[&str], what: &str) -> String {
    format!("{what} `{}` in container {id}", cmd.join(" "))
}

/// Keeps the last `cap` bytes written to it.
pub(super) struct TailBuffer {
    cap: usize,
    bytes: std::collections::VecDeque<u8>,
}

impl TailBuffer {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            bytes: std::collections::VecDeque::with_capacity(cap),
        }
    }

    pub(super) fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    pub(super) fn into_string(self) -> String {
        let bytes: Vec<u8> = self.bytes.into();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
