//! File transfers with the GEN_FILE mini-protocol (PROTOCOL.md §3.4) from the client's side:
//! [`Client::upload`] (the client sends) and [`Client::download`] (the client receives), by
//! default through the host's `fs_upload` and `fs_download`.
//!
//! The caller follows a transfer through [`TransferEvents`] (the length the host settled on,
//! bytes done, the host's overwrite question) and stops it with the [`CancellationToken`] in
//! [`TransferOptions`]: the client then sends TERM_CMD and waits for the command's IDLE, so
//! the connection stays usable. Local files are read and written with `tokio::fs`, one chunk
//! at a time.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt as _, StreamExt as _};
use mrci_proto::{BranchId, CmdId, Frame, TypeId, payload::GenFileArgs, text};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::{Client, Error, Result, received};

/// Bytes per GEN_FILE frame an upload sends unless [`TransferOptions::chunk`] says otherwise.
pub const DEFAULT_CHUNK: usize = 1 << 20;

/// How to run a transfer.
#[derive(Clone, Debug, Default)]
pub struct TransferOptions {
    /// The command to run; `fs_upload` or `fs_download` when `None`.
    pub command: Option<String>,
    /// The branch to run it on (0 is the foreground).
    pub branch: u16,
    /// Where the transfer starts in both files (`-offset`): a resume.
    pub offset: u64,
    /// Downloads: bytes wanted from the offset (`None`: to the end).
    pub len: Option<u64>,
    /// Acknowledge every chunk (`-single_step`).
    pub single_step: bool,
    /// Overwrite without the host asking (`-force`).
    pub force: bool,
    /// Upload chunk size in bytes (0: [`DEFAULT_CHUNK`]; at most 2^24 − 1).
    pub chunk: usize,
    /// Cancels the transfer when triggered.
    pub cancel: CancellationToken,
}

/// What a caller hears about a running transfer. Every method has a default that does
/// nothing (or declines).
pub trait TransferEvents {
    /// The host settled on `len` bytes.
    fn started(&mut self, len: u64) {
        let _ = len;
    }
    /// `done` of the bytes have gone across.
    fn progress(&mut self, done: u64) {
        let _ = done;
    }
    /// The host asks a y/n question (overwrite); true answers `y`.
    fn confirm(&mut self, question: &str) -> bool {
        let _ = question;
        false
    }
    /// Other TEXT the command sent.
    fn text(&mut self, text: &str) {
        let _ = text;
    }
}

/// [`TransferEvents`] that ignore everything and decline questions.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

impl TransferEvents for NoEvents {}

/// How a transfer ended, when the host did not refuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferOutcome {
    /// Every byte went across.
    Complete {
        /// Bytes transferred.
        bytes: u64,
    },
    /// The overwrite question was answered no.
    Declined,
    /// The caller cancelled.
    Cancelled {
        /// Bytes transferred before the cancel.
        bytes: u64,
    },
}

/// True for a progress text `done/len`, which the client tracks itself.
fn is_progress(text: &str) -> bool {
    let t = text.trim_end();
    t.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

/// True for a TEXT that waits for an answer (the host's questions end with `: `).
fn is_question(text: &str) -> bool {
    text.ends_with(": ") && text.contains("(y/n")
}

/// One transfer's bookkeeping on a command instance.
struct Run {
    cmd: CmdId,
    branch: BranchId,
    errors: Vec<String>,
}

/// What one received frame means for the transfer.
enum Step {
    /// Nothing for the transfer (another command's frame, a progress text).
    Nothing,
    /// A GEN_FILE on our instance.
    GenFile(Bytes),
    /// The command ended.
    Idle,
    /// A question was answered no.
    Declined,
}

impl Run {
    fn new(client: &Client, name: &str, branch: u16) -> Result<Self> {
        let cmd = client
            .commands
            .id(name)
            .ok_or_else(|| Error::UnknownCommand(name.to_owned()))?;
        Ok(Self {
            cmd,
            branch: BranchId(branch),
            errors: Vec::new(),
        })
    }

    fn frame(&self, type_id: TypeId, payload: impl Into<Bytes>) -> Frame {
        Frame::new(type_id, self.cmd, self.branch, payload.into())
    }

    /// Interprets `frame`, answering questions through `events`.
    async fn step(
        &mut self,
        client: &mut Client,
        frame: Frame,
        events: &mut (dyn TransferEvents + Send),
    ) -> Result<Step> {
        if frame.cmd_id != self.cmd || frame.branch_id != self.branch {
            return Ok(Step::Nothing);
        }
        match frame.type_id {
            TypeId::IDLE => Ok(Step::Idle),
            TypeId::GEN_FILE => Ok(Step::GenFile(frame.payload)),
            TypeId::ERR => {
                self.errors.push(frame.text_payload());
                Ok(Step::Nothing)
            }
            TypeId::TEXT | TypeId::BIG_TEXT => {
                let t = frame.text_payload();
                if is_question(&t) {
                    let yes = events.confirm(&t);
                    let answer = if yes { "y" } else { "n" };
                    client
                        .send(self.frame(TypeId::TEXT, text::encode(answer)))
                        .await?;
                    if !yes {
                        return Ok(Step::Declined);
                    }
                } else if !is_progress(&t) {
                    events.text(&t);
                }
                Ok(Step::Nothing)
            }
            _ => Ok(Step::Nothing),
        }
    }

    /// The error for a command that ended without finishing.
    fn failed(&self) -> Error {
        let why = if self.errors.is_empty() {
            "the command ended before the transfer finished".to_owned()
        } else {
            self.errors.join("; ")
        };
        Error::Transfer(why)
    }

    /// Sends TERM_CMD and waits for the IDLE.
    async fn cancel(&mut self, client: &mut Client) -> Result<()> {
        client
            .send(self.frame(TypeId::TERM_CMD, Bytes::new()))
            .await?;
        self.until_idle(client).await
    }

    /// Receives (dropping file data) until the command's IDLE.
    async fn until_idle(&mut self, client: &mut Client) -> Result<()> {
        loop {
            let frame = client.recv().await?.ok_or(Error::Closed)?;
            if frame.cmd_id == self.cmd && frame.branch_id == self.branch {
                match frame.type_id {
                    TypeId::IDLE => return Ok(()),
                    TypeId::ERR => self.errors.push(frame.text_payload()),
                    _ => {}
                }
            }
        }
    }

    /// Receives the next step, or `None` when the cancel token fired first.
    async fn next(
        &mut self,
        client: &mut Client,
        cancel: &CancellationToken,
        events: &mut (dyn TransferEvents + Send),
    ) -> Result<Option<Step>> {
        let frame = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(None),
            frame = client.recv() => frame?.ok_or(Error::Closed)?,
        };
        self.step(client, frame, events).await.map(Some)
    }
}

impl Client {
    /// Receives a frame if one is already there, without waiting.
    fn try_recv(&mut self) -> Result<Option<Frame>> {
        match self.frames.next().now_or_never() {
            None => Ok(None),
            Some(item) => {
                received(&mut self.commands, item).and_then(|f| f.ok_or(Error::Closed).map(Some))
            }
        }
    }

    /// Uploads `local` (from [`TransferOptions::offset`] to its end) to `remote` on the host.
    ///
    /// # Errors
    /// [`Error::Transfer`] with the host's ERR texts if it refused or failed; IO errors for
    /// the local file; the connection's errors.
    pub async fn upload(
        &mut self,
        local: &Path,
        remote: &str,
        opts: &TransferOptions,
        events: &mut (dyn TransferEvents + Send),
    ) -> Result<TransferOutcome> {
        let mut file = tokio::fs::File::open(local).await?;
        let size = file.metadata().await?.len();
        let Some(len) = size.checked_sub(opts.offset) else {
            return Err(Error::Transfer(format!(
                "the offset {} is past the end of {} ({size} bytes)",
                opts.offset,
                local.display()
            )));
        };
        file.seek(std::io::SeekFrom::Start(opts.offset)).await?;
        let mut run = Run::new(
            self,
            opts.command.as_deref().unwrap_or("fs_upload"),
            opts.branch,
        )?;
        let args = GenFileArgs {
            len: Some(len),
            offset: opts.offset,
            client_file: Some(local.display().to_string()),
            remote_file: Some(remote.to_owned()),
            single_step: opts.single_step,
            force: opts.force,
            ..GenFileArgs::default()
        };
        self.send(run.frame(TypeId::GEN_FILE, args.to_bytes()))
            .await?;
        let cancel = &opts.cancel;
        // The host's reply, then its empty "ready".
        let mut replied = false;
        loop {
            match run.next(self, cancel, events).await? {
                None => {
                    run.cancel(self).await?;
                    return Ok(TransferOutcome::Cancelled { bytes: 0 });
                }
                Some(Step::GenFile(p)) if p.is_empty() && replied => break,
                Some(Step::GenFile(p)) => {
                    let reply = GenFileArgs::parse(&p)?;
                    if !reply.to_host {
                        run.cancel(self).await?;
                        return Err(Error::Transfer("the command does not take uploads".into()));
                    }
                    replied = true;
                    events.started(len);
                }
                Some(Step::Idle) => return Err(run.failed()),
                Some(Step::Declined) => {
                    run.until_idle(self).await?;
                    return Ok(TransferOutcome::Declined);
                }
                Some(Step::Nothing) => {}
            }
        }
        let chunk = match opts.chunk {
            0 => DEFAULT_CHUNK,
            n => n.min(mrci_proto::frame::MAX_PAYLOAD),
        };
        let mut done = 0u64;
        while done < len {
            let want = usize::try_from(len - done).unwrap_or(chunk).min(chunk);
            let mut buf = BytesMut::zeroed(want);
            file.read_exact(&mut buf).await?;
            let frame = run.frame(TypeId::GEN_FILE, buf.freeze());
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    run.cancel(self).await?;
                    return Ok(TransferOutcome::Cancelled { bytes: done });
                }
                res = self.send(frame) => res?,
            }
            done += want as u64;
            events.progress(done);
            if opts.single_step && done < len {
                loop {
                    match run.next(self, cancel, events).await? {
                        None => {
                            run.cancel(self).await?;
                            return Ok(TransferOutcome::Cancelled { bytes: done });
                        }
                        Some(Step::GenFile(p)) if p.is_empty() => break,
                        Some(Step::Idle) => return Err(run.failed()),
                        Some(_) => {}
                    }
                }
            } else {
                // Read what the host already sent (progress, an ERR) so it never waits on us.
                while let Some(frame) = self.try_recv()? {
                    if let Step::Idle = run.step(self, frame, events).await? {
                        return Err(run.failed());
                    }
                }
            }
        }
        run.until_idle(self).await?;
        if run.errors.is_empty() {
            Ok(TransferOutcome::Complete { bytes: len })
        } else {
            Err(run.failed())
        }
    }

    /// Downloads `remote` into `local`. With an offset the local file is continued there
    /// (a resume): its first `offset` bytes are kept and anything after them is cut.
    ///
    /// # Errors
    /// As [`Client::upload`].
    pub async fn download(
        &mut self,
        remote: &str,
        local: &Path,
        opts: &TransferOptions,
        events: &mut (dyn TransferEvents + Send),
    ) -> Result<TransferOutcome> {
        let mut run = Run::new(
            self,
            opts.command.as_deref().unwrap_or("fs_download"),
            opts.branch,
        )?;
        let args = GenFileArgs {
            len: opts.len,
            offset: opts.offset,
            client_file: Some(local.display().to_string()),
            remote_file: Some(remote.to_owned()),
            single_step: opts.single_step,
            ..GenFileArgs::default()
        };
        self.send(run.frame(TypeId::GEN_FILE, args.to_bytes()))
            .await?;
        let cancel = &opts.cancel;
        let mut file: Option<tokio::fs::File> = None;
        let (mut len, mut done) = (None, 0u64);
        loop {
            let Some(step) = run.next(self, cancel, events).await? else {
                run.cancel(self).await?;
                if let Some(f) = &mut file {
                    f.flush().await?;
                }
                return Ok(TransferOutcome::Cancelled { bytes: done });
            };
            match step {
                Step::GenFile(p) => match len {
                    None => {
                        let reply = GenFileArgs::parse(&p)?;
                        if !reply.from_host {
                            run.cancel(self).await?;
                            return Err(Error::Transfer("the command does not send files".into()));
                        }
                        let n = reply.len.unwrap_or(0);
                        len = Some(n);
                        let mut f = tokio::fs::OpenOptions::new()
                            .write(true)
                            .create(true)
                            .truncate(false)
                            .open(local)
                            .await?;
                        f.set_len(opts.offset).await?;
                        f.seek(std::io::SeekFrom::Start(opts.offset)).await?;
                        file = Some(f);
                        events.started(n);
                        self.send(run.frame(TypeId::GEN_FILE, Bytes::new())).await?;
                    }
                    Some(n) => {
                        if let Some(f) = &mut file {
                            f.write_all(&p).await?;
                        }
                        done += p.len() as u64;
                        events.progress(done);
                        if opts.single_step && done < n {
                            self.send(run.frame(TypeId::GEN_FILE, Bytes::new())).await?;
                        }
                    }
                },
                Step::Idle => break,
                Step::Declined | Step::Nothing => {}
            }
        }
        if let Some(mut f) = file {
            f.flush().await?;
            f.sync_all().await?;
        }
        match len {
            Some(n) if done == n && run.errors.is_empty() => {
                Ok(TransferOutcome::Complete { bytes: n })
            }
            _ => Err(run.failed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_and_questions_are_told_apart() {
        assert!(is_progress("10/100\n"));
        assert!(!is_progress("a/b\n"));
        assert!(!is_progress("/100"));
        assert!(is_question(
            "'/a' already exists, do you want to overwrite? (y/n): "
        ));
        assert!(!is_question("Deleted '/a'.\n"));
    }
}
