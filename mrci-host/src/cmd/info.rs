//! Information commands: `my_info`, `ls_cmds`, `cmd_info` and `host_info`
//! (COMMANDS.md §3.10).

use std::fmt::Write as _;

use mrci_proto::TypeId;

use super::{CmdCtx, CmdResult, CommandDef, Exec, Input, LoggedInClass, task, util::filter_arg};
use crate::session::{SessionView, render};

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        CommandDef {
            name: "my_info",
            public: true,
            logged_in: LoggedInClass::Exempt,
            gen_file: false,
            feature: None,
            summary: "show information about this session and the logged-in account",
            io: "[none]/[text]",
            details: "Shows the session id, client address and application, and when logged in the \
                      user name, display name, user id, email, group, host rank and flags. \
                      A MY_INFO frame with the same facts goes out on the system-message channel.",
            exec: Exec::Local(my_info),
        },
        CommandDef {
            name: "ls_cmds",
            public: true,
            logged_in: LoggedInClass::Exempt,
            gen_file: false,
            feature: None,
            summary: "list the commands this session may run",
            io: "[{-find (text)}]/[text]",
            details: "Lists command id, name and summary sorted by name. -find keeps only the \
                      commands whose name contains the given text (case-insensitive).",
            exec: task!(ls_cmds),
        },
        CommandDef {
            name: "cmd_info",
            public: true,
            logged_in: LoggedInClass::Exempt,
            gen_file: false,
            feature: None,
            summary: "show the help of one command",
            io: "[-cmd_name (text) or -cmd_id (int)]/[text]",
            details: "Shows a command's name, id, whether it handles file transfers, its \
                      input/output line, summary and details.",
            exec: task!(cmd_info),
        },
        CommandDef {
            name: "host_info",
            public: false,
            logged_in: LoggedInClass::Ranked,
            gen_file: false,
            feature: None,
            summary: "show the host's version, load and address",
            io: "[none]/[text]",
            details: "Shows the host version, operating system, machine name, the number of \
                      sessions against the maximum, and the listen address.",
            exec: task!(host_info),
        },
    ]
}

/// `my_info`: a MY_INFO frame and the same facts as TEXT, from the session's view alone.
fn my_info(view: &SessionView) -> Vec<(TypeId, bytes::Bytes)> {
    vec![
        (TypeId::MY_INFO, render::my_info_payload(view)),
        (
            TypeId::TEXT,
            bytes::Bytes::from(mrci_proto::text::encode(&describe_session(view))),
        ),
    ]
}

/// The text `my_info` prints.
pub(crate) fn describe_session(view: &SessionView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Session id:     {}", view.sid.to_hex());
    let _ = writeln!(out, "IP address:     {}", view.ip);
    let _ = writeln!(out, "App name:       {}", view.app);
    let _ = writeln!(out, "Encrypted:      {}", view.tls);
    let _ = writeln!(out, "Logged in:      {}", view.user.is_some());
    if let Some(user) = &view.user {
        let _ = writeln!(out, "User name:      {}", user.user_name);
        let _ = writeln!(out, "Display name:   {}", user.display_name);
        let _ = writeln!(out, "User id:        {}", user.user_id.to_hex());
        let _ = writeln!(out, "Email:          {}", user.email);
        let _ = writeln!(out, "Email verified: {}", user.email_verified);
        let _ = writeln!(out, "Group:          {}", user.group_name);
        let _ = writeln!(out, "Host rank:      {}", user.host_rank);
        let _ = writeln!(out, "Owner override: {}", view.owner_override);
    }
    out
}

async fn ls_cmds(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let find = filter_arg(args, "-find")?.to_lowercase();
    let view = ctx.view();
    let mut rows: Vec<_> = view
        .commands
        .iter()
        .filter(|c| c.name.to_lowercase().contains(&find))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let width = rows.iter().map(|c| c.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:<6} {:<width$} summary\n", "id", "name");
    for c in rows {
        let _ = writeln!(out, "{:<6} {:<width$} {}", c.id.0, c.name, c.def.summary());
    }
    ctx.big_text(&out).await;
    Ok(())
}

async fn cmd_info(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let view = ctx.view();
    let found = if let Some(name) = args.value("-cmd_name") {
        view.commands
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    } else if args.value("-cmd_id").is_some() {
        let Ok(Some(id)) = args.u64_opt("-cmd_id") else {
            return super::util::refused("-cmd_id must be an integer.");
        };
        view.commands.iter().find(|c| u64::from(c.id.0) == id)
    } else {
        return super::util::refused("Give -cmd_name or -cmd_id.");
    };
    let Some(c) = found else {
        return super::util::refused("No such command.");
    };
    let text = format!(
        "Name:      {}\nId:        {}\nGen file:  {}\nIO:        {}\nSummary:   {}\n\n{}\n",
        c.name,
        c.id.0,
        c.def.gen_file(),
        c.def.io(),
        c.def.summary(),
        c.def.details()
    );
    ctx.big_text(&text).await;
    Ok(())
}

async fn host_info(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let host = &ctx.host;
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let text = format!(
        "Application:  {}\nOS:           {} ({})\nMachine:      {}\nLoad:         {}/{} sessions\nListening on: {}\nDropped:      {} casts and messages to receivers that fell behind\n",
        crate::host::library_name(),
        std::env::consts::OS,
        std::env::consts::ARCH,
        machine,
        host.session_count(),
        host.settings().limits.max_sessions,
        host.config.listen,
        host.bus.stats().dropped,
    );
    ctx.text(&text).await;
    Ok(())
}
