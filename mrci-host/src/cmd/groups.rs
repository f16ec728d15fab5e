//! Group and command-rank commands (COMMANDS.md §3.2) under the rank rule of §1.5: changing
//! another account or a group needs `caller_rank < target_rank`, and any rank or group given
//! must leave the result at `>= caller_rank`. Every change is written to the store first,
//! then announced on the bus (seed async ids 9, 11, 12, 13, 17).

use mrci_proto::{args::Args, constraints};

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input,
    table::show_table,
    task,
    util::{Outcome, arg, broadcast, filter_arg, rank_arg, refused, reply, valid},
};
use crate::{
    bus::{Event, GroupChange},
    store::{Group, INTERNAL_MODULE},
};

fn ranked(
    name: &'static str,
    summary: &'static str,
    io: &'static str,
    exec: super::Exec,
) -> CommandDef {
    CommandDef::ranked(
        name,
        summary,
        io,
        "Changing a group or another account needs a host rank strictly more powerful (lower) than \
                  the target's, and a rank or group you assign cannot be more powerful than your own.",
        exec,
    )
}

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        ranked(
            "ls_groups",
            "list groups and their host ranks",
            "[{-group_name (text)} {-host_rank (text)}]/[text]",
            task!(ls_groups),
        ),
        ranked(
            "add_group",
            "create a group (host rank 2 unless -rank is given)",
            "[-name (text) {-rank (int)}]/[text]",
            reply!(add_group_body),
        ),
        ranked(
            "rm_group",
            "delete an empty group",
            "[-name (text)]/[text]",
            reply!(rm_group_body),
        ),
        ranked(
            "rename_group",
            "rename a group",
            "[-name (text) -new_name (text)]/[text]",
            reply!(rename_group_body),
        ),
        ranked(
            "set_group",
            "move a user into a group",
            "[-user (text) -group (text)]/[text]",
            reply!(set_group_body),
        ),
        ranked(
            "set_group_rank",
            "change a group's host rank",
            "[-name (text) -rank (int)]/[text]",
            reply!(set_group_rank_body),
        ),
        ranked(
            "trans_group",
            "move every member of one group into another",
            "[-src (text) -dst (text)]/[text]",
            reply!(trans_group_body),
        ),
        ranked(
            "add_ranked_cmd",
            "set the host rank a command needs",
            "[-command (text) -rank (int) {-mod (text)}]/[text]",
            reply!(add_ranked_cmd_body),
        ),
        ranked(
            "rm_ranked_cmd",
            "remove a command's rank (it falls back to rank 1)",
            "[-command (text) {-mod (text)}]/[text]",
            reply!(rm_ranked_cmd_body),
        ),
        ranked(
            "ls_ranked_cmds",
            "list command ranks",
            "[{-module (text)} {-command_name (text)}]/[text]",
            task!(ls_ranked_cmds),
        ),
    ]
}

/// Looks up a group the caller must outrank.
async fn outranked_group(ctx: &CmdCtx, name: &str, caller: u32) -> Result<Group, Fail> {
    valid(constraints::group_name(name))?;
    let Some(group) = ctx.host.store.group(name).await? else {
        return refused(format!("No group named {name}."));
    };
    if caller >= group.host_rank {
        return refused(format!(
            "{} (rank {}) is not below your rank ({caller}).",
            group.name, group.host_rank
        ));
    }
    Ok(group)
}

async fn ls_groups(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let groups = ctx
        .host
        .store
        .list_groups(
            filter_arg(args, "-group_name")?,
            filter_arg(args, "-host_rank")?,
        )
        .await?;
    let rows = groups
        .into_iter()
        .map(|g| vec![g.name, g.host_rank.to_string()])
        .collect();
    show_table(ctx, &["group_name", "host_rank"], rows).await;
    Ok(())
}

async fn add_group_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let name = arg(args, "-name")?;
    valid(constraints::group_name(name))?;
    let rank = if args.has("-rank") {
        rank_arg(args, "-rank", caller)?
    } else {
        2.max(caller)
    };
    ctx.host
        .store
        .add_group(name, rank)
        .await
        .map_err(Fail::from_store)?;
    Ok(format!("Group {name} created with host rank {rank}.\n"))
}

/// True if `group` is the one `accounts.initial_group` names.
fn is_initial(ctx: &CmdCtx, group: &Group) -> bool {
    let initial = &ctx.host.settings().accounts.initial_group;
    !initial.is_empty() && initial.eq_ignore_ascii_case(&group.name)
}

async fn rm_group_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let group = outranked_group(ctx, arg(args, "-name")?, caller).await?;
    if is_initial(ctx, &group) {
        return refused(format!(
            "{} is the group new accounts join (accounts.initial_group); choose another with host_config first.",
            group.name
        ));
    }
    ctx.host
        .store
        .remove_group(&group)
        .await
        .map_err(Fail::from_store)?;
    Ok(format!("Group {} removed.\n", group.name))
}

async fn rename_group_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let (name, new_name) = (arg(args, "-name")?, arg(args, "-new_name")?);
    valid(constraints::group_name(new_name))?;
    let group = outranked_group(ctx, name, caller).await?;
    let initial = is_initial(ctx, &group);
    ctx.host
        .store
        .rename_group(&group, new_name)
        .await
        .map_err(Fail::from_store)?;
    if initial {
        // New accounts keep joining the same group under its new name.
        ctx.host
            .set_setting("accounts.initial_group", Some(new_name))
            .await?;
    }
    broadcast(
        ctx,
        Event::Group {
            group: group.name.clone(),
            change: GroupChange::Renamed(new_name.to_owned()),
        },
    );
    Ok(format!("Group {} renamed to {new_name}.\n", group.name))
}

async fn set_group_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let (user, group) = (arg(args, "-user")?, arg(args, "-group")?);
    let store = &ctx.host.store;
    let Some(target) = store
        .find_user(user)
        .await?
        .filter(|u| u.name.eq_ignore_ascii_case(user))
    else {
        return refused(format!("No user named {user}."));
    };
    let is_self = ctx
        .view()
        .user
        .as_ref()
        .is_some_and(|u| u.user_id == target.id);
    if !is_self && caller >= target.host_rank {
        return refused(format!(
            "{} (rank {}) is not below your rank ({caller}).",
            target.name, target.host_rank
        ));
    }
    let Some(dst) = store.group(group).await? else {
        return refused(format!("No group named {group}."));
    };
    if dst.host_rank < caller {
        return refused(format!(
            "{} (rank {}) is more powerful than your rank ({caller}).",
            dst.name, dst.host_rank
        ));
    }
    store.set_group_by_name(&target.name, &dst.name).await?;
    ctx.host
        .bus
        .to_user(&target.id, Event::AccountChanged { user_id: target.id });
    Ok(format!(
        "{} is now in group {} (host rank {}).\n",
        target.name, dst.name, dst.host_rank
    ))
}

async fn set_group_rank_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let name = arg(args, "-name")?;
    let rank = rank_arg(args, "-rank", caller)?;
    let group = outranked_group(ctx, name, caller).await?;
    ctx.host.store.set_group_rank(&group, rank).await?;
    broadcast(
        ctx,
        Event::Group {
            group: group.name.clone(),
            change: GroupChange::Reranked(rank),
        },
    );
    Ok(format!("Group {} now has host rank {rank}.\n", group.name))
}

async fn trans_group_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let (src, dst) = (arg(args, "-src")?, arg(args, "-dst")?);
    let src = outranked_group(ctx, src, caller).await?;
    let dst = outranked_group(ctx, dst, caller).await?;
    if src.id == dst.id {
        return refused("-src and -dst are the same group.");
    }
    let n = ctx.host.store.transfer_group(&src, &dst).await?;
    broadcast(
        ctx,
        Event::Group {
            group: src.name.clone(),
            change: GroupChange::Transferred(dst.name.clone()),
        },
    );
    Ok(format!(
        "Moved {n} users from {} to {}.\n",
        src.name, dst.name
    ))
}

/// The module a rank row belongs to: `-mod PATH`, or the host's internal commands.
fn module_arg(args: &Args) -> Result<String, Fail> {
    match args.value("-mod") {
        None => Ok(INTERNAL_MODULE.to_owned()),
        Some(path) => valid(constraints::module_path(path)).map(|()| path.to_owned()),
    }
}

async fn add_ranked_cmd_body(ctx: &CmdCtx, args: &Args, caller: u32) -> Outcome {
    let command = arg(args, "-command")?.to_lowercase();
    let rank = rank_arg(args, "-rank", caller)?;
    let module = module_arg(args)?;
    valid(constraints::command_name(&command))?;
    if !ctx
        .host
        .store
        .add_command_rank(&module, &command, rank)
        .await?
    {
        return refused(format!(
            "{command} already has a rank; remove it first with rm_ranked_cmd."
        ));
    }
    ctx.host.bus.broadcast(None, false, Event::CmdRanksChanged);
    Ok(format!("{command} now needs host rank {rank}.\n"))
}

async fn rm_ranked_cmd_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let command = arg(args, "-command")?.to_lowercase();
    let module = module_arg(args)?;
    if !ctx
        .host
        .store
        .remove_command_rank(&module, &command)
        .await?
    {
        return refused(format!("{command} has no rank assigned."));
    }
    ctx.host.bus.broadcast(None, false, Event::CmdRanksChanged);
    Ok(format!("{command} falls back to host rank 1.\n"))
}

async fn ls_ranked_cmds(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let rows = ctx
        .host
        .store
        .list_command_ranks(
            filter_arg(args, "-module")?,
            filter_arg(args, "-command_name")?,
        )
        .await?;
    let rows = rows
        .into_iter()
        .map(|(m, c, r)| vec![m, c, r.to_string()])
        .collect();
    show_table(ctx, &["module", "command_name", "host_rank"], rows).await;
    Ok(())
}
