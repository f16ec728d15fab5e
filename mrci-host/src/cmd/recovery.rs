//! Self-service recovery and verification (COMMANDS.md §3.1, §4.5, with §7's fixes):
//! `request_pw_reset`, `recover_acct` and `verify_email`.
//!
//! A recovery token is 100 random bits shown as four groups of five characters. Only its
//! SHA3-256 hash is stored; it works once, expires, and is voided after a few wrong guesses.
//! `request_pw_reset` answers the same way whether or not the account exists and mails in the
//! background, so neither its text nor its timing tells who has an account; `recover_acct`
//! gives one answer for every kind of failure. Both count against a per-address limit.

use mrci_proto::args::Args;
use rand::Rng;
use sha3::{Digest, Sha3_256};

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Feature, Input, LoggedInClass, Refusal,
    accounts::prompt_new_password,
    task,
    templates::{Kind, Template},
    util::{login_arg, refused},
};
use crate::{bus::Event, store::UserRecord};

/// Letters and digits that cannot be confused with each other (no 0/O, 1/I).
const TOKEN_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Wrong verification codes before `verify_email` gives up.
const VERIFY_ATTEMPTS: u32 = 5;
/// Seconds a verification code stays valid.
const VERIFY_SECS: i64 = 900;
const RECOVERY_FAILED: &str = "The recovery token is wrong, used or expired.";

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        CommandDef {
            name: "request_pw_reset",
            public: true,
            logged_in: LoggedInClass::Ranked,
            gen_file: false,
            feature: Some(Feature::Recovery),
            summary: "mail a one-time recovery token to an account's email address",
            io: "[-user (text) or -email (text)]/[text]",
            details: "If the account exists and has an email address, a recovery token is mailed \
                      to it. The token works once with recover_acct and expires; asking again \
                      replaces it.",
            exec: task!(request_pw_reset),
        },
        CommandDef {
            name: "recover_acct",
            public: true,
            logged_in: LoggedInClass::Ranked,
            gen_file: false,
            feature: Some(Feature::Recovery),
            summary: "choose a new password with a mailed recovery token",
            io: "[-user (text) or -email (text)]/[text]",
            details: "Prompts for the recovery token, then for a new password. It does not log \
                      you in and does not lift an administrator's lock.",
            exec: task!(recover_acct),
        },
        CommandDef {
            name: "verify_email",
            public: false,
            logged_in: LoggedInClass::Exempt,
            gen_file: false,
            feature: Some(Feature::EmailVerify),
            summary: "verify your email address with a mailed code",
            io: "[none]/[text]",
            details: "Mails a 6-digit code to your address and prompts for it. The code expires \
                      after 15 minutes or 5 wrong answers; an empty answer cancels.",
            exec: task!(verify_email),
        },
    ]
}

/// A fresh recovery token, `XXXXX-XXXXX-XXXXX-XXXXX`.
fn new_token() -> String {
    let mut rng = rand::rng();
    let mut out = String::with_capacity(23);
    for i in 0..20 {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        let idx = rng.random_range(0..TOKEN_ALPHABET.len());
        out.push(char::from(TOKEN_ALPHABET[idx]));
    }
    out
}

/// The stored hash of a token as typed: separators and case do not matter.
fn token_hash(typed: &str) -> Vec<u8> {
    let canonical: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha3_256::digest(canonical.as_bytes()).to_vec()
}

/// Equality that takes the same time wherever the inputs differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The account named by `-user` or `-email` (`None` if there is none; bad arguments are
/// refused).
async fn account_arg(ctx: &CmdCtx, args: &Args) -> Result<Option<UserRecord>, Fail> {
    let login = login_arg(args)?;
    Ok(ctx.host.store.find_user(login).await?)
}

/// Counts an attempt from the caller's address; refused if the address is over its limit.
fn within_limit(ctx: &CmdCtx) -> Result<(), Fail> {
    let view = ctx.view();
    let max = ctx.host.settings().security.auth_attempts_per_minute;
    if ctx
        .host
        .recovery_limit
        .allow(view.ip, ctx.host.clock.now(), max)
    {
        return Ok(());
    }
    tracing::warn!(ip = %view.ip, "recovery attempts over the per-address limit");
    refused("Too many recovery attempts from your address; try again in a minute.")
}

async fn request_pw_reset(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let user = account_arg(ctx, args).await?;
    within_limit(ctx)?;
    let settings = ctx.host.settings();
    let (now, accounts) = (ctx.host.clock.now(), &settings.accounts);
    let (ip, app) = {
        let view = ctx.view();
        (view.ip.to_string(), view.app.clone())
    };
    let store = &ctx.host.store;
    let reason = match &user {
        None => "recovery requested for an unknown account",
        Some(u) if u.email.is_empty() => "recovery requested; the account has no email",
        Some(u) => match store.recovery_token(&u.id).await? {
            Some(t) if now - t.issued_at < accounts.recovery_resend_secs => {
                "recovery requested again too soon; no mail sent"
            }
            _ => {
                let token = new_token();
                let expires = now + accounts.recovery_token_secs;
                store
                    .put_recovery_token(&u.id, &token_hash(&token), now, expires)
                    .await?;
                let template = Template::load(ctx, Kind::Reset).await?;
                let (subject, body) = template.fill(Kind::Reset, &u.name, now, &token);
                let host = ctx.host.clone();
                let (to, name) = (u.email.clone(), u.name.clone());
                // Mail in the background: the reply must not wait longer for real accounts.
                tokio::spawn(async move {
                    if let Err(e) = host.send_mail(&to, &subject, &body).await {
                        tracing::error!(user = %name, error = %e, "recovery mail not sent");
                    }
                });
                "recovery token mailed"
            }
        },
    };
    store
        .log_recovery(user.as_ref().map(|u| &u.id), &ip, &app, false, reason, now)
        .await?;
    let minutes = accounts.recovery_token_secs / 60;
    ctx.text(&format!(
        "If that account exists and has an email address, a recovery token is on its way \
         to it. The token works once and expires in {minutes} minutes; use it with \
         recover_acct.\n"
    ))
    .await;
    Ok(())
}

async fn recover_acct(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let user = account_arg(ctx, args).await?;
    ctx.priv_prompt("Recovery token (an empty answer cancels): ")
        .await;
    let Some(typed) = ctx.next_text().await.filter(|t| !t.trim().is_empty()) else {
        ctx.text("Cancelled.\n").await;
        return Ok(());
    };
    within_limit(ctx)?;
    let Some((user, hash)) = check_token(ctx, user, &typed).await? else {
        return refused(RECOVERY_FAILED);
    };
    let Some(pw) = prompt_new_password(ctx, &user.name, &user.display_name, &user.email).await
    else {
        ctx.text("Cancelled; the token still works until it expires.\n")
            .await;
        return Ok(());
    };
    let phc = ctx.host.hasher.hash(&pw).await?;
    let store = &ctx.host.store;
    // Consuming the row that matched makes the token single-use even against a
    // concurrent recovery with the same token.
    if !store.consume_recovery_token(&user.id, &hash).await? {
        return refused(RECOVERY_FAILED);
    }
    let now = ctx.host.clock.now();
    store.set_password(&user.id, &phc, false).await?;
    store
        .record_login_success(&user.id, &ctx.view().ip.to_string())
        .await?;
    let view = ctx.view();
    store
        .log_recovery(
            Some(&user.id),
            &view.ip.to_string(),
            &view.app,
            true,
            "password recovered",
            now,
        )
        .await?;
    ctx.text("Password changed. You can log in with auth now.\n")
        .await;
    Ok(())
}

/// Checks a typed token; counts and logs failures. The account and the matching hash on
/// success.
async fn check_token(
    ctx: &CmdCtx,
    user: Option<UserRecord>,
    typed: &str,
) -> crate::Result<Option<(UserRecord, Vec<u8>)>> {
    let (now, max) = (
        ctx.host.clock.now(),
        ctx.host.settings().accounts.recovery_max_attempts,
    );
    let (ip, app) = {
        let view = ctx.view();
        (view.ip.to_string(), view.app.clone())
    };
    let store = &ctx.host.store;
    let hash = token_hash(typed);
    let Some(user) = user else {
        store
            .log_recovery(
                None,
                &ip,
                &app,
                false,
                "recovery for an unknown account",
                now,
            )
            .await?;
        return Ok(None);
    };
    let reason = match store.recovery_token(&user.id).await? {
        None => "no recovery token",
        Some(t) if t.expires_at <= now => {
            store.delete_recovery_token(&user.id).await?;
            "recovery token expired"
        }
        Some(t) if same_bytes(&t.token_hash, &hash) => return Ok(Some((user, hash))),
        Some(_) => {
            if store.recovery_attempt_failed(&user.id).await? >= max {
                store.delete_recovery_token(&user.id).await?;
                tracing::warn!(user = %user.name, "recovery token voided after repeated wrong guesses");
                "wrong recovery token; token voided"
            } else {
                "wrong recovery token"
            }
        }
    };
    store
        .log_recovery(Some(&user.id), &ip, &app, false, reason, now)
        .await?;
    Ok(None)
}

async fn verify_email(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let Some(me) = ctx.view().user.clone() else {
        return Ok(());
    };
    if me.email.is_empty() {
        return refused("Your account has no email address; set one with set_email.");
    }
    if me.email_verified {
        ctx.text("Your email address is already verified.\n").await;
        return Ok(());
    }
    within_limit(ctx)?;
    let code = rand::rng().random_range(100_000..=999_999u32).to_string();
    let sent_at = ctx.host.clock.now();
    let template = Template::load(ctx, Kind::Verify).await?;
    let (subject, body) = template.fill(Kind::Verify, &me.user_name, sent_at, &code);
    if let Err(e) = ctx.host.send_mail(&me.email, &subject, &body).await {
        tracing::error!(user = %me.user_name, error = %e, "verification mail not sent");
        return refused(
            "The verification mail could not be sent; the host admin can see why in the log.",
        );
    }
    for attempt in 1..=VERIFY_ATTEMPTS {
        ctx.text(&format!("A code was mailed to {}. Code: ", me.email))
            .await;
        let Some(answer) = ctx.next_text().await.filter(|a| !a.trim().is_empty()) else {
            ctx.text("Cancelled.\n").await;
            return Ok(());
        };
        if ctx.host.clock.now() - sent_at > VERIFY_SECS {
            return refused("The code has expired; run verify_email again.");
        }
        if same_bytes(answer.trim().as_bytes(), code.as_bytes()) {
            ctx.host.store.set_email_verified(&me.user_id, true).await?;
            ctx.host.bus.to_user(
                &me.user_id,
                Event::AccountChanged {
                    user_id: me.user_id,
                },
            );
            ctx.text("Email address verified.\n").await;
            return Ok(());
        }
        if attempt < VERIFY_ATTEMPTS {
            ctx.refuse(&Refusal::new("That code is wrong.")).await;
        }
    }
    ctx.refuse(&Refusal::new(
        "Too many wrong codes; run verify_email again for a new one.",
    ))
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_grouped_and_hash_loosely() {
        let token = new_token();
        assert_eq!(token.len(), 23);
        assert_eq!(token.matches('-').count(), 3);
        assert!(
            token
                .bytes()
                .all(|b| b == b'-' || TOKEN_ALPHABET.contains(&b))
        );
        assert_ne!(token, new_token());
        let loose = token.replace('-', " ").to_lowercase();
        assert_eq!(token_hash(&token), token_hash(&loose));
        assert_ne!(token_hash(&token), token_hash("ABCDE"));
        assert!(
            same_bytes(b"abc", b"abc") && !same_bytes(b"abc", b"abd") && !same_bytes(b"a", b"ab")
        );
    }
}
