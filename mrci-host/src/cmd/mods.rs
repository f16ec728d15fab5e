//! Module administration (COMMANDS.md §3.6, 72d57a0 form): `add_mod`, `rm_mod`, `ls_mods`.
//!
//! A module is registered by the path of its executable. Adding lists it at once (a module
//! that cannot be listed is refused with the reason) and tells every session to recompute
//! its command set (ASYNC_ENABLE_MOD); removing stops its running commands in every session
//! (ASYNC_DISABLE_MOD). Both are announced to clients as ADD_CMD / RM_CMD differences.
//! `-listing once` registers a module whose list never depends on the session (listed once,
//! host-wide); the default, `session`, has every session list it (seed 001).

use mrci_proto::{args::Args, constraints};

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input,
    table::show_table,
    task,
    util::{Outcome, arg, broadcast, refused, reply, valid},
};
use crate::{bus::Event, modules::Listing};

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
        "Modules are executables that add commands (see the module author API). A \
                  path is at most 512 characters and contains none of | * : \" ? < >.",
        exec,
    )
}

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        def(
            "add_mod",
            "add a module executable and load its commands",
            "[-mod_path (path)] {-listing (session|once)}/[text]",
            reply!(add_mod_body),
        ),
        def(
            "rm_mod",
            "remove a module and unload its commands",
            "[-mod_path (path)]/[text]",
            reply!(rm_mod_body),
        ),
        def(
            "ls_mods",
            "list the modules",
            "[none]/[text]",
            task!(ls_mods),
        ),
    ]
}

/// The `-mod_path` argument, checked and made absolute.
fn path_arg(args: &Args) -> Result<std::path::PathBuf, Fail> {
    let path = arg(args, "-mod_path")?;
    valid(constraints::module_path(path))?;
    match std::fs::canonicalize(path) {
        Ok(path) => Ok(path),
        Err(e) => refused(format!("{path}: {e}.")),
    }
}

async fn add_mod_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let listing = match args.value("-listing") {
        None => Listing::Session,
        Some(text) => match Listing::parse(text) {
            Some(listing) => listing,
            None => return refused("-listing is session or once."),
        },
    };
    let path = path_arg(args)?;
    if ctx.host.modules.contains(&path) {
        return refused(format!("{} is already loaded.", path.display()));
    }
    let module = match ctx.host.modules.add(&path, listing).await {
        Ok(module) => module,
        Err(crate::Error::Invalid(why)) => return refused(format!("{why}.")),
        Err(e) => return Err(e.into()),
    };
    ctx.host
        .store
        .add_module(&path.to_string_lossy(), listing.as_str())
        .await?;
    broadcast(ctx, Event::ModulesChanged);
    Ok(match listing {
        Listing::Once => format!(
            "Module {} added with {} commands, listed once for the whole host.\n",
            path.display(),
            module.cmds.len()
        ),
        Listing::Session => format!(
            "Module {} added ({} public commands); every session lists it.\n",
            path.display(),
            module.cmds.len()
        ),
    })
}

async fn rm_mod_body(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let path = path_arg(args)?;
    let in_store = ctx
        .host
        .store
        .remove_module(&path.to_string_lossy())
        .await?;
    if !ctx.host.modules.remove(&path) && !in_store {
        return refused(format!("{} is not a module.", path.display()));
    }
    broadcast(ctx, Event::ModulesChanged);
    Ok(format!("Module {} removed.\n", path.display()))
}

async fn ls_mods(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let rows = ctx
        .host
        .modules
        .all()
        .iter()
        .map(|m| {
            vec![
                m.path.display().to_string(),
                m.listing.as_str().to_owned(),
                m.cmds.len().to_string(),
            ]
        })
        .collect();
    show_table(ctx, &["module_executable", "listing", "commands"], rows).await;
    Ok(())
}
