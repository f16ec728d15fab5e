//! Sending mail: recovery tokens and verification codes (COMMANDS.md §4.5, with §7's
//! replacement of the shell-built mailer line).
//!
//! Three transports: SMTP through lettre, a sendmail-compatible program started directly
//! (never through a shell; the message goes to its standard input and the recipient is one
//! argument), and a directory that receives one `.eml` file per mail, for tests and for
//! operators who deliver mail by other means.
//!
//! Invariant: no part of a mail is ever interpreted by a shell, and a failed delivery is an
//! `Err` the command reports, never silence.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::header::ContentType,
    transport::smtp::authentication::Credentials,
};
use tokio::io::AsyncWriteExt;

use crate::{
    Error, Result,
    config::{Config, MailTransport, SmtpSecurity},
};

/// How long a sendmail program may take.
const SENDMAIL_DEADLINE: Duration = Duration::from_secs(30);

/// A configured transport.
pub(crate) enum Mailer {
    /// Mail is not configured.
    Disabled,
    /// SMTP submission.
    Smtp {
        /// The sender.
        from: lettre::Address,
        /// The connection pool.
        transport: AsyncSmtpTransport<Tokio1Executor>,
    },
    /// A sendmail-compatible program.
    Sendmail {
        /// The sender.
        from: lettre::Address,
        /// The program.
        program: PathBuf,
        /// Its arguments before the recipient.
        args: Vec<String>,
    },
    /// One file per mail in a directory.
    Directory {
        /// The sender.
        from: lettre::Address,
        /// Where the files go.
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Disabled => "disabled",
            Self::Smtp { .. } => "smtp",
            Self::Sendmail { .. } => "sendmail",
            Self::Directory { .. } => "directory",
        };
        f.debug_tuple("Mailer").field(&kind).finish()
    }
}

impl Mailer {
    /// The transport `config` asks for.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable sender address or SMTP server name.
    pub(crate) fn from_config(config: &Config) -> Result<Self> {
        let mail = &config.mail;
        if mail.transport == MailTransport::None {
            return Ok(Self::Disabled);
        }
        let from: lettre::Address = mail
            .from
            .parse()
            .map_err(|e| Error::Config(format!("mail.from: {e}")))?;
        Ok(match mail.transport {
            MailTransport::None => Self::Disabled,
            MailTransport::Smtp => {
                let host = mail.smtp_host.as_str();
                let builder = match mail.smtp_security {
                    SmtpSecurity::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                    }
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
                    SmtpSecurity::None => Ok(
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    ),
                }
                .map_err(|e| Error::Config(format!("mail.smtp_host: {e}")))?;
                let mut builder = builder.port(mail.smtp_port);
                if !mail.smtp_user.is_empty() {
                    let password = std::env::var("MRCI_SMTP_PASSWORD").unwrap_or_default();
                    builder =
                        builder.credentials(Credentials::new(mail.smtp_user.clone(), password));
                }
                Self::Smtp {
                    from,
                    transport: builder.build(),
                }
            }
            MailTransport::Sendmail => Self::Sendmail {
                from,
                program: mail.sendmail_program.clone(),
                args: mail.sendmail_args.clone(),
            },
            MailTransport::Directory => {
                let dir = config.mail_dir();
                std::fs::create_dir_all(&dir)?;
                Self::Directory { from, dir }
            }
        })
    }

    /// True when mail can be sent at all.
    pub(crate) fn is_enabled(&self) -> bool {
        !matches!(self, Self::Disabled)
    }

    /// Sends a plain-text mail to `to`.
    ///
    /// # Errors
    /// [`Error::Mail`] if the address is invalid, the transport is disabled, or delivery
    /// fails.
    pub(crate) async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        let from = match self {
            Self::Disabled => return Err(Error::Mail("no mail transport is configured".into())),
            Self::Smtp { from, .. }
            | Self::Sendmail { from, .. }
            | Self::Directory { from, .. } => from.clone(),
        };
        let to_addr: lettre::Address = to
            .parse()
            .map_err(|e| Error::Mail(format!("recipient {to:?}: {e}")))?;
        let message = Message::builder()
            .from(lettre::message::Mailbox::new(None, from))
            .to(lettre::message::Mailbox::new(None, to_addr.clone()))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| Error::Mail(e.to_string()))?;
        match self {
            Self::Disabled => Ok(()),
            Self::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|e| Error::Mail(e.to_string())),
            Self::Sendmail { program, args, .. } => {
                sendmail(program, args, to_addr.as_ref(), &message.formatted()).await
            }
            Self::Directory { dir, .. } => write_file(dir, &message.formatted()).await,
        }
    }
}

async fn sendmail(program: &PathBuf, args: &[String], to: &str, message: &[u8]) -> Result<()> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .arg(to)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Mail(format!("cannot start {}: {e}", program.display())))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::Mail("no standard input".into()))?;
    let run = async {
        // A program that exits without reading is judged by its exit status below.
        match stdin.write_all(message).await {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
        drop(stdin);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(SENDMAIL_DEADLINE, run)
        .await
        .map_err(|_| Error::Mail(format!("{} did not finish in time", program.display())))?
        .map_err(|e| Error::Mail(format!("{}: {e}", program.display())))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(Error::Mail(format!(
            "{} failed ({}): {}",
            program.display(),
            output.status,
            stderr.trim()
        )))
    }
}

async fn write_file(dir: &std::path::Path, message: &[u8]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{stamp:032}-{}-{seq}.eml", std::process::id());
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, message).await?;
    tokio::fs::rename(&tmp, dir.join(name)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(transport: MailTransport, dir: &std::path::Path) -> Config {
        let mut config = Config {
            data_dir: dir.to_owned(),
            ..Config::default()
        };
        config.mail.transport = transport;
        config
    }

    #[tokio::test]
    async fn directory_transport_writes_one_file_per_mail() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::from_config(&config(MailTransport::Directory, dir.path())).unwrap();
        mailer
            .send("bob@example.org", "Hello", "line one\nline two")
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("To: bob@example.org"), "{text}");
        assert!(text.contains("Subject: Hello"), "{text}");
        assert!(text.contains("line two"), "{text}");
        assert!(mailer.send("not an address", "s", "b").await.is_err());
    }

    #[tokio::test]
    async fn sendmail_runs_without_a_shell_and_reports_failure() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A stand-in sendmail that records its arguments and standard input.
        let fake = dir.path().join("fake-sendmail");
        std::fs::write(
            &fake,
            "#!/bin/sh\nd=$(dirname \"$0\")\nprintf '%s\\n' \"$@\" > \"$d/args\"\ncat > \"$d/message\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cfg = config(MailTransport::Sendmail, dir.path());
        cfg.mail.sendmail_program = fake;
        let mailer = Mailer::from_config(&cfg).unwrap();
        mailer
            .send("eve+x@example.org", "S", "body text")
            .await
            .unwrap();
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(args, "-i\n--\neve+x@example.org\n");
        let message = std::fs::read_to_string(dir.path().join("message")).unwrap();
        assert!(message.contains("body text"), "{message}");
        cfg.mail.sendmail_program = "false".into();
        let failing = Mailer::from_config(&cfg).unwrap();
        let err = failing.send("eve@example.org", "S", "b").await.unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
        let disabled = Mailer::from_config(&Config::default()).unwrap();
        assert!(!disabled.is_enabled());
        assert!(disabled.send("a@b.c", "s", "b").await.is_err());
    }

    /// A minimal SMTP server: accepts one mail and returns what it was given.
    async fn one_mail_smtp(listener: tokio::net::TcpListener) -> std::io::Result<String> {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let (sock, _) = listener.accept().await?;
        let (rd, mut wr) = sock.into_split();
        let mut lines = BufReader::new(rd).lines();
        let mut log = String::new();
        wr.write_all(b"220 test ESMTP\r\n").await?;
        let mut in_data = false;
        while let Some(line) = lines.next_line().await? {
            log.push_str(&line);
            log.push('\n');
            let reply: &[u8] = if in_data {
                if line != "." {
                    continue;
                }
                in_data = false;
                b"250 queued\r\n"
            } else {
                match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                    Some("EHLO") => b"250 test\r\n",
                    Some("DATA") => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    Some("QUIT") => {
                        wr.write_all(b"221 bye\r\n").await?;
                        break;
                    }
                    _ => b"250 ok\r\n",
                }
            };
            wr.write_all(reply).await?;
        }
        Ok(log)
    }

    #[tokio::test]
    async fn smtp_transport_speaks_smtp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(one_mail_smtp(listener));
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(MailTransport::Smtp, dir.path());
        cfg.mail.smtp_host = "127.0.0.1".into();
        cfg.mail.smtp_port = port;
        cfg.mail.smtp_security = SmtpSecurity::None;
        let mailer = Mailer::from_config(&cfg).unwrap();
        mailer
            .send("zoe@example.org", "Token", "your token is ABCDE")
            .await
            .unwrap();
        drop(mailer);
        let log = tokio::time::timeout(Duration::from_secs(20), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(log.contains("RCPT TO:<zoe@example.org>"), "{log}");
        assert!(log.contains("MAIL FROM:<mrci@localhost>"), "{log}");
        assert!(log.contains("your token is ABCDE"), "{log}");
    }
}
