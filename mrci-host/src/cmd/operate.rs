//! Operating the host (COMMANDS.md §3.8–3.9, modernised): bans (`add_ban`, `rm_ban`,
//! `ls_bans`), runtime settings (`host_config`), `close_host` and `restart_host`, and the
//! recent warnings and errors (`ls_dbg`).
//!
//! A ban is written first and then sent to every session through the bus; the sessions from
//! a banned address or range are told and end. A runtime setting is stored and then takes
//! effect at once (see `crate::runtime` for which settings may change and which value wins).

use mrci_proto::args::Args;

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input,
    table::show_table,
    task,
    util::{Outcome, arg, filter_arg, refused, reply},
};
use crate::{debug_log, host::Stop, runtime, store::IpNet};

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        CommandDef::ranked(
            "add_ban",
            "ban an IP address or range",
            "[-ip (address or CIDR range)] {-expire_secs (number)} {-reason (text)} {-force}/[text]",
            "Bans an IPv4 or IPv6 address, or a CIDR range such as 203.0.113.0/24, at once: \
             sessions from it are told and closed, and new connections are refused. \
             -expire_secs ends the ban after that many seconds (without it the ban lasts until \
             rm_ban). Banning your own address needs -force.",
            reply!(add_ban),
        ),
        CommandDef::ranked(
            "rm_ban",
            "lift a ban",
            "[-ip (address or CIDR range)]/[text]",
            "Lifts the ban of an address or range, written as it was banned.",
            reply!(rm_ban),
        ),
        CommandDef::ranked(
            "ls_bans",
            "list the banned addresses",
            "[{-ip_address (text)} {-delete}]/[text]",
            "Lists the bans (time_stamp, ip_address, expires_at, reason), optionally only \
             those whose address contains -ip_address. With -delete, lifts the listed bans \
             after a y/n question.",
            task!(ls_bans),
        ),
        CommandDef::ranked(
            "host_config",
            "show and change the host's runtime settings",
            "[{-get (key)} {-set (key=value)} {-unset (key)} {-all}]/[text]",
            "Without arguments, an interactive menu of the settings that can change while the \
             host runs: pick one by number, then type its new value (00 or an empty answer \
             exits). Scriptable forms use the configuration file's dotted names: -get \
             limits.max_sessions, -set limits.max_sessions=500, -unset limits.max_sessions \
             (back to the configuration file's value), -all (every setting). A change takes \
             effect at once, is stored in the database and wins over the configuration file \
             until it is unset.",
            task!(host_config),
        ),
        CommandDef::ranked(
            "close_host",
            "close the host",
            "[none]/[text]",
            "Asks you to type CLOSE. Every session is told, running commands are ended, the \
             database is closed and the host stops.",
            task!(close_host),
        ),
        CommandDef::ranked(
            "restart_host",
            "restart the host",
            "[none]/[text]",
            "Asks you to type RESTART. Every session is told and ended; the host re-reads its \
             configuration and database and listens again without the process exiting.",
            task!(restart_host),
        ),
        CommandDef::ranked(
            "ls_dbg",
            "list the host's recent warnings and errors",
            "[{-log_entry (text)} {-delete}]/[text]",
            "Lists the most recent warnings and errors the host logged (up to 1000), optionally \
             only those containing -log_entry. With -delete, removes the listed entries after a \
             y/n question.",
            task!(ls_dbg),
        ),
    ]
}

/// The `-ip` argument as an address or range.
fn net_arg(args: &Args) -> Result<IpNet, Fail> {
    let ip = arg(args, "-ip")?;
    match IpNet::parse(ip) {
        Ok(net) => Ok(net),
        Err(_) => refused(format!("{ip} is not an IP address or CIDR range.")),
    }
}

async fn add_ban(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let net = net_arg(args)?;
    let expire_secs = match args.u64_opt("-expire_secs") {
        Ok(None) => None,
        Ok(Some(secs)) if secs > 0 && secs <= i64::MAX as u64 / 2 => Some(secs as i64),
        _ => return refused("-expire_secs must be a number of seconds above 0."),
    };
    let reason = filter_arg(args, "-reason")?;
    if net.contains(ctx.view().ip) && !args.has("-force") {
        return refused(format!(
            "{net} holds your own address; add -force to ban it anyway."
        ));
    }
    let expires_at = expire_secs.map(|s| ctx.host.clock.now() + s);
    ctx.host.ban(net, expires_at, reason, false).await?;
    Ok(match expire_secs {
        Some(secs) => format!("Banned {net} for {secs} seconds.\n"),
        None => format!("Banned {net}.\n"),
    })
}

async fn rm_ban(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let net = net_arg(args)?;
    Ok(if ctx.host.store.remove_ban(&net.to_string()).await? {
        tracing::info!(%net, "ban lifted");
        format!("Ban of {net} lifted.\n")
    } else {
        format!("{net} was not banned.\n")
    })
}

async fn ls_bans(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let filter = filter_arg(&input.args, "-ip_address")?.to_owned();
    let bans: Vec<_> = ctx
        .host
        .store
        .bans()
        .await?
        .into_iter()
        .filter(|b| b.ip_address.contains(&filter))
        .collect();
    if input.args.has("-delete") {
        let keys: Vec<String> = bans.into_iter().map(|b| b.ip_address).collect();
        if !confirm_delete(ctx, keys.len(), "bans").await {
            return Ok(());
        }
        let mut lifted = 0;
        for key in &keys {
            lifted += usize::from(ctx.host.store.remove_ban(key).await?);
        }
        ctx.text(&format!("Lifted {lifted} bans.\n")).await;
        return Ok(());
    }
    let rows = bans
        .into_iter()
        .map(|b| {
            vec![
                b.time_stamp.to_string(),
                b.ip_address,
                b.expires_at
                    .map_or_else(|| "never".into(), |t| t.to_string()),
                b.reason,
            ]
        })
        .collect();
    show_table(
        ctx,
        &["time_stamp", "ip_address", "expires_at", "reason"],
        rows,
    )
    .await;
    Ok(())
}

/// Asks before deleting `n` rows; false (and the client told) when there is nothing to
/// delete or the answer is not `y`.
async fn confirm_delete(ctx: &mut CmdCtx, n: usize, what: &str) -> bool {
    if n == 0 {
        ctx.text("No matching rows.\n").await;
        return false;
    }
    ctx.text(&format!("Delete {n} {what}? (y/n): ")).await;
    let yes = ctx
        .next_text()
        .await
        .is_some_and(|a| a.trim().eq_ignore_ascii_case("y"));
    if !yes {
        ctx.text("Cancelled.\n").await;
    }
    yes
}

async fn host_config(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    if let Some(key) = args.value("-get") {
        let value =
            runtime::get(&ctx.host.settings(), key).or_else(|e| refused(format!("{e}.")))?;
        ctx.text(&format!("{key} = {value}\n")).await;
    } else if let Some(pair) = args.value("-set") {
        let Some((key, value)) = pair.split_once('=') else {
            return refused("-set takes key=value, e.g. -set limits.max_sessions=500.");
        };
        let text = set(ctx, key.trim(), Some(value)).await?;
        ctx.text(&text).await;
    } else if let Some(key) = args.value("-unset") {
        let text = set(ctx, key.trim(), None).await?;
        ctx.text(&text).await;
    } else if args.has("-all") {
        let settings = ctx.host.settings();
        let mut out = String::new();
        for (key, value) in runtime::flatten(&settings) {
            let runtime = runtime::RUNTIME_KEYS.contains(&key.as_str());
            out.push_str(&format!(
                "{key} = {value}{}\n",
                if runtime { "" } else { "  (restart to change)" }
            ));
        }
        ctx.big_text(&out).await;
    } else {
        menu(ctx).await?;
    }
    Ok(())
}

/// Changes (or unsets) one runtime setting; the text to show.
async fn set(ctx: &CmdCtx, key: &str, value: Option<&str>) -> Result<String, Fail> {
    let before = runtime::get(&ctx.host.settings(), key).unwrap_or_default();
    match ctx.host.set_setting(key, value).await {
        Ok(now) => Ok(match value {
            Some(_) => format!("{key} = {now} (was {before})\n"),
            None => format!("{key} = {now} (the configuration file's value)\n"),
        }),
        Err(crate::Error::Invalid(why)) => refused(format!("{why}.")),
        Err(e) => Err(e.into()),
    }
}

/// The interactive menu of COMMANDS.md §3.8 over the runtime settings.
async fn menu(ctx: &mut CmdCtx) -> CmdResult {
    loop {
        let settings = ctx.host.settings();
        let stored = ctx.host.store.host_settings().await?;
        let mut out = String::from(
            "Runtime settings (a changed value is stored and wins over the configuration file):\n",
        );
        for (idx, key) in runtime::RUNTIME_KEYS.iter().enumerate() {
            let value = runtime::get(&settings, key).unwrap_or_default();
            let mark = if stored.iter().any(|(k, _)| k == key) {
                "  (changed)"
            } else {
                ""
            };
            out.push_str(&format!("{:02}  {key} = {value}{mark}\n", idx + 1));
        }
        out.push_str(&format!(
            "Database: {}\n00  exit\n",
            ctx.host.config.db_path().display()
        ));
        ctx.big_text(&out).await;
        let key = loop {
            ctx.text("Option number: ").await;
            let Some(answer) = ctx.next_text().await else {
                return Ok(());
            };
            let answer = answer.trim();
            if answer.is_empty() || answer == "00" {
                ctx.text("Done.\n").await;
                return Ok(());
            }
            match answer.parse::<usize>() {
                Ok(n) if (1..=runtime::RUNTIME_KEYS.len()).contains(&n) => {
                    break runtime::RUNTIME_KEYS[n - 1];
                }
                _ => {
                    ctx.refuse(&super::refuse!(
                        "Choose a number from 01 to {:02}, or 00 to exit.",
                        runtime::RUNTIME_KEYS.len()
                    ))
                    .await;
                }
            }
        };
        ctx.text(&format!(
            "New value for {key} (an empty answer returns to the menu): "
        ))
        .await;
        let Some(value) = ctx.next_text().await else {
            return Ok(());
        };
        if value.trim().is_empty() {
            continue;
        }
        match set(ctx, key, Some(&value)).await {
            Ok(text) => ctx.text(&text).await,
            Err(Fail::Refused(why)) => ctx.refuse(&why).await,
            Err(e) => return Err(e),
        }
    }
}

async fn close_host(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    stop_host(ctx, "CLOSE", Stop::Close).await
}

async fn restart_host(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    stop_host(ctx, "RESTART", Stop::Restart).await
}

/// Asks for `word` (an empty answer cancels, anything else asks again), then stops the host.
async fn stop_host(ctx: &mut CmdCtx, word: &str, stop: Stop) -> CmdResult {
    loop {
        ctx.text(&format!(
            "Type {word} to confirm (an empty answer cancels): "
        ))
        .await;
        let Some(answer) = ctx.next_text().await else {
            return Ok(());
        };
        match answer.trim() {
            "" => {
                ctx.text("Cancelled.\n").await;
                return Ok(());
            }
            a if a == word => break,
            _ => {}
        }
    }
    let user = ctx.user_name();
    tracing::info!(%user, ?stop, "stop requested by an operator");
    ctx.text(match stop {
        Stop::Close => "Closing the host.\n",
        Stop::Restart => "Restarting the host.\n",
    })
    .await;
    ctx.host.request_stop(stop);
    Ok(())
}

async fn ls_dbg(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let filter = filter_arg(&input.args, "-log_entry")?.to_owned();
    let entries: Vec<_> = debug_log::entries()
        .into_iter()
        .filter(|e| e.text.contains(&filter))
        .collect();
    if input.args.has("-delete") {
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        if confirm_delete(ctx, seqs.len(), "log entries").await {
            let n = debug_log::remove(&seqs);
            ctx.text(&format!("Deleted {n} log entries.\n")).await;
        }
        return Ok(());
    }
    let rows = entries
        .into_iter()
        .map(|e| vec![e.time_stamp.to_string(), e.level.to_owned(), e.text])
        .collect();
    show_table(ctx, &["time_stamp", "level", "log_entry"], rows).await;
    Ok(())
}
