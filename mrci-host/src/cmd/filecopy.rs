//! `fs_copy` and `fs_move` (COMMANDS.md §3.7, confined like the other file commands in
//! `files`): recursive copies that recreate links, ask before replacing (`y`, `n`, `y-all`,
//! `n-all`) unless `-force`, report an item that fails as ERR and go on with the rest.
//!
//! Every step opens its source and destination through the caller's base [`Dir`], one item
//! at a time, so a directory swapped for a symlink that leads out while a copy runs makes
//! that item fail instead of reaching outside the root.

use std::{io, path::PathBuf};

use cap_std::fs::Dir;

use super::{
    CmdCtx, CmdResult, CommandDef, Input,
    files::{Place, confirm, io_refusal, shown},
    refuse, task,
    util::refused,
};

pub(super) fn commands() -> Vec<CommandDef> {
    let def = |name, summary, io, details, exec| CommandDef {
        feature: Some(super::Feature::Files),
        ..CommandDef::ranked(name, summary, io, details, exec)
    };
    vec![
        def(
            "fs_copy",
            "copy a file, link or directory tree",
            "[-src (path) -dst (path) {-force}]/[text]",
            "Creates missing parent directories and recreates links. For each existing \
             destination it asks y, n, y-all or n-all unless -force. An item that fails is \
             reported and skipped.",
            task!(fs_copy),
        ),
        def(
            "fs_move",
            "move or rename a file, link or directory tree",
            "[-src (path) -dst (path) {-force}]/[text]",
            "Renames within the file system (asking before replacing unless -force); across \
             file systems it copies, then deletes the source.",
            task!(fs_move),
        ),
    ]
}

/// What an existing destination gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replace {
    Ask,
    All,
    None,
}

/// What kind of object a path is (links are not followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Link,
}

fn kind(dir: &Dir, path: &std::path::Path) -> io::Result<Option<Kind>> {
    match dir.symlink_metadata(path) {
        Ok(m) if m.is_symlink() => Ok(Some(Kind::Link)),
        Ok(m) if m.is_dir() => Ok(Some(Kind::Dir)),
        Ok(_) => Ok(Some(Kind::File)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Copies one item (not a directory's contents) from `src` to `dst`.
fn copy_item(
    dir: &Dir,
    src: &std::path::Path,
    dst: &std::path::Path,
    kind: Kind,
) -> io::Result<()> {
    if let Some(parent) = dst.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent)?;
    }
    match kind {
        Kind::Dir => dir.create_dir_all(dst),
        Kind::Link => {
            let target = dir.read_link_contents(src)?;
            if kind_exists(dir, dst)? {
                dir.remove_file(dst)?;
            }
            // cap-std refuses link targets that are absolute or lead out of the root.
            dir.symlink(target, dst)
        }
        Kind::File => dir.copy(src, dir, dst).map(|_| ()),
    }
}

fn kind_exists(dir: &Dir, path: &std::path::Path) -> io::Result<bool> {
    kind(dir, path).map(|k| k.is_some())
}

/// Copies `src` to `dst` item by item; returns the number of items copied.
async fn copy_tree(
    ctx: &mut CmdCtx,
    place: &Place,
    src: PathBuf,
    dst: PathBuf,
    mut replace: Replace,
) -> Result<usize, super::Fail> {
    let mut queue = std::collections::VecDeque::from([(src, dst)]);
    let mut copied = 0;
    while let Some((src, dst)) = queue.pop_front() {
        let (s, d) = (src.clone(), dst.clone());
        let kinds = place
            .run(move |dir| Ok((kind(dir, &s)?, kind(dir, &d)?)))
            .await;
        let (src_kind, dst_kind) = match kinds {
            Ok((Some(s), d)) => (s, d),
            Ok((None, _)) => {
                ctx.refuse(&refuse!("'{}' does not exist.", shown(&src)))
                    .await;
                continue;
            }
            Err(e) => {
                report(ctx, &io_refusal("copy", &src, &e)).await;
                continue;
            }
        };
        if let Some(existing) = dst_kind {
            if existing != src_kind {
                ctx.refuse(&refuse!(
                    "'{}' exists and is a different kind of object than '{}'; skipped.",
                    shown(&dst),
                    shown(&src)
                ))
                .await;
                continue;
            }
            if existing != Kind::Dir {
                let yes = match replace {
                    Replace::All => true,
                    Replace::None => false,
                    Replace::Ask => {
                        let q = format!(
                            "'{}' already exists, overwrite? (y/n/y-all/n-all): ",
                            shown(&dst)
                        );
                        ctx.text(&q).await;
                        let a = ctx.next_input().await.map(|f| super::transfer::answer(&f));
                        match a.as_deref() {
                            Some("y") => true,
                            Some("y-all") => {
                                replace = Replace::All;
                                true
                            }
                            Some("n-all") => {
                                replace = Replace::None;
                                false
                            }
                            _ => false,
                        }
                    }
                };
                if !yes {
                    continue;
                }
            }
        }
        let (s, d) = (src.clone(), dst.clone());
        let children = place
            .run(move |dir| {
                copy_item(dir, &s, &d, src_kind)?;
                if src_kind != Kind::Dir {
                    return Ok(Vec::new());
                }
                let mut names = Vec::new();
                for entry in dir.read_dir(&s)? {
                    names.push(entry?.file_name());
                }
                Ok(names)
            })
            .await;
        match children {
            Ok(names) => {
                copied += 1;
                queue.extend(names.into_iter().map(|n| (src.join(&n), dst.join(&n))));
            }
            Err(e) => report(ctx, &io_refusal("copy", &src, &e)).await,
        }
    }
    Ok(copied)
}

async fn report(ctx: &CmdCtx, fail: &super::Fail) {
    if let super::Fail::Refused(r) = fail {
        ctx.refuse(r).await;
    }
}

fn src_dst(place: &Place, input: &Input) -> Result<(PathBuf, PathBuf), super::Fail> {
    let src = place.path_arg(&input.args, "-src")?;
    let dst = place.path_arg(&input.args, "-dst")?;
    if src.as_os_str().is_empty() || dst.as_os_str().is_empty() {
        return refused("The file root itself cannot be copied or replaced.");
    }
    if dst.starts_with(&src) {
        return refused("The destination is inside the source.");
    }
    Ok((src, dst))
}

async fn fs_copy(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let (src, dst) = src_dst(&place, &input)?;
    let replace = if input.args.has("-force") {
        Replace::All
    } else {
        Replace::Ask
    };
    let n = copy_tree(ctx, &place, src.clone(), dst.clone(), replace).await?;
    ctx.text(&format!(
        "Copied {n} item(s) from '{}' to '{}'.\n",
        shown(&src),
        shown(&dst)
    ))
    .await;
    Ok(())
}

async fn fs_move(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let place = Place::of(ctx)?;
    let (src, dst) = src_dst(&place, &input)?;
    let (s, d) = (src.clone(), dst.clone());
    let (src_kind, dst_kind) = place
        .run(move |dir| Ok((kind(dir, &s)?, kind(dir, &d)?)))
        .await
        .map_err(|e| io_refusal("move", &src, &e))?;
    if src_kind.is_none() {
        return refused(format!("'{}' does not exist.", shown(&src)));
    }
    if dst_kind.is_some() && !input.args.has("-force") {
        let q = format!(
            "'{}' already exists, do you want to replace it? (y/n): ",
            shown(&dst)
        );
        if !confirm(ctx, &q).await {
            ctx.text("Nothing was moved.\n").await;
            return Ok(());
        }
    }
    let (s, d) = (src.clone(), dst.clone());
    let renamed = place
        .run(move |dir| {
            if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
                dir.create_dir_all(parent)?;
            }
            dir.rename(&s, dir, &d)
        })
        .await;
    match renamed {
        Ok(()) => {}
        // Another file system under the root (a mount): copy, then delete.
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            copy_tree(ctx, &place, src.clone(), dst.clone(), Replace::All).await?;
            let s = src.clone();
            place
                .run(move |dir| match kind(dir, &s)? {
                    Some(Kind::Dir) => dir.remove_dir_all(&s),
                    Some(_) => dir.remove_file(&s),
                    None => Ok(()),
                })
                .await
                .map_err(|e| io_refusal("delete", &src, &e))?;
        }
        Err(e) => return Err(io_refusal("move", &src, &e)),
    }
    ctx.text(&format!("Moved '{}' to '{}'.\n", shown(&src), shown(&dst)))
        .await;
    Ok(())
}
