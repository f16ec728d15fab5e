//! Channel commands (COMMANDS.md §2.1–2.6, §3.3): create, delete, rename, find and list
//! channels; invites; members and their levels; the owner override.
//!
//! Every change is written to the store first and then announced through the bus as the seed
//! TEXT async command, with the effect the receiving sessions apply (`bus::ChEffect`).

use mrci_proto::{ChLevel, UserId, args::Args, async_cmd::AsyncCmd, constraints};

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input, SessionRequest, refuse,
    table::show_table,
    task,
    util::{Outcome, arg, filter_arg, flag_arg, refused, reply, valid},
};
use crate::{
    bus::{ChEffect, Event},
    store::{Channel, UserRecord},
};

/// Member levels (COMMANDS.md §2.3).
pub(super) const OWNER: ChLevel = ChLevel::OWNER;
pub(super) const ADMIN: ChLevel = ChLevel::ADMIN;
pub(super) const OFFICER: ChLevel = ChLevel::OFFICER;
pub(super) const REGULAR: ChLevel = ChLevel::REGULAR;
pub(super) const PUBLIC: ChLevel = ChLevel::PUBLIC;

fn def(
    name: &'static str,
    summary: &'static str,
    io: &'static str,
    exec: super::Exec,
) -> CommandDef {
    CommandDef::ranked(
        name,
        summary,
        io,
        "Member levels: 1 owner, 2 admin, 3 officer, 4 regular, 5 not a member. \
                  Channel names are 4-32 characters without spaces.",
        exec,
    )
}

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        def(
            "add_ch",
            "create a channel you own",
            "[-ch_name (text)]/[text]",
            reply!(add_ch_body),
        ),
        def(
            "rm_ch",
            "delete a channel you own",
            "[-ch_name (text)]/[text]",
            reply!(rm_ch_body),
        ),
        def(
            "rename_ch",
            "rename a channel you own",
            "[-ch_name (text) -new_name (text)]/[text]",
            reply!(rename_ch_body),
        ),
        def(
            "find_ch",
            "search channels by name or id",
            "[{-name (text)} {-id (int)}]/[text]",
            task!(find_ch),
        ),
        def(
            "ls_chs",
            "list your channels and invites",
            "[none]/[text]",
            task!(ls_chs),
        ),
        def(
            "invite_to_ch",
            "invite a user to a channel (level 3 or better)",
            "[-ch_name (text) -user (text)]/[text]",
            reply!(invite_body),
        ),
        def(
            "accept_ch",
            "accept an invite",
            "[-ch_name (text)]/[text]",
            reply!(accept_body),
        ),
        def(
            "decline_ch",
            "decline an invite",
            "[-ch_name (text)]/[text]",
            reply!(decline_body),
        ),
        def(
            "remove_ch_member",
            "remove a member or cancel an invite; your own name leaves the channel",
            "[-ch_name (text) -user (text)]/[text]",
            reply!(remove_member_body),
        ),
        def(
            "set_member_level",
            "change a member's level; level 1 hands over ownership",
            "[-ch_name (text) -user (text) -level (1-4)]/[text]",
            reply!(set_level_body),
        ),
        def(
            "ls_ch_members",
            "list a channel's members and invites",
            "[-ch_name (text) {-user_name (text)} {-disp_name (text)}]/[text]",
            task!(ls_ch_members),
        ),
        def(
            "ch_owner_override",
            "act as the owner of every channel in this session",
            "[-state (0 or 1)]/[text]",
            reply!(override_body),
        ),
    ]
}

/// The caller's level in channel `ch`: owner with the override, 5 without a membership.
pub(super) async fn level(ctx: &CmdCtx, ch: u64) -> crate::Result<ChLevel> {
    view_level(&ctx.host.store, &ctx.view(), ch).await
}

/// The level in channel `ch` of the session `view` describes.
pub(crate) async fn view_level(
    store: &crate::Store,
    view: &crate::session::SessionView,
    ch: u64,
) -> crate::Result<ChLevel> {
    if view.owner_override {
        return Ok(OWNER);
    }
    let Some(user) = &view.user else {
        return Ok(PUBLIC);
    };
    Ok(match store.membership(ch, &user.user_id).await? {
        Some((level, false)) => level,
        _ => PUBLIC,
    })
}

/// The channel named by the `-ch_name` argument.
pub(super) async fn channel_arg(ctx: &CmdCtx, args: &Args) -> Result<Channel, Fail> {
    let name = arg(args, "-ch_name")?;
    valid(constraints::channel_name(name))?;
    match ctx.host.store.channel(name).await? {
        Some(ch) => Ok(ch),
        None => refused(format!("No channel named {name}.")),
    }
}

/// The account named by the `-user` argument.
async fn user_arg(ctx: &CmdCtx, args: &Args) -> Result<UserRecord, Fail> {
    let name = arg(args, "-user")?;
    valid(constraints::user_name(name))?;
    match ctx
        .host
        .store
        .find_user(name)
        .await?
        .filter(|u| u.name.eq_ignore_ascii_case(name))
    {
        Some(user) => Ok(user),
        None => refused(format!("No user named {name}.")),
    }
}

/// A `-level` argument: a member level (1-4), or any level (1-5) with `include_public`;
/// plain decimal digits only (no sign).
pub(super) fn level_arg(args: &Args, include_public: bool) -> Result<ChLevel, Fail> {
    let text = arg(args, "-level")?;
    ChLevel::parse(text, include_public).map_err(|e| refuse!("-level: {e}.").into())
}

/// Requires a level at least as powerful as `needed`.
pub(super) fn need_level(have: ChLevel, needed: ChLevel, what: &str) -> Result<(), Fail> {
    if have.at_least(needed) {
        Ok(())
    } else {
        refused(format!(
            "Access denied: {what} needs channel level {needed} or better; yours is {have}."
        ))
    }
}

/// Announces a channel event to the sessions the bus routes it to.
pub(super) fn announce(
    ctx: &CmdCtx,
    cmd: &AsyncCmd,
    ch: u64,
    user: Option<&UserId>,
    effect: ChEffect,
) {
    let event = Event::Channel {
        id: cmd.id(),
        text: mrci_proto::text::decode(&cmd.to_bytes()),
        ch,
        effect,
    };
    ctx.host.bus.to_channel(ch, user, event);
}

fn me(ctx: &CmdCtx) -> Result<(UserId, String), Fail> {
    match &ctx.view().user {
        Some(u) => Ok((u.user_id, u.user_name.clone())),
        None => refused("You are not logged in."),
    }
}

async fn add_ch_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let name = arg(args, "-ch_name")?;
    valid(constraints::channel_name(name))?;
    let (uid, uname) = me(ctx)?;
    let max = ctx.host.settings().channels.max_channels_per_user;
    let id = match ctx.host.store.add_channel(name, &uid, max).await {
        Ok(Some(id)) => id,
        Ok(None) => return refused(format!("You are already in {max} channels.")),
        Err(crate::Error::Invalid(_)) => return refused("That channel name is taken."),
        Err(e) => return Err(e.into()),
    };
    let cmd = AsyncCmd::NewChMember {
        user: uname,
        ch_name: name.to_owned(),
        ch_id: id,
        level: OWNER.get(),
    };
    announce(ctx, &cmd, id, Some(&uid), ChEffect::Joined { user: uid });
    Ok(format!("Channel {name} created with id {id}.\n"))
}

async fn rm_ch_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let ch = channel_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, OWNER, "deleting a channel")?;
    ctx.host.store.remove_channel(ch.id).await?;
    let cmd = AsyncCmd::DelCh {
        ch_name: ch.name.clone(),
        ch_id: ch.id,
    };
    announce(ctx, &cmd, ch.id, None, ChEffect::Deleted);
    Ok(format!("Channel {} deleted.\n", ch.name))
}

async fn rename_ch_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let new_name = arg(args, "-new_name")?;
    valid(constraints::channel_name(new_name))?;
    let ch = channel_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, OWNER, "renaming a channel")?;
    if !ctx.host.store.rename_channel(ch.id, new_name).await? {
        return refused("That channel name is taken.");
    }
    let cmd = AsyncCmd::RenameCh {
        ch_name: ch.name.clone(),
        new_name: new_name.to_owned(),
        ch_id: Some(ch.id),
    };
    announce(ctx, &cmd, ch.id, None, ChEffect::Forward);
    Ok(format!("Channel {} renamed to {new_name}.\n", ch.name))
}

async fn find_ch(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let id = match args.value("-id").map(constraints::channel_id) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => {
            return Err(refuse!("-id: {e}.").into());
        }
    };
    let name = filter_arg(args, "-name")?;
    let rows = ctx
        .host
        .store
        .find_channels(name, id)
        .await?
        .into_iter()
        .map(|c| vec![c.id.to_string(), c.name])
        .collect();
    show_table(ctx, &["channel_id", "channel_name"], rows).await;
    Ok(())
}

async fn ls_chs(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let Some(uid) = ctx.view().user.as_ref().map(|u| u.user_id) else {
        return Ok(());
    };
    let rows = ctx
        .host
        .store
        .user_channel_rows(&uid)
        .await?
        .into_iter()
        .map(|r| {
            vec![
                r.ch_id.to_string(),
                r.channel_name,
                u8::from(r.pending).to_string(),
                r.level.to_string(),
            ]
        })
        .collect();
    let header = [
        "channel_id",
        "channel_name",
        "pending_invite",
        "access_level",
    ];
    show_table(ctx, &header, rows).await;
    Ok(())
}

async fn invite_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let ch = channel_arg(ctx, args).await?;
    let user = user_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, OFFICER, "inviting")?;
    match ctx.host.store.membership(ch.id, &user.id).await? {
        Some((_, true)) => return refused(format!("{} is already invited.", user.name)),
        Some((_, false)) => return refused(format!("{} is already a member.", user.name)),
        None => {}
    }
    if !ctx.host.store.invite(ch.id, &user.id).await? {
        return refused(format!("{} is already invited.", user.name));
    }
    let cmd = AsyncCmd::InvitedToCh {
        ch_name: ch.name.clone(),
        user: user.name.clone(),
        ch_id: Some(ch.id),
    };
    announce(ctx, &cmd, ch.id, Some(&user.id), ChEffect::Forward);
    Ok(format!("{} is invited to {}.\n", user.name, ch.name))
}

async fn accept_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let ch = channel_arg(ctx, args).await?;
    let (uid, uname) = me(ctx)?;
    if !ctx.host.store.accept_invite(ch.id, &uid).await? {
        return refused(format!("You have no invite to {}.", ch.name));
    }
    let cmd = AsyncCmd::InviteAccepted {
        ch_name: ch.name.clone(),
        user: uname,
        ch_id: Some(ch.id),
    };
    announce(ctx, &cmd, ch.id, Some(&uid), ChEffect::Joined { user: uid });
    Ok(format!("You joined {} as a regular member.\n", ch.name))
}

async fn decline_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let ch = channel_arg(ctx, args).await?;
    let (uid, uname) = me(ctx)?;
    if ctx.host.store.membership(ch.id, &uid).await? != Some((REGULAR, true))
        || !ctx.host.store.remove_member(ch.id, &uid).await?
    {
        return refused(format!("You have no invite to {}.", ch.name));
    }
    let cmd = AsyncCmd::RmChMember {
        ch_name: ch.name.clone(),
        user: uname,
        ch_id: ch.id,
    };
    announce(ctx, &cmd, ch.id, Some(&uid), ChEffect::Left { user: uid });
    Ok(format!("Invite to {} declined.\n", ch.name))
}

async fn remove_member_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let ch = channel_arg(ctx, args).await?;
    let user = user_arg(ctx, args).await?;
    let mine = level(ctx, ch.id).await?;
    let (uid, _) = me(ctx)?;
    let target = ctx.host.store.membership(ch.id, &user.id).await?;
    if user.id == uid {
        let own = target.filter(|(_, pending)| !pending).map(|(l, _)| l);
        match own {
            Some(OWNER) => {
                return refused("The owner cannot leave; hand ownership over first.");
            }
            Some(_) => {}
            None => return refused(format!("You are not a member of {}.", ch.name)),
        }
    } else {
        match target {
            None => {
                return refused(format!("{} is not a member of {}.", user.name, ch.name));
            }
            Some((_, true)) => need_level(mine, OFFICER, "cancelling an invite")?,
            Some((their, false)) if mine < their => {}
            Some((their, false)) => {
                return refused(format!(
                    "Access denied: {} has level {their}; yours is {mine}.",
                    user.name
                ));
            }
        }
    }
    ctx.host.store.remove_member(ch.id, &user.id).await?;
    let cmd = AsyncCmd::RmChMember {
        ch_name: ch.name.clone(),
        user: user.name.clone(),
        ch_id: ch.id,
    };
    announce(
        ctx,
        &cmd,
        ch.id,
        Some(&user.id),
        ChEffect::Left { user: user.id },
    );
    Ok(format!("{} removed from {}.\n", user.name, ch.name))
}

async fn set_level_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let ch = channel_arg(ctx, args).await?;
    let user = user_arg(ctx, args).await?;
    let new_level = level_arg(args, false)?;
    let mine = level(ctx, ch.id).await?;
    let Some((theirs, false)) = ctx.host.store.membership(ch.id, &user.id).await? else {
        return refused(format!("{} is not a member of {}.", user.name, ch.name));
    };
    // COMMANDS.md §2.3: new_level >= my_level and target_level > my_level.
    if new_level < mine || theirs <= mine {
        return refused(format!(
            "Access denied: with level {mine} you cannot set {} (level {theirs}) to {new_level}.",
            user.name
        ));
    }
    let previous_owner = ctx
        .host
        .store
        .set_member_level(ch.id, &user.id, new_level)
        .await?;
    let changed = |name: String, level: ChLevel| AsyncCmd::MemLevelChanged {
        ch_name: ch.name.clone(),
        user: name,
        ch_id: ch.id,
        level: level.get(),
    };
    announce(
        ctx,
        &changed(user.name.clone(), new_level),
        ch.id,
        Some(&user.id),
        ChEffect::LevelChanged { user: user.id },
    );
    if let Some(prev) = previous_owner {
        let name = ctx
            .host
            .store
            .user_by_id(&prev)
            .await?
            .map_or_else(String::new, |u| u.name);
        announce(
            ctx,
            &changed(name, ADMIN),
            ch.id,
            Some(&prev),
            ChEffect::LevelChanged { user: prev },
        );
    }
    Ok(format!(
        "{} now has level {new_level} in {}.\n",
        user.name, ch.name
    ))
}

async fn ls_ch_members(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let ch = channel_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, REGULAR, "listing members")?;
    let rows = ctx
        .host
        .store
        .members(
            ch.id,
            filter_arg(args, "-user_name")?,
            filter_arg(args, "-disp_name")?,
        )
        .await?
        .into_iter()
        .map(|m| {
            vec![
                ch.id.to_string(),
                m.user_name,
                m.display_name,
                u8::from(m.pending).to_string(),
                m.level.to_string(),
            ]
        })
        .collect();
    let header = [
        "channel_id",
        "user_name",
        "display_name",
        "pending_invite",
        "access_level",
    ];
    show_table(ctx, &header, rows).await;
    Ok(())
}

async fn override_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let on = flag_arg(args, "-state")?;
    ctx.request(SessionRequest::OwnerOverride(on)).await;
    Ok(if on {
        "Owner override on: you act as the owner of every channel in this session.\n".into()
    } else {
        "Owner override off.\n".into()
    })
}
