//! `auth` and `logout` (COMMANDS.md §3.1, §4.3–4.4).
//!
//! `auth` never tells an unknown account from a wrong password: both run a full Argon2id
//! verification and answer "Access denied", so neither the text nor the timing enumerates
//! accounts. Failures are counted per (account, address): past the threshold that address is
//! locked out of that account for a time that doubles with each further lock, while the
//! owner's other addresses are not; failures spread over many addresses pause only the
//! addresses that failed (see `store::logins`).

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input, LoggedInClass, Refusal, SessionRequest, refuse,
    task, util::login_arg,
};
use crate::{
    password,
    store::{LoginBlock, UserRecord},
};

/// The answer to a wrong password and to an unknown account alike.
const DENIED: &str = "Access denied.";

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        CommandDef {
            name: "auth",
            public: true,
            logged_in: LoggedInClass::Never,
            gen_file: false,
            feature: None,
            summary: "log in with a user name or email address",
            io: "[-user (text) or -email (text)]/[text]",
            details: "Prompts for the password (hidden input). If the account must change its \
                      password or user name, prompts for the new one before access is granted. \
                      An empty answer at any prompt cancels the login. Repeated failures lock \
                      the account for a while.",
            exec: task!(auth),
        },
        CommandDef {
            name: "logout",
            public: false,
            logged_in: LoggedInClass::Exempt,
            gen_file: false,
            feature: None,
            summary: "log out of this session",
            io: "[none]/[text]",
            details: "Logs the session out; the command list returns to the public commands.",
            exec: task!(logout),
        },
    ]
}

async fn logout(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    ctx.request(SessionRequest::Logout).await;
    ctx.text("Logged out.\n").await;
    Ok(())
}

async fn auth(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let login = login_arg(args)?.to_owned();
    let user = ctx.host.store.find_user(&login).await?;
    let Some(user) = check_password(ctx, user).await? else {
        return Ok(());
    };
    if user.must_change_pw && !forced_password_change(ctx, &user).await? {
        return Ok(());
    }
    if user.must_change_name && !forced_rename(ctx, &user).await? {
        return Ok(());
    }
    ctx.request(SessionRequest::Login { user_id: user.id })
        .await;
    ctx.text("Access granted.\n").await;
    Ok(())
}

/// Prompts until the password is right, the login is cancelled or the account locks.
/// Returns the user on success.
async fn check_password(
    ctx: &mut CmdCtx,
    user: Option<UserRecord>,
) -> Result<Option<UserRecord>, Fail> {
    let (ip, app) = {
        let view = ctx.view();
        (view.ip.to_string(), view.app.clone())
    };
    loop {
        let now = ctx.host.clock.now();
        if user.as_ref().is_some_and(|u| u.locked) {
            return Err(
                Refusal::new("Access denied. The account is locked by an administrator.").into(),
            );
        }
        if let Some(user) = &user
            && let Some(block) = ctx.host.store.login_block(&user.id, &ip, now).await?
        {
            return Err(blocked(block, now, "another ").into());
        }
        ctx.priv_prompt("Enter password (an empty answer cancels): ")
            .await;
        let Some(password) = ctx.next_text().await.filter(|p| !p.is_empty()) else {
            ctx.text("Login cancelled.\n").await;
            return Ok(None);
        };
        let max = ctx.host.settings().security.auth_attempts_per_minute;
        if !ctx.host.auth_limit.allow(ctx.view().ip, now, max) {
            tracing::warn!(ip = %ip, "login attempts over the per-address limit");
            return Err(Refusal::new(
                "Too many login attempts from your address; try again in a minute.",
            )
            .into());
        }
        let store = &ctx.host.store;
        let Some(user) = &user else {
            ctx.host.hasher.verify_dummy(&password).await;
            store
                .log_auth(None, &ip, &app, false, "unknown account", now)
                .await?;
            crate::metrics::auth_failure();
            auto_ban(ctx, &ip, now).await?;
            ctx.refuse(&Refusal::new(DENIED)).await;
            continue;
        };
        if ctx.host.hasher.verify(&password, &user.phc).await? {
            store.record_login_success(&user.id, &ip).await?;
            store
                .log_auth(Some(&user.id), &ip, &app, true, "password accepted", now)
                .await?;
            return Ok(Some(user.clone()));
        }
        store
            .log_auth(Some(&user.id), &ip, &app, false, "wrong password", now)
            .await?;
        crate::metrics::auth_failure();
        auto_ban(ctx, &ip, now).await?;
        let settings = ctx.host.settings();
        if let Some(block) = store
            .record_login_failure(&user.id, &ip, now, &settings.security)
            .await?
        {
            tracing::warn!(user = %user.name, %ip, ?block, "login paused after repeated failures");
            return Err(blocked(block, now, "").into());
        }
        ctx.refuse(&Refusal::new(DENIED)).await;
    }
}

/// Bans the address once its failed logins within the window reach the automatic-ban
/// threshold (`security.auto_ban_failed_logins`, 0: never); the ban ends this session too.
async fn auto_ban(ctx: &CmdCtx, ip: &str, now: i64) -> Result<(), Fail> {
    let settings = ctx.host.settings();
    let security = &settings.security;
    if security.auto_ban_failed_logins == 0 {
        return Ok(());
    }
    let since = now - security.auto_ban_window_secs;
    let failures = ctx.host.store.failed_logins_from(ip, since).await?;
    if failures < i64::from(security.auto_ban_failed_logins) {
        return Ok(());
    }
    let net = crate::store::IpNet::parse(ip)?;
    let expires = (security.auto_ban_secs > 0).then(|| now + security.auto_ban_secs);
    let reason = format!("{failures} failed logins");
    tracing::warn!(%ip, failures, "address banned automatically after failed logins");
    ctx.host.ban(net, expires, &reason, true).await?;
    Err(Refusal::new("Access denied. Too many failed logins: your address is banned.").into())
}

/// Why a login must wait: this address failed too often (the owner's other addresses are not
/// affected), or the account is pausing the addresses that failed on it.
fn blocked(block: LoginBlock, now: i64, another: &str) -> Refusal {
    match block {
        LoginBlock::Address(until) => refuse!(
            "Access denied. Too many failed attempts: the account is locked for {another}{} seconds from your address.",
            until - now
        ),
        LoginBlock::Account(until) => refuse!(
            "Access denied. Too many failed attempts on this account: try again in {} seconds.",
            until - now
        ),
    }
}

/// The password change an operator or `add-admin` demanded. Returns false if cancelled.
async fn forced_password_change(ctx: &mut CmdCtx, user: &UserRecord) -> crate::Result<bool> {
    loop {
        ctx.priv_prompt("You must set a new password (an empty answer cancels): ")
            .await;
        let Some(new) = ctx.next_text().await.filter(|p| !p.is_empty()) else {
            ctx.text("Login cancelled.\n").await;
            return Ok(false);
        };
        if let Err(why) = password::check_policy(&new) {
            ctx.refuse(&refuse!("{why}")).await;
            continue;
        }
        if ctx.host.hasher.verify(&new, &user.phc).await? {
            ctx.refuse(&Refusal::new(
                "The new password must differ from the old one.",
            ))
            .await;
            continue;
        }
        let phc = ctx.host.hasher.hash(&new).await?;
        ctx.host.store.set_password(&user.id, &phc, false).await?;
        ctx.text("Password changed.\n").await;
        return Ok(true);
    }
}

/// The user-name change an operator demanded. Returns false if cancelled.
async fn forced_rename(ctx: &mut CmdCtx, user: &UserRecord) -> crate::Result<bool> {
    loop {
        ctx.text("You must choose a new user name (an empty answer cancels): ")
            .await;
        let Some(name) = ctx
            .next_text()
            .await
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
        else {
            ctx.text("Login cancelled.\n").await;
            return Ok(false);
        };
        if let Err(Fail::Refused(why)) = super::accounts::new_user_name(&name) {
            ctx.refuse(&why).await;
            continue;
        }
        if !ctx.host.store.rename_user(&user.id, &name).await? {
            ctx.refuse(&Refusal::new("That user name is taken.")).await;
            continue;
        }
        super::accounts::announce_rename(ctx, &user.id, &user.name, &name).await?;
        ctx.text(&format!(
            "User name changed from {} to {name}.\n",
            user.name
        ))
        .await;
        return Ok(true);
    }
}
