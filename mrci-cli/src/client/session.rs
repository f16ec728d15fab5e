//! Commands to their end: run a command by name and collect its frames up to IDLE, wait for
//! a command to be announced, and log in by answering `auth`'s hidden prompts.
//!
//! A command instance is `(command id, branch)`; these helpers use branch 0, the one a
//! client runs in the foreground. A command ends with IDLE on its instance (PROTOCOL.md
//! §2.5), so collecting stops there. A command that asks for input (PRIV_TEXT, or TEXT that
//! does not end a line) waits for it: answer with [`Client::send_text`] and keep receiving
//! with [`Client::recv`], or stop it with [`Client::send_control`] and TERM_CMD.

use std::time::Duration;

use mrci_proto::{BranchId, CmdId, Frame, TypeId, args::quote};

use super::{
    Client,
    error::{Error, Result},
};

/// How long [`Client::login`] waits for `auth` to be announced.
const AUTH_WAIT: Duration = Duration::from_secs(5);

/// The frames of one command run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// The command's own frames up to its IDLE, which is not included.
    pub frames: Vec<Frame>,
    /// Frames for other commands or async ids that arrived meanwhile, in order.
    pub other: Vec<Frame>,
}

impl Output {
    /// The TEXT and BIG_TEXT the command sent, joined.
    pub fn text(&self) -> String {
        self.texts(|t| t == TypeId::TEXT || t == TypeId::BIG_TEXT)
            .collect()
    }

    /// The text of each ERR frame the command sent.
    pub fn errors(&self) -> Vec<String> {
        self.texts(|t| t == TypeId::ERR).collect()
    }

    /// True when the command sent no ERR.
    pub fn is_ok(&self) -> bool {
        !self.frames.iter().any(|f| f.type_id == TypeId::ERR)
    }

    fn texts(&self, keep: impl Fn(TypeId) -> bool) -> impl Iterator<Item = String> {
        self.frames
            .iter()
            .filter(move |f| keep(f.type_id))
            .map(Frame::text_payload)
    }
}

/// A granted login.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Login {
    /// True when the host demanded a new password and got it.
    pub password_changed: bool,
    /// What `auth` said (its TEXT), such as "Access granted.".
    pub text: String,
}

impl Client {
    /// Runs the command called `name` (ignoring case) with the argument text `args` and
    /// collects its frames up to IDLE.
    ///
    /// ```no_run
    /// # async fn f(client: &mut mrci_cli::client::Client) -> mrci_cli::client::Result<()> {
    /// let out = client.run("ls_cmds", "-find my_").await?;
    /// print!("{}", out.text());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::UnknownCommand`] if the host has not announced it; otherwise as
    /// [`Client::recv`], and [`Error::Closed`] if the host closes before IDLE.
    pub async fn run(&mut self, name: &str, args: &str) -> Result<Output> {
        let id = self
            .commands
            .id(name)
            .ok_or_else(|| Error::UnknownCommand(name.to_owned()))?;
        self.call(id, args).await
    }

    /// Sends TEXT `args` to command `cmd` on branch 0 and collects its frames up to IDLE.
    ///
    /// # Errors
    /// As [`Client::collect`].
    pub async fn call(&mut self, cmd: CmdId, args: &str) -> Result<Output> {
        self.send_text(cmd, BranchId(0), args).await?;
        self.collect(cmd, BranchId(0)).await
    }

    /// Collects the frames of `(cmd, branch)` up to its IDLE.
    ///
    /// # Errors
    /// As [`Client::recv`], and [`Error::Closed`] if the host closes before IDLE.
    pub async fn collect(&mut self, cmd: CmdId, branch: BranchId) -> Result<Output> {
        let mut out = Output::default();
        loop {
            let frame = self.recv().await?.ok_or(Error::Closed)?;
            if frame.cmd_id != cmd || frame.branch_id != branch {
                out.other.push(frame);
            } else if frame.type_id == TypeId::IDLE {
                return Ok(out);
            } else {
                out.frames.push(frame);
            }
        }
    }

    /// The id of the command called `name`, receiving for up to `within` if it is not
    /// announced yet (announcements can trail ASYNC_RDY or a login). Frames received
    /// meanwhile update the command table and are otherwise dropped.
    ///
    /// # Errors
    /// As [`Client::recv`], and [`Error::Closed`] if the host closes.
    pub async fn wait_for_command(
        &mut self,
        name: &str,
        within: Duration,
    ) -> Result<Option<CmdId>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(id) = self.commands.id(name) {
                return Ok(Some(id));
            }
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Err(_) => return Ok(None),
                Ok(res) => {
                    res?.ok_or(Error::Closed)?;
                }
            }
        }
    }

    /// Logs in with `auth -user USER`, answering the password prompt.
    ///
    /// Any further prompt (a wrong password asked again, a forced password or user-name
    /// change) is cancelled with an empty answer and the login fails.
    ///
    /// # Errors
    /// [`Error::LoginRefused`] with the host's ERR texts (a wrong password, a locked
    /// account); [`Error::LoginPrompt`] when the host asks for more; otherwise as
    /// [`Client::recv`].
    pub async fn login(&mut self, user: &str, password: &str) -> Result<Login> {
        self.login_inner(user, password, None).await
    }

    /// As [`Client::login`], but answers one demand for a new password (an account created
    /// by `mrci host add-admin`, or one an administrator reset) with `new_password`.
    ///
    /// # Errors
    /// As [`Client::login`].
    pub async fn login_with_new_password(
        &mut self,
        user: &str,
        password: &str,
        new_password: &str,
    ) -> Result<Login> {
        self.login_inner(user, password, Some(new_password)).await
    }

    async fn login_inner(
        &mut self,
        user: &str,
        password: &str,
        mut new_password: Option<&str>,
    ) -> Result<Login> {
        let id = self
            .wait_for_command("auth", AUTH_WAIT)
            .await?
            .ok_or_else(|| Error::UnknownCommand("auth".into()))?;
        let branch = BranchId(0);
        self.send_text(id, branch, &format!("-user {}", argument(user)))
            .await?;
        let mut password = Some(password);
        let mut login = Login::default();
        let mut errors = Vec::new();
        let mut cancelled = None;
        loop {
            let frame = self.recv().await?.ok_or(Error::Closed)?;
            if frame.cmd_id != id || frame.branch_id != branch {
                continue;
            }
            let text = frame.text_payload();
            let question = match frame.type_id {
                TypeId::IDLE => break,
                TypeId::ERR => {
                    errors.push(text.trim_end().to_owned());
                    continue;
                }
                TypeId::PRIV_TEXT => true,
                // A TEXT that does not end its line is a question (a forced rename).
                TypeId::TEXT => !text.ends_with('\n'),
                _ => continue,
            };
            if !question {
                login.text.push_str(&text);
                continue;
            }
            if cancelled.is_some() {
                continue;
            }
            let answer = if frame.type_id != TypeId::PRIV_TEXT {
                None
            } else if let Some(password) = password.take() {
                Some(password)
            } else if errors.is_empty() {
                new_password
                    .take()
                    .inspect(|_| login.password_changed = true)
            } else {
                None
            };
            match answer {
                Some(answer) => self.send_text(id, branch, answer).await?,
                None => {
                    cancelled = Some(text.trim().to_owned());
                    self.send_text(id, branch, "").await?;
                }
            }
        }
        if !errors.is_empty() {
            return Err(Error::LoginRefused { errors });
        }
        match cancelled {
            Some(prompt) => Err(Error::LoginPrompt { prompt }),
            None => Ok(login),
        }
    }
}

/// A value as one TEXT argument: as it is when it is a single plain word, else quoted.
fn argument(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.starts_with('-')
        && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if plain {
        value.to_owned()
    } else {
        quote(value)
    }
}

#[cfg(test)]
mod tests {
    use mrci_proto::CmdId;

    use super::*;

    #[test]
    fn output_text_and_errors() {
        let id = CmdId(300);
        let out = Output {
            frames: vec![
                Frame::text(id, BranchId(0), "a\n"),
                Frame::with_text(TypeId::BIG_TEXT, id, BranchId(0), "b\n"),
                Frame::err(id, BranchId(0), "err: no"),
            ],
            other: Vec::new(),
        };
        assert_eq!(out.text(), "a\nb\n");
        assert_eq!(out.errors(), ["err: no"]);
        assert!(!out.is_ok());
        assert!(Output::default().is_ok());
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(argument("bob"), "bob");
        assert_eq!(argument("two words"), quote("two words"));
        assert_eq!(argument(""), quote(""));
        assert_eq!(argument("-x"), quote("-x"));
    }
}
