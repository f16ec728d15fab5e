//! Mail templates (COMMANDS.md §3.1 `set_email_template`, `preview_email`, §4.5): stored in
//! the settings table, with built-in defaults, and filled in for recovery and verification
//! mails.
//!
//! Invariant: a stored body always contains `%user_name%`, `%date%` and its secret's
//! placeholder, so a mail can never go out without the token or code it exists for.

use bytes::Bytes;
use mrci_proto::{TypeId, args::Args, payload::GenFileArgs, text};

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input, LoggedInClass, Refusal, task, util::refused,
};

/// Largest uploaded body, in bytes.
const MAX_UPLOAD: u64 = 20_000;
/// Longest body, in characters.
const MAX_BODY_CHARS: usize = 10_000;
/// Longest subject, in characters.
const MAX_SUBJECT_CHARS: usize = 120;

/// Which mail a template is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// The recovery token mail (`%temp_pw%`).
    Reset,
    /// The email verification mail (`%confirmation_code%`).
    Verify,
}

impl Kind {
    fn secret(self) -> &'static str {
        match self {
            Self::Reset => "%temp_pw%",
            Self::Verify => "%confirmation_code%",
        }
    }

    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Self::Reset => ("reset_subject", "reset_body"),
            Self::Verify => ("verify_subject", "verify_body"),
        }
    }

    fn defaults(self) -> (&'static str, &'static str) {
        match self {
            Self::Reset => (
                "Password Reset",
                "Someone asked to recover the MRCI account %user_name% on %date%.\n\n\
                 Recovery token: %temp_pw%\n\n\
                 Run recover_acct and enter this token to choose a new password. It works once \
                 and expires soon. If you did not ask for this, ignore this mail; your password \
                 has not changed.\n",
            ),
            Self::Verify => (
                "Email Verification",
                "Hello %user_name%,\n\nYour MRCI email verification code is \
                 %confirmation_code% (sent %date%).\n\nEnter it at the verify_email prompt. \
                 If you did not ask for this, ignore this mail.\n",
            ),
        }
    }
}

/// A subject and body with placeholders.
pub(super) struct Template {
    pub(super) subject: String,
    pub(super) body: String,
}

impl Template {
    /// The stored template of `kind`, or its default.
    pub(super) async fn load(ctx: &CmdCtx, kind: Kind) -> crate::Result<Self> {
        let (subject_key, body_key) = kind.keys();
        let (subject, body) = kind.defaults();
        let store = &ctx.host.store;
        Ok(Self {
            subject: store
                .setting(subject_key)
                .await?
                .unwrap_or_else(|| subject.to_owned()),
            body: store
                .setting(body_key)
                .await?
                .unwrap_or_else(|| body.to_owned()),
        })
    }

    /// The subject and body with the placeholders filled in.
    pub(super) fn fill(&self, kind: Kind, user: &str, now: i64, secret: &str) -> (String, String) {
        let date = utc_date(now);
        let fill = |s: &str| {
            s.replace("%user_name%", user)
                .replace("%date%", &date)
                .replace(kind.secret(), secret)
        };
        (fill(&self.subject), fill(&self.body))
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (proleptic Gregorian calendar).
pub(super) fn utc_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (the era-based algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        CommandDef {
            name: "set_email_template",
            public: false,
            logged_in: LoggedInClass::Ranked,
            gen_file: true,
            feature: None,
            summary: "set the subject and body of the recovery or verification mail",
            io: "[-reset_template or -confirm_template {-subject (text)} {-body (text)} or \
                 {-client_file (path) -len (bytes)}]/[text]",
            details: "The body must contain %user_name%, %date% and %temp_pw% (recovery) or \
                      %confirmation_code% (verification); at most 10,000 characters, subject at \
                      most 120. An empty -subject or -body restores the built-in default. With \
                      -client_file and -len the body is uploaded as a UTF-8 file (GEN_FILE, at \
                      most 20,000 bytes).",
            exec: task!(set_email_template),
        },
        CommandDef {
            name: "preview_email",
            public: false,
            logged_in: LoggedInClass::Ranked,
            gen_file: false,
            feature: None,
            summary: "show the recovery or verification mail as it would be sent",
            io: "[-reset_email or -confirm_email]/[text]",
            details: "Fills in your user name, the current date and a sample secret.",
            exec: task!(preview_email),
        },
    ]
}

fn kind_arg(args: &Args, reset: &str, confirm: &str) -> Result<Kind, Fail> {
    match (args.has(reset), args.has(confirm)) {
        (true, false) => Ok(Kind::Reset),
        (false, true) => Ok(Kind::Verify),
        _ => refused(format!("Give exactly one of {reset} or {confirm}.")),
    }
}

async fn preview_email(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let kind = kind_arg(args, "-reset_email", "-confirm_email")?;
    let template = Template::load(ctx, kind).await?;
    let user = ctx.user_name();
    let sample = match kind {
        Kind::Reset => "ABCDE-FGHJK-LMNPQ-RSTUV",
        Kind::Verify => "123456",
    };
    let (subject, body) = template.fill(kind, &user, ctx.host.clock.now(), sample);
    ctx.text(&format!("Subject: {subject}\n\n")).await;
    ctx.big_text(&body).await;
    Ok(())
}

async fn set_email_template(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    // TEXT is accepted as well as GEN_FILE so `-body` works from any client.
    let type_id = input.frame.type_id;
    if type_id != TypeId::GEN_FILE && type_id != TypeId::TEXT {
        return refused("Send the arguments as GEN_FILE or TEXT.");
    }
    let args = input.args;
    let kind = kind_arg(&args, "-reset_template", "-confirm_template")?;
    let subject = args.value("-subject").map(str::to_owned);
    let body = if args.has("-len") || args.has("-client_file") {
        let upload = match GenFileArgs::parse(&input.frame.payload) {
            Ok(upload) => upload,
            Err(e) => return refused(format!("{e}.")),
        };
        let len = upload.len.unwrap_or(0);
        if type_id != TypeId::GEN_FILE {
            return refused("An upload needs the arguments in a GEN_FILE frame.");
        }
        if !(1..=MAX_UPLOAD).contains(&len) {
            return refused(format!("-len must be between 1 and {MAX_UPLOAD}."));
        }
        match receive_upload(ctx, len).await? {
            Some(body) => Some(body),
            None => return Ok(()),
        }
    } else {
        args.value("-body").map(str::to_owned)
    };
    if subject.is_none() && body.is_none() {
        return refused("Give -subject, -body or an upload.");
    }
    if let Some(subject) = &subject
        && (subject.chars().count() > MAX_SUBJECT_CHARS || subject.contains('\n'))
    {
        return refused(format!(
            "The subject must be one line of at most {MAX_SUBJECT_CHARS} characters."
        ));
    }
    if let Some(body) = body.as_ref().filter(|b| !b.is_empty()) {
        if body.chars().count() > MAX_BODY_CHARS {
            return refused(format!(
                "The body is longer than {MAX_BODY_CHARS} characters."
            ));
        }
        for needed in ["%user_name%", "%date%", kind.secret()] {
            if !body.contains(needed) {
                return refused(format!("The body must contain {needed}."));
            }
        }
    }
    let (subject_key, body_key) = kind.keys();
    let store = &ctx.host.store;
    if let Some(subject) = &subject {
        store
            .set_setting(
                subject_key,
                Some(subject).filter(|s| !s.is_empty()).map(String::as_str),
            )
            .await?;
    }
    if let Some(body) = &body {
        store
            .set_setting(
                body_key,
                Some(body).filter(|b| !b.is_empty()).map(String::as_str),
            )
            .await?;
    }
    ctx.text("Template saved.\n").await;
    Ok(())
}

/// Collects an uploaded body of `len` bytes (PROTOCOL.md §3.4). `None` if the client
/// stopped the transfer (after telling it why).
async fn receive_upload(ctx: &mut CmdCtx, len: u64) -> Result<Option<String>, Fail> {
    let reply = mrci_proto::args::ArgsBuilder::new()
        .flag("-to_host")
        .arg("-len", len)
        .build();
    ctx.send(TypeId::GEN_FILE, text::encode(&reply)).await;
    ctx.send(TypeId::GEN_FILE, Bytes::new()).await;
    let mut data = Vec::new();
    while (data.len() as u64) < len {
        let Some(frame) = ctx.next_input().await else {
            return Ok(None);
        };
        if frame.type_id != TypeId::GEN_FILE {
            ctx.refuse(&Refusal::new("Upload cancelled.")).await;
            return Ok(None);
        }
        if data.len() as u64 + frame.payload.len() as u64 > len {
            return refused("The upload is longer than -len.");
        }
        data.extend_from_slice(&frame.payload);
    }
    match String::from_utf8(data) {
        Ok(body) => Ok(Some(body)),
        Err(_) => refused("The uploaded body is not UTF-8 text."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(1_798_761_599), "2026-12-31 23:59:59 UTC");
        assert_eq!(utc_date(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn fill_replaces_every_placeholder() {
        let t = Template {
            subject: "Reset for %user_name%".into(),
            body: "%user_name% %date% %temp_pw% %temp_pw%".into(),
        };
        let (s, b) = t.fill(Kind::Reset, "ann", 0, "TOK");
        assert_eq!(s, "Reset for ann");
        assert_eq!(b, "ann 1970-01-01 00:00:00 UTC TOK TOK");
        let (_, body) = Kind::Verify.defaults();
        assert!(body.contains(Kind::Verify.secret()));
        let (_, body) = Kind::Reset.defaults();
        assert!(body.contains(Kind::Reset.secret()) && body.contains("%date%"));
    }
}
