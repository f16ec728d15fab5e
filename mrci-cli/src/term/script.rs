//! Scripted use (`mrci run`): log in, run each command to its IDLE, print TEXT to stdout and
//! ERR to stderr, and stop with a failing exit code at the first command that reported an
//! error.
//!
//! A command finishes when IDLE arrives for its (cmd id, branch 0). A command that asks for
//! more input (PRIV_TEXT, or TEXT without a final newline after the password) cannot be
//! answered here: it is cancelled and the run fails.

use std::{io::Write as _, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use mrci_cli::client::{Client, Error, TransferOutcome};
use mrci_proto::{BranchId, CmdId, TypeId, args::quote};

use super::{connect::Connect, render::render, transfer};

/// How long to wait for a command name to be announced (announcements can trail a login).
const ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

/// Exit code when a command reported ERR.
const EXIT_ERR: u8 = 1;
/// Exit code when the login failed.
const EXIT_LOGIN: u8 = 2;

/// Where the password comes from; never the command line.
pub(crate) enum PasswordSource {
    /// The first line of a file.
    File(PathBuf),
    /// The `MRCI_PASSWORD` environment variable, else a hidden prompt on the terminal.
    EnvOrPrompt,
}

/// What `mrci run` does.
pub(crate) struct ScriptOpts {
    /// Where and how to connect.
    pub(crate) connect: Connect,
    /// Log in as this user first.
    pub(crate) user: Option<String>,
    /// The password for `user`.
    pub(crate) password: PasswordSource,
    /// Command lines to run in order.
    pub(crate) lines: Vec<String>,
}

/// Runs a script; the exit code tells how it went.
///
/// # Errors
/// If the connection fails or the host goes away.
pub(crate) async fn run(opts: ScriptOpts) -> anyhow::Result<ExitCode> {
    let mut client = opts.connect.open().await?;
    if let Some(user) = &opts.user {
        let password = password(&opts.password, user)?;
        if let Err(e) = client.login(user, &password).await {
            match e {
                Error::LoginRefused { errors } => {
                    for err in errors {
                        eprintln!("{err}");
                    }
                    eprintln!("error: login refused");
                }
                Error::LoginPrompt { prompt } => eprintln!(
                    "error: the host asks {user} for more ({prompt}); log in once with `mrci connect`"
                ),
                other => eprintln!("error: {:#}", anyhow::Error::from(other)),
            }
            return Ok(ExitCode::from(EXIT_LOGIN));
        }
    }
    for line in &opts.lines {
        if let Some(parsed) = transfer::parse(line) {
            let ok = match parsed {
                Err(why) => {
                    eprintln!("error: {why}");
                    false
                }
                Ok(t) => {
                    // No bar unless stderr is a terminal; questions are declined without one.
                    let mut progress = transfer::Progress::stderr(&t.remote);
                    match transfer::run(&mut client, &t, &mut progress).await {
                        Ok(outcome) => {
                            println!("{}", transfer::summary(&t, outcome));
                            matches!(outcome, TransferOutcome::Complete { .. })
                        }
                        Err(e) => {
                            eprintln!("error: {e:#}");
                            false
                        }
                    }
                }
            };
            if !ok {
                return Ok(ExitCode::from(EXIT_ERR));
            }
            continue;
        }
        let (name, args) = split_command(line);
        let Some(id) = client.wait_for_command(name, ANNOUNCE_WAIT).await? else {
            eprintln!("error: the host offers no command {name:?}");
            return Ok(ExitCode::from(EXIT_ERR));
        };
        client.send_text(id, BranchId(0), args).await?;
        if !run_to_idle(&mut client, id).await? {
            return Ok(ExitCode::from(EXIT_ERR));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Splits `name args...` at the first space.
pub(crate) fn split_command(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim_start()),
        None => (line, ""),
    }
}

/// Joins command-line words into one argument text, quoting those that need it.
pub(crate) fn join_args(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.is_empty() || w.contains(char::is_whitespace) || w.contains('"') {
                quote(w)
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The script lines of a file: blank lines and `#` comments are skipped.
pub(crate) fn script_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn password(source: &PasswordSource, user: &str) -> anyhow::Result<String> {
    match source {
        PasswordSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the password file {}", path.display()))?;
            Ok(text.lines().next().unwrap_or_default().to_owned())
        }
        PasswordSource::EnvOrPrompt => {
            if let Ok(pw) = std::env::var("MRCI_PASSWORD") {
                return Ok(pw);
            }
            use std::io::IsTerminal as _;
            if !std::io::stdin().is_terminal() {
                bail!("no password for {user}: set MRCI_PASSWORD or give --password-file");
            }
            super::editor::read_secret(&format!("Password for {user}: "))
                .context("no password entered")
        }
    }
}

/// Prints the output of `(id, 0)` up to its IDLE; returns false if it reported ERR.
async fn run_to_idle(client: &mut Client, id: CmdId) -> anyhow::Result<bool> {
    let mut ok = true;
    let mut stdout = std::io::stdout().lock();
    loop {
        let frame = client
            .recv()
            .await?
            .context("the host closed the connection")?;
        let own = frame.cmd_id == id && frame.branch_id == BranchId(0);
        if !own {
            if frame.cmd_id.is_async() && frame.type_id == TypeId::ERR {
                eprint!("{}", with_newline(frame.text_payload()));
            }
            continue;
        }
        match frame.type_id {
            TypeId::IDLE => return Ok(ok),
            TypeId::PRIV_TEXT => {
                eprintln!(
                    "{}\nerror: the command asks for a hidden answer; cancelled",
                    frame.text_payload().trim_end()
                );
                client
                    .send_control(TypeId::TERM_CMD, id, BranchId(0))
                    .await?;
                ok = false;
            }
            _ => {
                if let Some(out) = render(&frame, None) {
                    if out.is_err {
                        ok = false;
                        stdout.flush()?;
                        eprint!("{}", out.text);
                    } else {
                        stdout.write_all(out.text.as_bytes())?;
                    }
                }
            }
        }
    }
}

fn with_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_and_joining() {
        assert_eq!(split_command("  my_info  "), ("my_info", ""));
        assert_eq!(split_command("auth -user  bob"), ("auth", "-user  bob"));
        let words = ["-name".to_owned(), "two words".to_owned()];
        assert_eq!(join_args(&words), format!("-name {}", quote("two words")));
        assert_eq!(script_lines("# c\n\n a b \n"), ["a b"]);
    }
}
