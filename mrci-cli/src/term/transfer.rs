//! The client's own `upload LOCAL [REMOTE]` and `download REMOTE [LOCAL]` lines, shared by
//! `mrci connect` and `mrci run`: parsing, the resume offset, a progress bar (indicatif:
//! bytes, rate, ETA; only on a terminal), Ctrl-C as a clean cancel (TERM_CMD, then the
//! command's IDLE) and the overwrite question.
//!
//! `--resume` continues where the last attempt stopped: a download from the local file's
//! size, an upload from the size of the host's `.NAME.part` file (read with `fs_info`).

use std::{
    io::{BufRead as _, IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mrci_cli::client::{Client, TransferEvents, TransferOptions, TransferOutcome};
use mrci_proto::{TypeId, args::tokenize, payload::FileInfo};
use tokio_util::sync::CancellationToken;

/// How long a transfer waits for the host to announce its file command.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    Up,
    Down,
}

/// A parsed `upload` or `download` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TransferLine {
    pub(crate) way: Way,
    pub(crate) local: PathBuf,
    pub(crate) remote: String,
    pub(crate) resume: bool,
    pub(crate) force: bool,
    pub(crate) single_step: bool,
}

/// Usage lines for `help`.
pub(crate) const HELP: &str = "  upload LOCAL [REMOTE] [--resume] [--force] [--single-step]
                      send a file to the host (fs_upload); --resume continues a cut upload
  download REMOTE [LOCAL] [--resume] [--force] [--single-step]
                      fetch a file from the host (fs_download); --resume continues a cut one";

/// Parses a line starting with `upload` or `download`; `None` for any other line.
pub(crate) fn parse(line: &str) -> Option<Result<TransferLine, String>> {
    let tokens = tokenize(line);
    let words: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
    let way = match words.first().copied() {
        Some("upload") => Way::Up,
        Some("download") => Way::Down,
        _ => return None,
    };
    let (mut flags, mut paths) = (Vec::new(), Vec::new());
    for t in &tokens[1..] {
        if !t.quoted && t.text.starts_with("--") {
            flags.push(t.text.as_str());
        } else {
            paths.push(t.text.as_str());
        }
    }
    if let Some(bad) = flags
        .iter()
        .find(|f| !["--resume", "--force", "--single-step"].contains(f))
    {
        return Some(Err(format!("unknown option {bad}")));
    }
    let (first, second) = match paths.as_slice() {
        [a] => (*a, None),
        [a, b] => (*a, Some(*b)),
        _ => {
            return Some(Err(
                "usage: upload LOCAL [REMOTE] or download REMOTE [LOCAL]".into(),
            ));
        }
    };
    let base = |p: &str| {
        Path::new(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (local, remote) = match way {
        Way::Up => (
            first.to_owned(),
            second.map_or_else(|| base(first), str::to_owned),
        ),
        Way::Down => (
            second.map_or_else(|| base(first), str::to_owned),
            first.to_owned(),
        ),
    };
    if local.is_empty() || remote.is_empty() {
        return Some(Err("name a file, not a directory".into()));
    }
    Some(Ok(TransferLine {
        way,
        local: PathBuf::from(local),
        remote,
        resume: flags.contains(&"--resume"),
        force: flags.contains(&"--force"),
        single_step: flags.contains(&"--single-step"),
    }))
}

/// The bar's template: bytes, total, rate and time left.
pub(crate) const BAR_TEMPLATE: &str =
    "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";

/// The progress bar a transfer draws on stderr (hidden when stderr is not a terminal, or
/// into `target` for tests), and its answers to the host's questions.
pub(crate) struct Progress {
    bar: ProgressBar,
    interactive: bool,
}

impl Progress {
    /// A bar labelled `label` drawing to `target`.
    pub(crate) fn new(label: &str, target: ProgressDrawTarget, interactive: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style = ProgressStyle::with_template(BAR_TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, interactive }
    }

    /// A bar on stderr if it is a terminal, hidden otherwise.
    pub(crate) fn stderr(label: &str) -> Self {
        let tty = std::io::stderr().is_terminal();
        let target = if tty {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::new(label, target, std::io::stdin().is_terminal())
    }

    fn finish(&self) {
        self.bar.finish();
    }

    fn abandon(&self) {
        self.bar.abandon();
    }
}

impl TransferEvents for Progress {
    fn started(&mut self, len: u64) {
        self.bar.set_length(len);
        self.bar.reset_eta();
    }
    fn progress(&mut self, done: u64) {
        self.bar.set_position(done);
    }
    fn confirm(&mut self, question: &str) -> bool {
        if !self.interactive {
            eprintln!("{question}n (not a terminal; use --force)");
            return false;
        }
        self.bar.suspend(|| {
            eprint!("{question}");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            answer.trim().eq_ignore_ascii_case("y")
        })
    }
    fn text(&mut self, text: &str) {
        self.bar.suspend(|| eprint!("{text}"));
    }
}

/// The part file's size on the host (0 when there is none).
async fn part_size(client: &mut Client, remote: &str) -> anyhow::Result<u64> {
    let path = Path::new(remote);
    let Some(name) = path.file_name() else {
        return Ok(0);
    };
    let part = path.with_file_name(format!(".{}.part", name.to_string_lossy()));
    let args = format!(
        "-path {} -info_frame",
        mrci_proto::args::quote(&part.to_string_lossy())
    );
    let out = client.run("fs_info", &args).await?;
    Ok(out
        .frames
        .iter()
        .find(|f| f.type_id == TypeId::FILE_INFO)
        .and_then(|f| FileInfo::parse(&f.payload).ok())
        .map_or(0, |i| i.size))
}

/// Runs a transfer line; Ctrl-C (SIGINT) cancels it cleanly.
///
/// # Errors
/// When the host refuses, a local file cannot be used, or the connection fails.
pub(crate) async fn run(
    client: &mut Client,
    line: &TransferLine,
    progress: &mut Progress,
) -> anyhow::Result<TransferOutcome> {
    // Right after a login the host may still be announcing its commands.
    let name = match line.way {
        Way::Up => "fs_upload",
        Way::Down => "fs_download",
    };
    if client
        .wait_for_command(name, ANNOUNCE_WAIT)
        .await?
        .is_none()
    {
        bail!("the host offers no command {name}");
    }
    let mut opts = TransferOptions {
        force: line.force,
        single_step: line.single_step,
        cancel: CancellationToken::new(),
        ..TransferOptions::default()
    };
    match line.way {
        Way::Up if line.resume => opts.offset = part_size(client, &line.remote).await?,
        Way::Down if line.resume => {
            opts.offset = std::fs::metadata(&line.local).map_or(0, |m| m.len());
        }
        Way::Down if line.local.exists() && !line.force => {
            bail!(
                "{} exists; add --force to replace it or --resume to continue it",
                line.local.display()
            );
        }
        _ => {}
    }
    let cancel = opts.cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    let res = match line.way {
        Way::Up => {
            client
                .upload(&line.local, &line.remote, &opts, progress)
                .await
        }
        Way::Down => {
            client
                .download(&line.remote, &line.local, &opts, progress)
                .await
        }
    };
    ctrl_c.abort();
    match &res {
        Ok(TransferOutcome::Complete { .. }) => progress.finish(),
        _ => progress.abandon(),
    }
    Ok(res?)
}

/// What to print once a transfer ended.
pub(crate) fn summary(line: &TransferLine, outcome: TransferOutcome) -> String {
    match outcome {
        TransferOutcome::Complete { bytes } => match line.way {
            Way::Up => format!("Uploaded {bytes} bytes to {}.", line.remote),
            Way::Down => format!("Downloaded {bytes} bytes to {}.", line.local.display()),
        },
        TransferOutcome::Declined => "Not overwritten; nothing was transferred.".into(),
        TransferOutcome::Cancelled { bytes } => {
            format!("Cancelled after {bytes} bytes; --resume continues it.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_default_names() {
        let up = parse("upload ./dir/a.bin").unwrap().unwrap();
        assert_eq!((up.way, up.remote.as_str()), (Way::Up, "a.bin"));
        let down = parse("download \"x y/b.txt\" --resume").unwrap().unwrap();
        assert_eq!(down.local, PathBuf::from("b.txt"));
        assert_eq!(down.remote, "x y/b.txt");
        assert!(down.resume && !down.force);
        assert!(parse("uploads a").is_none());
        assert!(parse("upload").unwrap().is_err());
        assert!(parse("upload a --fast").unwrap().is_err());
    }

    /// The bar's rendering: bytes, total, rate and ETA, drawn into an in-memory terminal.
    #[test]
    fn the_bar_shows_bytes_rate_and_eta() {
        let term = indicatif::InMemoryTerm::new(4, 120);
        let mut p = Progress::new(
            "up",
            ProgressDrawTarget::term_like(Box::new(term.clone())),
            false,
        );
        p.started(4 << 20);
        p.progress(1 << 20);
        // Drawing is rate-limited; abandoning draws the current state once more.
        p.abandon();
        let screen = term.contents();
        assert!(screen.contains("up ["), "{screen}");
        assert!(screen.contains("1.00 MiB/4.00 MiB"), "{screen}");
        assert!(screen.contains("/s") && screen.contains("ETA"), "{screen}");
    }
}
