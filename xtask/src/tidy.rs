//! Tidy checks that run inside `cargo test -p xtask`: the project's structural rules
//! (STYLE.md §2.1, §2.7) enforced as tests so that CI catches a violation at once.

#![cfg_attr(not(test), allow(dead_code))]

use std::{
    fs,
    path::{Path, PathBuf},
};

/// Library crates: no `anyhow`, no `println!`.
const LIBRARIES: &[&str] = &["mrci-proto", "mrci-shm", "mrci-modrun", "mrci-host"];

/// The client library inside mrci-cli (its `lib` target): a library by the same rules, and
/// built without the host (mrci-host is an optional dependency of the `mrci` program only).
const CLIENT_LIBRARY: &[&str] = &["mrci-cli/src/lib.rs", "mrci-cli/src/client"];

/// The only crate allowed `unsafe`.
const UNSAFE_CRATE: &str = "mrci-shm";

/// Files allowed past the 800-line limit, with the reason.
const LONG_FILES: &[&str] = &[];

/// Workspace crates each crate may depend on (STYLE.md §2.1); test and bench packages may use
/// anything.
const EDGES: &[(&str, &[&str])] = &[
    ("mrci-proto", &[]),
    ("mrci-shm", &[]),
    ("mrci-modrun", &["mrci-proto"]),
    ("mrci-host", &["mrci-proto", "mrci-shm", "mrci-modrun"]),
    ("mrci-cli", &["mrci-host", "mrci-proto", "mrci-modrun"]),
    ("xtask", &[]),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && !name.starts_with("target") && name != "fuzz" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    files.sort();
    files
}

fn crate_of(path: &Path) -> String {
    let rel = path.strip_prefix(root()).expect("file under the root");
    rel.components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn has_unsafe(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
        .any(|line| {
            ["unsafe {", "unsafe fn", "unsafe impl", "unsafe extern"]
                .iter()
                .any(|p| line.contains(p))
        })
}

/// The workspace dependencies named in the `[dependencies]` table of a manifest.
fn workspace_deps(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && line.starts_with("mrci-") {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            deps.push(name.to_owned());
        }
    }
    deps
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let bad: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|p| !fs::read_to_string(p).unwrap_or_default().starts_with("//!"))
        .collect();
    assert!(
        bad.is_empty(),
        "files without a leading //! paragraph: {bad:#?}"
    );
}

#[test]
fn unsafe_only_in_the_shared_memory_crate() {
    let bad: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|p| crate_of(p) != UNSAFE_CRATE && !p.ends_with("xtask/src/tidy.rs"))
        .filter(|p| has_unsafe(&fs::read_to_string(p).unwrap_or_default()))
        .collect();
    assert!(bad.is_empty(), "unsafe outside {UNSAFE_CRATE}: {bad:#?}");
}

fn in_client_library(path: &Path) -> bool {
    CLIENT_LIBRARY
        .iter()
        .any(|part| path.starts_with(root().join(part)))
}

#[test]
fn libraries_use_neither_anyhow_nor_println() {
    let bad: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|p| {
            let library = LIBRARIES.contains(&crate_of(p).as_str())
                && p.components().any(|c| c.as_os_str() == "src")
                && !p
                    .components()
                    .any(|c| c.as_os_str() == "bin" || c.as_os_str() == "examples");
            library || in_client_library(p)
        })
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            text.contains("anyhow::") || text.contains("println!(")
        })
        .collect();
    assert!(bad.is_empty(), "anyhow or println! in a library: {bad:#?}");
}

#[test]
fn no_file_is_too_long() {
    let bad: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|p| !LONG_FILES.iter().any(|allowed| p.ends_with(allowed)))
        .filter(|p| fs::read_to_string(p).unwrap_or_default().lines().count() > 800)
        .collect();
    assert!(bad.is_empty(), "files over 800 lines: {bad:#?}");
}

#[test]
fn dependency_edges_follow_the_architecture() {
    for (krate, allowed) in EDGES {
        let manifest = fs::read_to_string(root().join(krate).join("Cargo.toml")).expect("manifest");
        for dep in workspace_deps(&manifest) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{krate} may not depend on {dep}"
            );
        }
    }
}

/// Workspace packages whose crates must all forbid `unsafe` (every package but the shared
/// memory one).
const SAFE_PACKAGES: &[&str] = &[
    "mrci-proto",
    "mrci-modrun",
    "mrci-host",
    "mrci-cli",
    "xtask",
    "tests",
    "benches",
];

/// The root file of every crate a package builds: its library, binaries, examples, benches
/// and integration tests.
fn crate_roots(package: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for file in ["src/lib.rs", "src/main.rs"] {
        let path = package.join(file);
        if path.exists() {
            roots.push(path);
        }
    }
    for dir in ["src/bin", "examples", "benches", "tests"] {
        let Ok(entries) = fs::read_dir(package.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && path.join("main.rs").exists() {
                roots.push(path.join("main.rs"));
            } else if path.extension().is_some_and(|e| e == "rs") {
                roots.push(path);
            }
        }
    }
    roots.sort();
    roots
}

#[test]
fn every_crate_but_shared_memory_forbids_unsafe() {
    let bad: Vec<_> = SAFE_PACKAGES
        .iter()
        .flat_map(|p| crate_roots(&root().join(p)))
        .filter(|p| {
            !fs::read_to_string(p)
                .unwrap_or_default()
                .contains("#![forbid(unsafe_code)]")
        })
        .collect();
    assert!(
        bad.is_empty(),
        "crate roots without #![forbid(unsafe_code)]: {bad:#?}"
    );
}

/// Test code of a file: all of it for files under a `tests` directory or named `tests.rs`,
/// else what follows `#[cfg(test)]`.
fn test_code(path: &Path, text: &str) -> Option<String> {
    let in_tests_dir = path
        .strip_prefix(root())
        .is_ok_and(|rel| rel.components().any(|c| c.as_os_str() == "tests"));
    let is_bin = path.components().any(|c| c.as_os_str() == "bin");
    if (in_tests_dir && !is_bin) || path.ends_with("tests.rs") {
        return Some(text.to_owned());
    }
    text.find("#[cfg(test)]").map(|at| text[at..].to_owned())
}

#[test]
fn tests_neither_ignore_nor_sleep() {
    let bad: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|p| !p.ends_with("xtask/src/tidy.rs"))
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            test_code(p, &text).is_some_and(|code| {
                code.lines()
                    .map(str::trim_start)
                    .filter(|l| !l.starts_with("//"))
                    .any(|l| l.contains("#[ignore") || l.contains("sleep("))
            })
        })
        .collect();
    assert!(
        bad.is_empty(),
        "tests that are ignored or sleep to wait for a condition (use paused time, channels \
         or the host's change notifications): {bad:#?}"
    );
}

/// The modules of a directory of mrci-host: `name` for `name.rs` and `name/mod.rs`.
fn host_modules(dir: &str) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(entries) = fs::read_dir(root().join("mrci-host/src").join(dir)) else {
        return names;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        match stem.as_deref() {
            Some("mod" | "tests") | None => {}
            Some(stem) if path.is_dir() || path.extension().is_some_and(|e| e == "rs") => {
                names.push(stem.to_owned());
            }
            Some(_) => {}
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn architecture_names_every_host_module() {
    let map = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let missing: Vec<String> = ["cmd", "session", "bus", "store"]
        .iter()
        .flat_map(|dir| {
            host_modules(dir)
                .into_iter()
                .map(move |m| format!("{dir}/{m}"))
        })
        .filter(|path| !map.contains(&format!("`{path}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these modules (as `dir/name`): {missing:#?}"
    );
}

#[test]
fn the_client_library_does_not_need_the_host() {
    let files: Vec<_> = all_rust_files()
        .into_iter()
        .filter(|p| in_client_library(p))
        .collect();
    assert!(
        files.len() > 1,
        "the client library moved: {CLIENT_LIBRARY:?}"
    );
    let bad: Vec<_> = files
        .into_iter()
        .filter(|p| {
            fs::read_to_string(p)
                .unwrap_or_default()
                .contains("mrci_host")
        })
        .collect();
    assert!(
        bad.is_empty(),
        "the client library uses mrci_host: {bad:#?}"
    );
    let manifest = fs::read_to_string(root().join("mrci-cli/Cargo.toml")).expect("manifest");
    let host = manifest
        .lines()
        .find(|l| l.starts_with("mrci-host"))
        .expect("the mrci program depends on mrci-host");
    assert!(
        host.contains("optional = true"),
        "mrci-cli must depend on mrci-host only through its cli feature: {host}"
    );
}

#[test]
fn the_checks_themselves_work() {
    assert!(has_unsafe("fn f() { unsafe { g() } }"));
    assert!(!has_unsafe(
        "#![forbid(unsafe_code)]\n// unsafe { in a comment }"
    ));
    let src = root().join("mrci-host/src/x.rs");
    assert!(test_code(&src, "fn f() {}\n#[cfg(test)]\nmod tests {}").is_some());
    assert!(test_code(&src, "fn f() {}").is_none());
    assert!(test_code(&root().join("tests/tests/it/a.rs"), "").is_some());
    assert!(test_code(&root().join("tests/src/bin/fake_module.rs"), "").is_none());
    assert_eq!(
        workspace_deps(
            "[dependencies]\nmrci-proto.workspace = true\n[dev-dependencies]\nmrci-host = {}\n"
        ),
        ["mrci-proto"]
    );
}
