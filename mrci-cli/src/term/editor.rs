//! The line editor: rustyline with tab completion of the announced command names, history,
//! and masked input while a command waits for a hidden answer (PRIV_TEXT).
//!
//! The editor runs on its own blocking thread. [`UiState`] is the little state it shares with
//! the network task: the names to complete and whether the next answer is secret.

use std::{
    borrow::Cow,
    sync::{Arc, Mutex, PoisonError},
};

use rustyline::{
    ColorMode, CompletionType, Config, Context, Editor, Helper,
    completion::{Completer, Pair},
    highlight::{CmdKind, Highlighter},
    hint::Hinter,
    history::DefaultHistory,
    validate::Validator,
};

/// Lines typed that the client handles itself rather than sending to the host.
pub(crate) const LOCAL_COMMANDS: &[&str] = &[
    "/halt",
    "/help",
    "/kill",
    "/quit",
    "/reconnect",
    "/resume",
    "/term",
    "help",
];

/// What the editor thread and the network task share.
#[derive(Default)]
pub(crate) struct UiState {
    /// Command names to complete.
    pub(crate) names: Vec<String>,
    /// The prompt of a command waiting for a secret answer; input is masked while set.
    pub(crate) secret_prompt: Option<String>,
}

/// [`UiState`] behind a lock.
pub(crate) type Shared = Arc<Mutex<UiState>>;

/// Locks `shared`, ignoring poisoning (the state stays usable).
pub(crate) fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, UiState> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The rustyline helper: completion and masking.
pub(crate) struct MrciHelper {
    shared: Shared,
}

/// The editor type the client uses.
pub(crate) type MrciEditor = Editor<MrciHelper, DefaultHistory>;

/// Builds an editor over `shared`.
///
/// # Errors
/// If the terminal cannot be set up.
pub(crate) fn editor(shared: Shared) -> rustyline::Result<MrciEditor> {
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .color_mode(ColorMode::Forced)
        .max_history_size(1000)?
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(MrciHelper { shared }));
    Ok(editor)
}

/// Reads one line without showing it, for a password prompt outside the session loop.
///
/// # Errors
/// If the terminal fails or the user presses Ctrl-C or Ctrl-D.
pub(crate) fn read_secret(prompt: &str) -> rustyline::Result<String> {
    let shared = Shared::default();
    lock(&shared).secret_prompt = Some(prompt.to_owned());
    let mut editor = editor(shared)?;
    editor.readline(prompt)
}

impl MrciHelper {
    /// The state shared with the network task.
    pub(crate) fn shared(&self) -> Shared {
        Arc::clone(&self.shared)
    }
}

impl Completer for MrciHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let state = lock(&self.shared);
        if state.secret_prompt.is_some() {
            return Ok((pos, Vec::new()));
        }
        let before = &line[..pos];
        let (start, word, names): (usize, &str, Vec<&str>) = match before.rfind(' ') {
            None => {
                let mut names: Vec<&str> = state.names.iter().map(String::as_str).collect();
                names.extend_from_slice(LOCAL_COMMANDS);
                (0, before, names)
            }
            Some(space) if before[..space].trim() == "help" => (
                space + 1,
                &before[space + 1..],
                state.names.iter().map(String::as_str).collect(),
            ),
            Some(_) => return Ok((pos, Vec::new())),
        };
        let mut matches: Vec<Pair> = names
            .into_iter()
            .filter(|n| n.starts_with(word))
            .map(|n| Pair {
                display: n.to_owned(),
                replacement: format!("{n} "),
            })
            .collect();
        matches.sort_by(|a, b| a.display.cmp(&b.display));
        matches.dedup_by(|a, b| a.display == b.display);
        Ok((start, matches))
    }
}

impl Highlighter for MrciHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if lock(&self.shared).secret_prompt.is_some() {
            Cow::Owned(" ".repeat(line.chars().count()))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        kind != CmdKind::MoveCursor && lock(&self.shared).secret_prompt.is_some()
    }
}

impl Hinter for MrciHelper {
    type Hint = String;
}

impl Validator for MrciHelper {}

impl Helper for MrciHelper {}
