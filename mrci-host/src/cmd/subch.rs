//! Sub-channel and read-only flag commands (COMMANDS.md §2.2, §2.5, §2.7–2.8, §3.4).

use mrci_proto::{SubChKey, args::Args, async_cmd::AsyncCmd, constraints};

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input, SessionRequest,
    channels::{
        ADMIN, PUBLIC, REGULAR, announce, channel_arg, level, level_arg, need_level, view_level,
    },
    refuse,
    table::show_table,
    task,
    util::{Outcome, arg, flag_arg, refused, reply, valid},
};
use crate::{
    bus::ChEffect,
    session::OpenSub,
    store::{Channel, SubChannel},
};

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
        "Sub-channel names are 4-32 characters without spaces; ids are 0-255. A level \
                  of 5 makes a sub-channel public. At most 6 sub-channels can be open at once.",
        exec,
    )
}

const CH_SUB: &str = "[-ch_name (text) -sub_name (text)]/[text]";

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        def(
            "add_sub_ch",
            "add a sub-channel (level 2 or better)",
            CH_SUB,
            reply!(add_sub_body),
        ),
        def(
            "rm_sub_ch",
            "delete a sub-channel (level 2 or better)",
            CH_SUB,
            reply!(rm_sub_body),
        ),
        def(
            "rename_sub_ch",
            "rename a sub-channel (level 2 or better)",
            "[-ch_name (text) -sub_name (text) -new_name (text)]/[text]",
            reply!(rename_sub_body),
        ),
        def(
            "set_sub_ch_level",
            "set the weakest level that may open a sub-channel (5 = public)",
            "[-ch_name (text) -sub_name (text) -level (1-5)]/[text]",
            reply!(set_sub_level_body),
        ),
        def(
            "set_active_flag",
            "turn presence updates of a sub-channel on or off",
            "[-ch_name (text) -sub_name (text) -state (0 or 1)]/[text]",
            reply!(set_active_body),
        ),
        def(
            "ls_sub_chs",
            "list a channel's sub-channels",
            "[-ch_name (text)]/[text]",
            task!(ls_sub_chs),
        ),
        def(
            "open_sub_ch",
            "open a sub-channel to cast and receive",
            CH_SUB,
            reply!(open_sub_body),
        ),
        def(
            "close_sub_ch",
            "close an open sub-channel",
            CH_SUB,
            reply!(close_sub_body),
        ),
        def(
            "ls_open_chs",
            "list your open sub-channels",
            "[none]/[text]",
            task!(ls_open_chs),
        ),
        def(
            "add_rdonly_flag",
            "make a sub-channel id read-only for a level",
            "[-ch_name (text) -sub_id (0-255) -level (1-5)]/[text]",
            reply!(add_flag_body),
        ),
        def(
            "rm_rdonly_flag",
            "remove a read-only flag",
            "[-ch_name (text) -sub_id (0-255) -level (1-5)]/[text]",
            reply!(rm_flag_body),
        ),
        def(
            "ls_rdonly_flags",
            "list a channel's read-only flags",
            "[-ch_name (text)]/[text]",
            task!(ls_rdonly_flags),
        ),
    ]
}

/// The channel and its sub-channel named by `-ch_name` and `-sub_name`.
async fn sub_arg(ctx: &CmdCtx, args: &Args) -> Result<(Channel, SubChannel), Fail> {
    let sub_name = arg(args, "-sub_name")?;
    valid(constraints::sub_channel_name(sub_name))?;
    let ch = channel_arg(ctx, args).await?;
    match ctx.host.store.sub_channel(ch.id, sub_name).await? {
        Some(sub) => Ok((ch, sub)),
        None => refused(format!("{} has no sub-channel {sub_name}.", ch.name)),
    }
}

fn key(sub: &SubChannel) -> SubChKey {
    SubChKey {
        ch_id: sub.ch_id,
        sub_id: sub.sub_id,
    }
}

async fn add_sub_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let sub_name = arg(args, "-sub_name")?;
    valid(constraints::sub_channel_name(sub_name))?;
    let ch = channel_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, ADMIN, "adding a sub-channel")?;
    let max = ctx.host.settings().channels.max_sub_channels;
    let sub_id = match ctx.host.store.add_sub_channel(ch.id, sub_name, max).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            return refused(format!(
                "{} already has the maximum of {max} sub-channels.",
                ch.name
            ));
        }
        Err(crate::Error::Invalid(_)) => return refused("That sub-channel name is taken."),
        Err(e) => return Err(e.into()),
    };
    let cmd = AsyncCmd::NewSubCh {
        ch_name: ch.name.clone(),
        sub_name: sub_name.to_owned(),
        ch_id: ch.id,
        sub_id,
        level: REGULAR.get(),
    };
    announce(ctx, &cmd, ch.id, None, ChEffect::Forward);
    Ok(format!(
        "Sub-channel {sub_name} added to {} with id {sub_id}.\n",
        ch.name
    ))
}

async fn rm_sub_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let (ch, sub) = sub_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, ADMIN, "deleting a sub-channel")?;
    ctx.host.store.remove_sub_channel(ch.id, sub.sub_id).await?;
    let cmd = AsyncCmd::RmSubCh {
        ch_name: ch.name.clone(),
        sub_name: sub.name.clone(),
        ch_id: ch.id,
        sub_id: sub.sub_id,
    };
    let effect = ChEffect::CloseSub { sub: sub.sub_id };
    announce(ctx, &cmd, ch.id, None, effect);
    Ok(format!("Sub-channel {} deleted.\n", sub.name))
}

async fn rename_sub_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let new_name = arg(args, "-new_name")?;
    valid(constraints::sub_channel_name(new_name))?;
    let (ch, sub) = sub_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, ADMIN, "renaming a sub-channel")?;
    if !ctx
        .host
        .store
        .rename_sub_channel(ch.id, sub.sub_id, new_name)
        .await?
    {
        return refused("That sub-channel name is taken.");
    }
    let cmd = AsyncCmd::RenameSubCh {
        ch_name: ch.name.clone(),
        sub_name: sub.name.clone(),
        new_name: new_name.to_owned(),
        ch_id: Some(ch.id),
        sub_id: Some(sub.sub_id),
    };
    announce(ctx, &cmd, ch.id, None, ChEffect::Forward);
    Ok(format!("Sub-channel {} renamed to {new_name}.\n", sub.name))
}

async fn set_sub_level_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let new_level = level_arg(args, true)?;
    let (ch, sub) = sub_arg(ctx, args).await?;
    need_level(
        level(ctx, ch.id).await?,
        ADMIN,
        "changing a sub-channel's level",
    )?;
    ctx.host
        .store
        .set_sub_channel_level(ch.id, sub.sub_id, new_level)
        .await?;
    let cmd = AsyncCmd::SubChLevelChg {
        ch_name: ch.name.clone(),
        sub_name: sub.name.clone(),
        level: new_level.get(),
        ch_id: ch.id,
        sub_id: sub.sub_id,
    };
    let effect = ChEffect::CloseSub { sub: sub.sub_id };
    announce(ctx, &cmd, ch.id, None, effect);
    Ok(format!(
        "{} now opens for level {new_level} and better.\n",
        sub.name
    ))
}

async fn set_active_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let on = flag_arg(args, "-state")?;
    let (ch, sub) = sub_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, ADMIN, "changing the active flag")?;
    ctx.host
        .store
        .set_sub_channel_active(ch.id, sub.sub_id, on)
        .await?;
    let cmd = AsyncCmd::ChActFlag {
        ch_name: ch.name.clone(),
        sub_name: sub.name.clone(),
        state: on,
        ch_id: Some(ch.id),
        sub_id: Some(sub.sub_id),
    };
    let effect = ChEffect::ActiveFlag {
        sub: sub.sub_id,
        on,
    };
    announce(ctx, &cmd, ch.id, None, effect);
    let mut out = format!(
        "Active updates of {} are {}.\n",
        sub.name,
        if on { "on" } else { "off" }
    );
    if ctx.host.settings().channels.active_updates {
        out.push_str("Note: active updates are on host-wide, so this flag has no effect.\n");
    }
    Ok(out)
}

async fn ls_sub_chs(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let ch = channel_arg(ctx, args).await?;
    let member = level(ctx, ch.id).await? <= REGULAR;
    let rows = ctx
        .host
        .store
        .sub_channels(ch.id)
        .await?
        .into_iter()
        .filter(|s| member || s.lowest_level == PUBLIC)
        .map(|s| {
            vec![
                s.sub_id.to_string(),
                s.name,
                s.lowest_level.to_string(),
                u8::from(s.active_updates).to_string(),
            ]
        })
        .collect();
    let header = [
        "sub_channel_id",
        "sub_channel_name",
        "lowest_access_level",
        "active_updates",
    ];
    show_table(ctx, &header, rows).await;
    Ok(())
}

async fn open_sub_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let (_, sub) = sub_arg(ctx, args).await?;
    let open = plan_open(&ctx.host.store, &ctx.view(), &sub).await?;
    Ok(ctx
        .ask(|reply| SessionRequest::OpenSub { sub: open, reply })
        .await?)
}

/// How the session `view` describes may open `sub` (COMMANDS.md §2.7): refused unless its
/// level is at least the sub-channel's lowest level; writable unless a read-only flag matches
/// that level. Used by `open_sub_ch` and by modules' open requests.
pub(crate) async fn plan_open(
    store: &crate::Store,
    view: &crate::session::SessionView,
    sub: &SubChannel,
) -> Result<OpenSub, Fail> {
    let mine = view_level(store, view, sub.ch_id).await?;
    if mine > sub.lowest_level {
        return Err(refuse!(
            "Access denied: {} opens for level {} and better; yours is {mine}.",
            sub.name,
            sub.lowest_level
        )
        .into());
    }
    let read_only = store.has_rdonly_flag(sub.ch_id, sub.sub_id, mine).await?;
    Ok(OpenSub {
        key: key(sub),
        writable: !read_only,
        active: sub.active_updates,
    })
}

async fn close_sub_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let (_, sub) = sub_arg(ctx, args).await?;
    let key = key(&sub);
    Ok(ctx
        .ask(|reply| SessionRequest::CloseSub { key, reply })
        .await?)
}

async fn ls_open_chs(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let open = ctx.view().open.clone();
    let mut rows = Vec::new();
    for o in open {
        let store = &ctx.host.store;
        let ch_name = store
            .channel_by_id(o.key.ch_id)
            .await?
            .map_or_else(String::new, |c| c.name);
        let sub_name = store
            .sub_channel_by_id(o.key.ch_id, o.key.sub_id)
            .await?
            .map_or_else(String::new, |s| s.name);
        rows.push(vec![
            ch_name,
            sub_name,
            o.key.ch_id.to_string(),
            o.key.sub_id.to_string(),
            u8::from(!o.writable).to_string(),
        ]);
    }
    let header = [
        "channel_name",
        "sub_channel_name",
        "channel_id",
        "sub_channel_id",
        "read_only",
    ];
    show_table(ctx, &header, rows).await;
    Ok(())
}

async fn add_flag_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    flag_body(ctx, args, true).await
}

async fn rm_flag_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    flag_body(ctx, args, false).await
}

async fn flag_body(ctx: &CmdCtx, args: &Args, add: bool) -> Outcome {
    let sub_id = match constraints::sub_channel_id(arg(args, "-sub_id")?) {
        Ok(id) => id,
        Err(e) => return refused(format!("-sub_id: {e}.")),
    };
    let flag_level = level_arg(args, true)?;
    let ch = channel_arg(ctx, args).await?;
    need_level(level(ctx, ch.id).await?, ADMIN, "changing read-only flags")?;
    let store = &ctx.host.store;
    let done = if add {
        store.add_rdonly_flag(ch.id, sub_id, flag_level).await?
    } else {
        store.remove_rdonly_flag(ch.id, sub_id, flag_level).await?
    };
    if !done {
        return refused(if add {
            "That read-only flag exists already."
        } else {
            "There is no such read-only flag."
        });
    }
    let (ch_name, ch_id) = (ch.name.clone(), Some(ch.id));
    let cmd = if add {
        AsyncCmd::AddRdonly {
            ch_name,
            sub_id,
            level: flag_level.get(),
            ch_id,
        }
    } else {
        AsyncCmd::RmRdonly {
            ch_name,
            sub_id,
            level: flag_level.get(),
            ch_id,
        }
    };
    announce(ctx, &cmd, ch.id, None, ChEffect::CloseSub { sub: sub_id });
    Ok(format!(
        "Read-only flag for sub-channel {sub_id} at level {flag_level} {}.\n",
        if add { "added" } else { "removed" }
    ))
}

async fn ls_rdonly_flags(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let ch = channel_arg(ctx, args).await?;
    let member = level(ctx, ch.id).await? <= REGULAR;
    let public: Vec<u8> = ctx
        .host
        .store
        .sub_channels(ch.id)
        .await?
        .into_iter()
        .filter(|s| s.lowest_level == PUBLIC)
        .map(|s| s.sub_id)
        .collect();
    let rows = ctx
        .host
        .store
        .rdonly_flags(ch.id)
        .await?
        .into_iter()
        .filter(|f| member || public.contains(&f.sub_id))
        .map(|f| {
            vec![
                f.channel_name,
                f.ch_id.to_string(),
                f.sub_id.to_string(),
                f.level.to_string(),
            ]
        })
        .collect();
    let header = [
        "channel_name",
        "channel_id",
        "sub_channel_id",
        "access_level",
    ];
    show_table(ctx, &header, rows).await;
    Ok(())
}
