//! Account commands (COMMANDS.md §3.1) with the changes of §7 items 10–11: changes to your
//! own password, email or user name ask for the current password first; changes to another
//! account need a strictly more powerful rank; a lock or delete ends the user's sessions.

use mrci_proto::{args::Args, constraints};

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Feature, Input, LoggedInClass, Refusal, refuse,
    table::show_table,
    task,
    util::{Outcome, arg, filter_arg, flag_arg, refused, reply, valid},
};
use crate::{
    bus::Event,
    password,
    store::{INITIAL_GROUP_ID, UserRecord},
};

fn def(
    name: &'static str,
    logged_in: LoggedInClass,
    summary: &'static str,
    io: &'static str,
    exec: super::Exec,
) -> CommandDef {
    CommandDef {
        name,
        public: false,
        logged_in,
        gen_file: false,
        feature: None,
        summary,
        io,
        details: "Changing another account needs a host rank strictly more powerful (lower) than the \
                  account's. Changing your own password, email or user name asks for your current password.",
        exec,
    }
}

pub(super) fn commands() -> Vec<CommandDef> {
    use LoggedInClass::{Exempt, Ranked};
    vec![
        CommandDef {
            public: true,
            feature: Some(Feature::Registration),
            ..def(
                "add_acct",
                Ranked,
                "create an account",
                "[-name (text) -email (text) {-disp (text)}]/[text]",
                task!(add_acct_body),
            )
        },
        def(
            "rm_acct",
            Ranked,
            "delete an account",
            "[-name (text) {-force}]/[text]",
            task!(rm_acct),
        ),
        def(
            "lock_acct",
            Ranked,
            "lock or unlock an account",
            "[-user (text) -state (0 or 1)]/[text]",
            reply!(lock_acct_body),
        ),
        def(
            "ls_users",
            Ranked,
            "list accounts",
            "[{-user_name (text)} {-group_name (text)}]/[text]",
            task!(ls_users),
        ),
        def(
            "set_pw",
            Exempt,
            "change your password",
            "[none]/[text]",
            task!(set_pw),
        ),
        def(
            "set_user_name",
            Exempt,
            "change your user name",
            "[-new_name (text)]/[text]",
            task!(set_user_name_body),
        ),
        def(
            "set_disp_name",
            Exempt,
            "change your display name",
            "[-new_name (text)]/[text]",
            task!(set_disp_name_body),
        ),
        def(
            "set_email",
            Exempt,
            "change your email address",
            "[-new_email (text)]/[text]",
            task!(set_email_body),
        ),
        def(
            "force_set_email",
            Ranked,
            "change another user's email address",
            "[-user (text) -new_email (text)]/[text]",
            reply!(force_set_email_body),
        ),
        def(
            "ls_auth_log",
            Ranked,
            "list login attempts",
            "[{-ip_address (text)} {-user_name (text)}]/[text]",
            task!(ls_auth_log),
        ),
        def(
            "ls_act_log",
            Ranked,
            "list session activity by address",
            "[{-ip_address (text)} {-log_entry (text)} {-delete}]/[text]",
            task!(ls_act_log),
        ),
        def(
            "is_email_verified",
            Exempt,
            "show whether your email address is verified",
            "[none]/[text]",
            task!(is_email_verified),
        ),
        def(
            "request_new_pw",
            Ranked,
            "make a user choose a new password at the next login",
            "[-user (text) -req (0 or 1)]/[text]",
            reply!(request_new_pw_body),
        ),
        def(
            "request_new_user_name",
            Ranked,
            "make a user choose a new user name at the next login",
            "[-user (text) -req (0 or 1)]/[text]",
            reply!(request_new_user_name_body),
        ),
    ]
}

/// The password rule plus: no user name, display name or email inside it.
pub(super) fn check_new_password(
    pw: &str,
    name: &str,
    display: &str,
    email: &str,
) -> Result<(), String> {
    password::check_policy(pw)?;
    let lower = pw.to_lowercase();
    for (what, value) in [
        ("user name", name),
        ("display name", display),
        ("email address", email),
    ] {
        if value.chars().count() >= 2 && lower.contains(&value.to_lowercase()) {
            return Err(format!("The password must not contain your {what}."));
        }
    }
    Ok(())
}

/// Another account the caller must outrank (`-user`-style argument `key`).
async fn outranked_user(
    ctx: &CmdCtx,
    args: &Args,
    key: &str,
    caller: u32,
) -> Result<UserRecord, Fail> {
    let name = arg(args, key)?;
    let Some(user) = ctx
        .host
        .store
        .find_user(name)
        .await?
        .filter(|u| u.name.eq_ignore_ascii_case(name))
    else {
        return refused(format!("No user named {name}."));
    };
    if caller >= user.host_rank {
        return refused(format!(
            "{} (rank {}) is not below your rank ({caller}).",
            user.name, user.host_rank
        ));
    }
    Ok(user)
}

/// A name for a new or renamed account: the data constraint, and no `@`, so that a name can
/// never equal an email address (accounts are found by either; COMMANDS.md §3.1).
pub(super) fn new_user_name(name: &str) -> Result<(), Fail> {
    valid(constraints::user_name(name))?;
    if name.contains('@') {
        return refused("A user name cannot look like an email address.");
    }
    Ok(())
}

/// ASYNC_USER_RENAMED (42) to the account's sessions and to the members of its channels
/// (PROTOCOL.md §4.3).
pub(super) async fn announce_rename(
    ctx: &CmdCtx,
    user: &mrci_proto::UserId,
    old: &str,
    new_name: &str,
) -> crate::Result<()> {
    let channels = ctx.host.store.member_channels(user).await?;
    let event = Event::UserRenamed {
        user_id: *user,
        old: old.to_owned(),
        new_name: new_name.to_owned(),
    };
    ctx.host.bus.to_members(&channels, user, event);
    Ok(())
}

/// Ends every session of `user` after telling it why.
fn end_sessions(ctx: &CmdCtx, user: &UserRecord, why: &str) {
    let bus = &ctx.host.bus;
    bus.to_user(
        &user.id,
        Event::SysMsg {
            text: format!("\nsystem: {why}\n"),
            is_err: true,
        },
    );
    bus.to_user(&user.id, Event::EndSession);
}

/// Asks for the caller's current password. False (after telling the client) if it is wrong
/// or the answer was empty.
async fn reauthenticate(ctx: &mut CmdCtx) -> crate::Result<Option<UserRecord>> {
    let Some(me) = ctx.view().user.clone() else {
        return Ok(None);
    };
    let Some(record) = ctx.host.store.user_by_id(&me.user_id).await? else {
        return Ok(None);
    };
    ctx.priv_prompt("Current password: ").await;
    let Some(current) = ctx.next_text().await.filter(|p| !p.is_empty()) else {
        ctx.text("Cancelled.\n").await;
        return Ok(None);
    };
    if !ctx.host.hasher.verify(&current, &record.phc).await? {
        ctx.refuse(&Refusal::new("The current password is wrong."))
            .await;
        return Ok(None);
    }
    Ok(Some(record))
}

/// Prompts for a new password until it passes the rules; `None` if cancelled.
pub(super) async fn prompt_new_password(
    ctx: &mut CmdCtx,
    name: &str,
    display: &str,
    email: &str,
) -> Option<String> {
    loop {
        ctx.priv_prompt("New password (an empty answer cancels): ")
            .await;
        let pw = ctx.next_text().await.filter(|p| !p.is_empty())?;
        match check_new_password(&pw, name, display, email) {
            Ok(()) => return Some(pw),
            Err(why) => ctx.refuse(&refuse!("{why}")).await,
        }
    }
}

async fn add_acct_body(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = input.args;
    let (name, email) = (
        arg(&args, "-name")?.to_owned(),
        arg(&args, "-email")?.to_owned(),
    );
    let disp = args.value("-disp").unwrap_or("").trim().to_owned();
    new_user_name(&name)?;
    valid(constraints::email(&email))?;
    valid(constraints::display_name(&disp))?;
    let store = &ctx.host.store;
    if store.find_user(&name).await?.is_some() || store.find_user(&email).await?.is_some() {
        return refused("That user name or email address is taken.");
    }
    let Some(pw) = prompt_new_password(ctx, &name, &disp, &email).await else {
        ctx.text("Cancelled.\n").await;
        return Ok(());
    };
    let phc = ctx.host.hasher.hash(&pw).await?;
    let store = &ctx.host.store;
    let wanted = ctx.host.settings().accounts.initial_group.clone();
    let group = if wanted.is_empty() {
        let groups = store.list_groups("", "").await?;
        groups.into_iter().find(|g| g.id == INITIAL_GROUP_ID)
    } else {
        store.group(&wanted).await?
    };
    let Some(group) = group else {
        return refused(format!(
            "The initial group {wanted:?} is missing; an operator must set accounts.initial_group to an existing group."
        ));
    };
    let id = match store
        .create_user(&name, Some(&email), &group.name, &phc, false, false)
        .await
    {
        Ok(id) => id,
        Err(crate::Error::Invalid(why)) => return refused(format!("{why}.")),
        Err(e) => return Err(e.into()),
    };
    if !disp.is_empty() {
        store.set_display_name(&id, &disp).await?;
    }
    ctx.text(&format!(
        "Account {name} created in group {}.\n",
        group.name
    ))
    .await;
    Ok(())
}

async fn rm_acct(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let caller = ctx.view().rank();
    let me = ctx.view().user.as_ref().map(|u| u.user_id);
    let name = args.value("-name").unwrap_or("");
    let target = match ctx
        .host
        .store
        .find_user(name)
        .await?
        .filter(|u| u.name.eq_ignore_ascii_case(name))
    {
        Some(u) if Some(u.id) == me || caller < u.host_rank => u,
        Some(u) => {
            return Err(refuse!(
                "{} (rank {}) is not below your rank ({caller}).",
                u.name,
                u.host_rank
            )
            .into());
        }
        None if name.is_empty() => {
            return refused("-name is required.");
        }
        None => {
            return Err(refuse!("No user named {name}.").into());
        }
    };
    if ctx.host.store.owns_a_channel(&target.id).await? {
        return Err(refuse!(
            "{} owns a channel; hand it over or delete it first.",
            target.name
        )
        .into());
    }
    if !args.has("-force") {
        ctx.text(&format!("Delete the account {}? (y/n): ", target.name))
            .await;
        if !ctx
            .next_text()
            .await
            .is_some_and(|a| a.trim().eq_ignore_ascii_case("y"))
        {
            ctx.text("Cancelled.\n").await;
            return Ok(());
        }
    }
    ctx.host.store.delete_user(&target.id).await?;
    ctx.text(&format!("Account {} deleted.\n", target.name))
        .await;
    end_sessions(ctx, &target, "your account was deleted.");
    Ok(())
}

async fn lock_acct_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let state = flag_arg(args, "-state")?;
    let user = outranked_user(ctx, args, "-user", caller).await?;
    ctx.host.store.set_locked(&user.id, state).await?;
    if state {
        end_sessions(ctx, &user, "your account was locked by an administrator.");
    }
    Ok(format!(
        "{} is now {}.\n",
        user.name,
        if state { "locked" } else { "unlocked" }
    ))
}

async fn ls_users(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let users = ctx
        .host
        .store
        .list_users(
            filter_arg(args, "-user_name")?,
            filter_arg(args, "-group_name")?,
        )
        .await?;
    let rows = users
        .into_iter()
        .map(|(t, n, g, r, id)| vec![t.to_string(), n, g, r.to_string(), id])
        .collect();
    show_table(
        ctx,
        &[
            "time_stamp",
            "user_name",
            "group_name",
            "host_rank",
            "user_id",
        ],
        rows,
    )
    .await;
    Ok(())
}

async fn ls_auth_log(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let (ip, user) = (
        filter_arg(args, "-ip_address")?,
        filter_arg(args, "-user_name")?,
    );
    let rows = ctx.host.store.list_auth_log(ip, user).await?;
    let rows = rows
        .into_iter()
        .map(|(t, ip, user, app, ok, why)| vec![t.to_string(), ip, user, app, ok.to_string(), why])
        .collect();
    let header = [
        "time_stamp",
        "ip_address",
        "user_name",
        "app_name",
        "accepted",
        "reason",
    ];
    show_table(ctx, &header, rows).await;
    Ok(())
}

async fn ls_act_log(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let (ip, entry) = (
        filter_arg(args, "-ip_address")?,
        filter_arg(args, "-log_entry")?,
    );
    if args.has("-delete") {
        return delete_act_log(ctx, ip, entry).await;
    }
    let rows = ctx.host.store.list_act_log(ip, entry).await?;
    let rows = rows
        .into_iter()
        .map(|(t, ip, sid, app, e)| vec![t.to_string(), ip, sid, app, e])
        .collect();
    show_table(
        ctx,
        &[
            "time_stamp",
            "ip_address",
            "session_id",
            "app_name",
            "log_entry",
        ],
        rows,
    )
    .await;
    Ok(())
}

/// `ls_act_log -delete`: removes the rows the filters select, after a y/n question.
async fn delete_act_log(ctx: &mut CmdCtx, ip: &str, entry: &str) -> CmdResult {
    let n = ctx.host.store.list_act_log(ip, entry).await?.len();
    if n == 0 {
        ctx.text("No matching rows.\n").await;
        return Ok(());
    }
    ctx.text(&format!("Delete {n} activity log rows? (y/n): "))
        .await;
    if !ctx
        .next_text()
        .await
        .is_some_and(|a| a.trim().eq_ignore_ascii_case("y"))
    {
        ctx.text("Cancelled.\n").await;
        return Ok(());
    }
    let deleted = ctx.host.store.delete_act_log(ip, entry).await?;
    ctx.text(&format!("Deleted {deleted} rows.\n")).await;
    Ok(())
}

async fn set_pw(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let Some(me) = reauthenticate(ctx).await? else {
        return Ok(());
    };
    let Some(pw) = prompt_new_password(ctx, &me.name, &me.display_name, &me.email).await else {
        ctx.text("Cancelled.\n").await;
        return Ok(());
    };
    if ctx.host.hasher.verify(&pw, &me.phc).await? {
        return refused("The new password must differ from the current one.");
    }
    let phc = ctx.host.hasher.hash(&pw).await?;
    ctx.host.store.set_password(&me.id, &phc, false).await?;
    ctx.text("Password changed.\n").await;
    Ok(())
}

async fn set_user_name_body(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = input.args;
    let new_name = arg(&args, "-new_name")?.to_owned();
    new_user_name(&new_name)?;
    let Some(me) = reauthenticate(ctx).await? else {
        return Ok(());
    };
    if !ctx.host.store.rename_user(&me.id, &new_name).await? {
        return refused("That user name is taken.");
    }
    announce_rename(ctx, &me.id, &me.name, &new_name).await?;
    ctx.text(&format!(
        "User name changed from {} to {new_name}.\n",
        me.name
    ))
    .await;
    Ok(())
}

async fn set_disp_name_body(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = input.args;
    let Some(name) = args.value("-new_name").map(str::trim) else {
        return refused("-new_name is required.");
    };
    valid(constraints::display_name(name))?;
    let Some(me) = ctx.view().user.as_ref().map(|u| u.user_id) else {
        return Ok(());
    };
    ctx.host.store.set_display_name(&me, name).await?;
    ctx.host
        .bus
        .to_user(&me, Event::AccountChanged { user_id: me });
    ctx.text(&format!("Display name set to {name:?}.\n")).await;
    Ok(())
}

async fn set_email_body(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = input.args;
    let email = arg(&args, "-new_email")?.to_owned();
    valid(constraints::email(&email))?;
    let Some(me) = reauthenticate(ctx).await? else {
        return Ok(());
    };
    if !ctx.host.store.set_email(&me.id, &email).await? {
        return refused("That email address is used by another account.");
    }
    ctx.host
        .bus
        .to_user(&me.id, Event::AccountChanged { user_id: me.id });
    ctx.text(&format!(
        "Email address set to {email}; it is not verified yet.\n"
    ))
    .await;
    Ok(())
}

async fn force_set_email_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let email = arg(args, "-new_email")?;
    valid(constraints::email(email))?;
    let user = outranked_user(ctx, args, "-user", caller).await?;
    if !ctx.host.store.set_email(&user.id, email).await? {
        return refused("That email address is used by another account.");
    }
    ctx.host
        .bus
        .to_user(&user.id, Event::AccountChanged { user_id: user.id });
    Ok(format!("Email address of {} set to {email}.\n", user.name))
}

async fn is_email_verified(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let verified = ctx.view().user.as_ref().is_some_and(|u| u.email_verified);
    ctx.text(&format!("{verified}\n")).await;
    Ok(())
}

async fn request_new_pw_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    set_flag(ctx, args, caller, true).await
}

async fn request_new_user_name_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    set_flag(ctx, args, caller, false).await
}

async fn set_flag(ctx: &CmdCtx, args: &Args, caller: u32, password: bool) -> Outcome {
    let on = flag_arg(args, "-req")?;
    let user = outranked_user(ctx, args, "-user", caller).await?;
    let store = &ctx.host.store;
    if password {
        store.set_password_required(&user.id, on).await?;
    } else {
        store.set_name_required(&user.id, on).await?;
    }
    let what = if password { "password" } else { "user name" };
    let state = if on {
        "must choose a new"
    } else {
        "no longer has to change the"
    };
    Ok(format!("{} {state} {what} at the next login.\n", user.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_may_not_contain_account_fields() {
        assert!(check_new_password("Sunny-Day-42", "bob", "Bob B.", "bob@example.org").is_ok());
        let why = check_new_password("xBob-Day-42", "bob", "", "").unwrap_err();
        assert!(why.contains("user name"), "{why}");
        assert!(check_new_password("a@b.coX-99", "zed", "", "a@b.co").is_err());
        assert!(check_new_password("short", "zed", "", "").is_err());
    }
}
