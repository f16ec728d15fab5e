//! What `/proc` tells about a process (the host under test or the generator itself) and
//! about the machine: resident memory, open descriptors by kind, CPU time, child processes
//! and the memory still available.
//!
//! Invariant: every reading is a fresh read of `/proc`; nothing here caches, so two
//! readings taken around a piece of work measure that work.

use std::{collections::BTreeMap, fs, io};

use anyhow::Context as _;

/// The resident set size of a process, from `VmRSS` in `/proc/PID/status`, in bytes.
///
/// # Errors
/// If the file cannot be read or has no `VmRSS` line.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` field of `/proc/PID/status`, such as `VmRSS:` or `VmHWM:`.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?
        .parse()?)
}

/// The peak resident set size (`VmHWM`), in bytes.
///
/// # Errors
/// As [`rss`].
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

/// How many descriptors a process has open.
///
/// # Errors
/// If `/proc/PID/fd` cannot be listed.
pub fn fd_count(pid: u32) -> io::Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// A process's open descriptors by kind: `socket`, `pipe`, `anon_inode`, `file` (anything
/// with a path) and `other`, so that a count that does not return to where it began says
/// what stayed open.
///
/// # Errors
/// If `/proc/PID/fd` cannot be listed.
pub fn fd_kinds(pid: u32) -> io::Result<BTreeMap<&'static str, usize>> {
    let mut kinds = BTreeMap::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        // A descriptor closed between the listing and the readlink is simply not counted.
        let Ok(target) = fs::read_link(entry?.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let kind = if target.starts_with("socket:") {
            "socket"
        } else if target.starts_with("pipe:") {
            "pipe"
        } else if target.starts_with("anon_inode:") {
            "anon_inode"
        } else if target.starts_with('/') {
            "file"
        } else {
            "other"
        };
        *kinds.entry(kind).or_default() += 1;
    }
    Ok(kinds)
}

/// A process's soft open-file limit, from `/proc/PID/limits`.
pub fn nofile_limit(pid: u32) -> Option<u64> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How many more descriptors a process may open: its soft limit less what it holds.
pub fn fd_room(pid: u32) -> Option<usize> {
    let limit = usize::try_from(nofile_limit(pid)?).ok()?;
    Some(limit.saturating_sub(fd_count(pid).ok()?))
}

/// User plus system CPU time a process has used, all its threads together, in seconds.
///
/// # Errors
/// If `/proc/PID/stat` cannot be read or parsed.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; the fields after it are plain.
    let after = &stat[stat.rfind(')').context("no ')' in /proc/PID/stat")? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) are utime and stime; `after` starts at field 3.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse::<u64>()? as f64)
    };
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?
        .context("no clock tick rate")? as f64;
    Ok((ticks(11)? + ticks(12)?) / per_second)
}

/// True while the process exists and has not exited (a zombie waiting to be reaped has).
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    })
}

/// The direct children of a process (module processes of a host), from every thread's
/// `children` list.
pub fn children(pid: u32) -> usize {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .map(|c| c.split_whitespace().count())
        .sum()
}

/// `MemAvailable` of `/proc/meminfo`, in bytes: what the machine can still give without
/// swapping.
pub fn mem_available() -> Option<u64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `/proc/loadavg`'s 1, 5 and 15 minute figures: other work on the machine skews results.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_readings() {
        let me = std::process::id();
        let rss = rss(me).unwrap();
        assert!(rss > 0 && peak_rss(me).unwrap() >= rss);
        let file = tempfile::tempfile().unwrap();
        assert!(fd_count(me).unwrap() >= 1);
        assert!(fd_kinds(me).unwrap().get("file").copied().unwrap_or(0) >= 1);
        drop(file);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(alive(me) && !alive(u32::MAX));
        assert!(nofile_limit(me).unwrap() > 0 && fd_room(me).is_some());
        assert!(mem_available().unwrap() > 0);
        assert_eq!(load_average().split(' ').count(), 3);
    }
}
