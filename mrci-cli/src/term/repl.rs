//! The interactive client (`mrci connect`): the line editor on a blocking thread, the network
//! on the async task, and [`Repl`] in between.
//!
//! The editor sends each [`Input`] over a channel and waits for an [`Ack`] before reading the
//! next line, so the terminal is never left in raw mode when the client quits, and the prompt
//! state (a masked answer after PRIV_TEXT) is settled before the next read. Frames that arrive
//! while a line is being typed go through rustyline's external printer, which redraws the
//! line below them.
//!
//! Routing of a typed line: while a foreground command runs (branch 0, from its TEXT until its
//! IDLE) every line is its input; otherwise the first word names a command. A trailing `&`
//! starts the command on a new branch in the background.

use std::{collections::BTreeMap, io::IsTerminal as _, process::ExitCode};

use mrci_cli::client::Client;
use mrci_proto::{BranchId, CmdId, Frame, TypeId, async_id::AsyncId, client::Announcement};
use rustyline::{ExternalPrinter, error::ReadlineError};
use tokio::sync::mpsc;

use super::{
    connect::Connect,
    editor::{self, MrciEditor, Shared},
    render::{command_help, command_list, render},
    script::split_command,
    transfer,
};

/// What `mrci connect` does.
pub(crate) struct ReplOpts {
    /// Where and how to connect.
    pub(crate) connect: Connect,
    /// Start `auth -user USER` once connected.
    pub(crate) user: Option<String>,
}

/// What the editor thread reports.
enum Input {
    /// A typed line.
    Line(String),
    /// A line typed while masked (the answer to PRIV_TEXT).
    Secret(String),
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D or a terminal error.
    Eof,
}

/// The network task's answer to each [`Input`].
enum Ack {
    Continue,
    Quit,
}

/// Runs the interactive client until `/quit` or Ctrl-D.
///
/// # Errors
/// If the first connection fails or the terminal cannot be used.
pub(crate) async fn run(opts: ReplOpts) -> anyhow::Result<ExitCode> {
    let client = opts.connect.open().await?;
    // While the editor is not reading (between lines) the terminal is in cooked mode and
    // Ctrl-C raises SIGINT; handled here it means the same as Ctrl-C typed into the editor.
    let sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let shared = Shared::default();
    let mut editor = editor::editor(shared.clone())?;
    let out = Out::new(&mut editor);
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let (ack_tx, ack_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || input_loop(editor, &input_tx, &ack_rx));
    let mut repl = Repl {
        link: None,
        opts,
        shared,
        out,
        running: BTreeMap::new(),
        fg: None,
        secret_for: None,
        interrupts: 0,
    };
    repl.start(client).await;
    repl.run(input_rx, sigint, ack_tx).await;
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    Ok(ExitCode::SUCCESS)
}

fn input_loop(
    mut editor: MrciEditor,
    input_tx: &mpsc::UnboundedSender<Input>,
    ack_rx: &std::sync::mpsc::Receiver<Ack>,
) {
    let shared = editor.helper().map(|h| h.shared());
    loop {
        let secret = shared
            .as_ref()
            .and_then(|s| editor::lock(s).secret_prompt.clone());
        let prompt = if secret.is_some() {
            "(hidden)> "
        } else {
            "mrci> "
        };
        let input = match editor.readline(prompt) {
            Ok(line) => {
                let masked = shared
                    .as_ref()
                    .is_some_and(|s| editor::lock(s).secret_prompt.take().is_some());
                if masked {
                    Input::Secret(line)
                } else {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Input::Line(line)
                }
            }
            Err(ReadlineError::Interrupted) => Input::Interrupt,
            Err(_) => Input::Eof,
        };
        if input_tx.send(input).is_err() {
            return;
        }
        match ack_rx.recv() {
            Ok(Ack::Continue) => {}
            Ok(Ack::Quit) | Err(_) => return,
        }
    }
}

/// Where output goes: the editor's external printer, or stdout when there is no terminal.
struct Out {
    printer: Option<Box<dyn ExternalPrinter + Send>>,
    color: bool,
    width: usize,
}

impl Out {
    fn new(editor: &mut MrciEditor) -> Self {
        let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        let printer = if tty {
            editor
                .create_external_printer()
                .ok()
                .map(|p| Box::new(p) as Box<dyn ExternalPrinter + Send>)
        } else {
            None
        };
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(80);
        Self {
            printer,
            color: tty,
            width,
        }
    }

    fn print(&mut self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text).to_owned();
        if let Some(printer) = &mut self.printer
            && printer.print(text.clone()).is_ok()
        {
            return;
        }
        println!("{text}");
    }

    fn err(&mut self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        if self.color {
            self.print(&format!("\x1b[31m{text}\x1b[0m"));
        } else {
            self.print(text);
        }
    }
}

/// A command instance between its first TEXT and its IDLE.
type Key = (CmdId, BranchId);

struct Repl {
    link: Option<Client>,
    opts: ReplOpts,
    shared: Shared,
    out: Out,
    /// Running instances and their command names.
    running: BTreeMap<Key, String>,
    /// The foreground instance (branch 0), which gets the typed lines.
    fg: Option<Key>,
    /// The instance whose PRIV_TEXT prompt masks the input.
    secret_for: Option<Key>,
    /// Ctrl-C presses since the foreground command started.
    interrupts: u8,
}

impl Repl {
    async fn run(
        &mut self,
        mut input_rx: mpsc::UnboundedReceiver<Input>,
        mut sigint: tokio::signal::unix::Signal,
        ack_tx: std::sync::mpsc::Sender<Ack>,
    ) {
        loop {
            // Frames first: a command's IDLE that has already arrived must end it before the
            // next typed line is routed.
            let event = tokio::select! {
                biased;
                frame = recv(&mut self.link) => Err(frame),
                input = input_rx.recv() => Ok(input),
                _ = sigint.recv() => {
                    if let Err(e) = self.interrupt().await {
                        self.lost(&format!("{e:#}"));
                    }
                    continue;
                }
            };
            match event {
                Ok(None) => return,
                Ok(Some(input)) => {
                    let quit = self.handle_input(input).await;
                    let _ = ack_tx.send(if quit { Ack::Quit } else { Ack::Continue });
                    if quit {
                        return;
                    }
                }
                Err(Ok(Some(frame))) => self.handle_frame(&frame),
                Err(Ok(None)) => self.lost("the host closed the connection"),
                Err(Err(e)) => self.lost(&format!("connection error: {e:#}")),
            }
        }
    }

    /// Shows the greeting of a new connection and logs in if a user was given.
    async fn start(&mut self, client: Client) {
        let target = &self.opts.connect.target;
        let info = client.info();
        let secure = match &info.fingerprint {
            Some(fp) => format!("TLS, certificate SHA-256 {fp}"),
            None => "no TLS".to_owned(),
        };
        self.out.print(&format!(
            "Connected to {target} (host version {}, {secure}).",
            info.header.version
        ));
        let greeting = info.greeting.clone();
        self.link = Some(client);
        self.sync_names();
        for frame in &greeting {
            self.handle_frame(frame);
        }
        self.out
            .print("Type `help` for the commands, `/help` for the client's own.");
        if let Some(user) = self.opts.user.clone() {
            let line = format!("auth -user {}", mrci_proto::args::quote(&user));
            self.handle_line(&line).await;
        }
    }

    fn lost(&mut self, why: &str) {
        self.link = None;
        self.running.clear();
        self.fg = None;
        self.secret_for = None;
        editor::lock(&self.shared).secret_prompt = None;
        self.sync_names();
        self.out.err(&format!(
            "Disconnected from {}: {why}. Type /reconnect to connect again or /quit to leave.",
            self.opts.connect.target
        ));
    }

    fn sync_names(&self) {
        let names = self
            .link
            .as_ref()
            .map(|l| l.commands().names().map(str::to_owned).collect())
            .unwrap_or_default();
        editor::lock(&self.shared).names = names;
    }

    /// Handles one input; returns true to quit.
    async fn handle_input(&mut self, input: Input) -> bool {
        let res = match input {
            Input::Eof => return true,
            Input::Line(line) => {
                let line = line.trim();
                if line == "/quit" || line == "/exit" {
                    return true;
                }
                self.handle_line(line).await;
                Ok(())
            }
            Input::Secret(answer) => match (self.secret_for.take(), &mut self.link) {
                (Some((cmd, branch)), Some(link)) => link
                    .send_text(cmd, branch, &answer)
                    .await
                    .map_err(anyhow::Error::from),
                _ => Ok(()),
            },
            Input::Interrupt => self.interrupt().await,
        };
        if let Err(e) = res {
            self.lost(&format!("{e:#}"));
        }
        false
    }

    async fn handle_line(&mut self, line: &str) {
        let res = if line.starts_with('/') {
            self.local_command(line).await
        } else {
            self.host_line(line).await
        };
        if let Err(e) = res {
            self.lost(&format!("{e:#}"));
        }
    }

    /// A line for the host: input to the foreground command, or a new command.
    async fn host_line(&mut self, line: &str) -> anyhow::Result<()> {
        let Some(link) = &mut self.link else {
            if !line.is_empty() {
                self.out.err("Not connected. Type /reconnect or /quit.");
            }
            return Ok(());
        };
        let (background, line) = match line.strip_suffix('&') {
            Some(rest) => (true, rest.trim_end()),
            None => (false, line),
        };
        if let (Some((cmd, branch)), false) = (self.fg, background) {
            return Ok(link.send_text(cmd, branch, line).await?);
        }
        if line.is_empty() {
            return Ok(());
        }
        if let Some(parsed) = transfer::parse(line) {
            match parsed {
                Err(why) => self.out.err(&why),
                Ok(t) => {
                    let mut progress = transfer::Progress::stderr(&t.remote);
                    match transfer::run(link, &t, &mut progress).await {
                        Ok(outcome) => self.out.print(&transfer::summary(&t, outcome)),
                        Err(e) => self.out.err(&format!("{e:#}")),
                    }
                }
            }
            return Ok(());
        }
        let (name, args) = split_command(line);
        if name == "help" || args == "-help" {
            let topic = if name == "help" { args } else { name };
            let text = if topic.is_empty() {
                format!(
                    "Commands (`help NAME` or `NAME -help` for one; end a line with & to run it in the background):\n{}\nFile transfers (the client's own lines, with a progress bar; Ctrl-C cancels):\n{}",
                    command_list(link.commands()),
                    transfer::HELP
                )
            } else {
                command_help(link.commands(), topic)
                    .unwrap_or_else(|| format!("No command named {topic}."))
            };
            self.out.print(&text);
            return Ok(());
        }
        let Some(id) = link.commands().id(name) else {
            self.out.err(&format!(
                "Unknown command {name:?}; type `help` for the list."
            ));
            return Ok(());
        };
        let branch = if background {
            (1..=u16::MAX)
                .map(BranchId)
                .find(|b| !self.running.contains_key(&(id, *b)))
                .unwrap_or(BranchId(u16::MAX))
        } else {
            BranchId(0)
        };
        link.send_text(id, branch, args).await?;
        self.running.insert((id, branch), name.to_owned());
        if background {
            self.out
                .print(&format!("[{name}#{}] started in the background", branch.0));
        } else {
            self.fg = Some((id, branch));
            self.interrupts = 0;
        }
        Ok(())
    }

    /// Ctrl-C: TERM_CMD to the foreground command, KILL_CMD the second time.
    async fn interrupt(&mut self) -> anyhow::Result<()> {
        editor::lock(&self.shared).secret_prompt = None;
        let target = self.fg.or(self.secret_for);
        self.secret_for = None;
        let (Some(key), Some(link)) = (target, &mut self.link) else {
            self.out.print("^C (type /quit or press Ctrl-D to leave)");
            return Ok(());
        };
        let name = self.running.get(&key).cloned().unwrap_or_default();
        self.interrupts = self.interrupts.saturating_add(1);
        if self.interrupts == 1 {
            link.send_control(TypeId::TERM_CMD, key.0, key.1).await?;
            self.out.print(&format!(
                "^C: asked {name} to stop (TERM_CMD); press Ctrl-C again to kill it"
            ));
        } else {
            link.send_control(TypeId::KILL_CMD, key.0, key.1).await?;
            self.out.print(&format!("^C: killing {name} (KILL_CMD)"));
        }
        Ok(())
    }

    /// Client commands: `/reconnect`, `/halt`, `/resume`, `/term`, `/kill`, `/help`.
    async fn local_command(&mut self, line: &str) -> anyhow::Result<()> {
        let (cmd, arg) = split_command(line);
        let control = match cmd {
            "/reconnect" => {
                self.reconnect().await;
                return Ok(());
            }
            "/help" => {
                self.out.print(&format!("{LOCAL_HELP}\n{}", transfer::HELP));
                return Ok(());
            }
            "/halt" => TypeId::HALT_CMD,
            "/resume" => TypeId::RESUME_CMD,
            "/term" => TypeId::TERM_CMD,
            "/kill" => TypeId::KILL_CMD,
            _ => {
                self.out
                    .err(&format!("Unknown client command {cmd}; type /help."));
                return Ok(());
            }
        };
        let Some(key) = self.pick_instance(arg) else {
            self.out.err("No such running command.");
            return Ok(());
        };
        if let Some(link) = &mut self.link {
            link.send_control(control, key.0, key.1).await?;
        }
        Ok(())
    }

    /// The instance `/halt` and friends act on: `NAME#BRANCH` or `NAME`, else the foreground
    /// command, else the most recent background one.
    fn pick_instance(&self, arg: &str) -> Option<Key> {
        if arg.is_empty() {
            return self.fg.or_else(|| self.running.keys().last().copied());
        }
        let (name, branch) = match arg.split_once('#') {
            Some((n, b)) => (n, b.parse().ok().map(BranchId)),
            None => (arg, None),
        };
        self.running
            .iter()
            .find(|(k, n)| n.as_str() == name && branch.is_none_or(|b| k.1 == b))
            .map(|(k, _)| *k)
    }

    async fn reconnect(&mut self) {
        self.link = None;
        self.running.clear();
        self.fg = None;
        self.secret_for = None;
        self.out
            .print(&format!("Connecting to {}...", self.opts.connect.target));
        match self.opts.connect.open().await {
            Ok(client) => Box::pin(self.start(client)).await,
            Err(e) => self.out.err(&format!("Cannot connect: {e:#}")),
        }
    }

    fn handle_frame(&mut self, frame: &Frame) {
        if Announcement::is_announcement(frame) {
            self.sync_names();
            return;
        }
        if frame.cmd_id.is_async() {
            self.async_frame(frame);
            return;
        }
        let key = (frame.cmd_id, frame.branch_id);
        let name = self.running.get(&key).cloned().or_else(|| {
            self.link
                .as_ref()
                .and_then(|l| l.commands().name_of(frame.cmd_id).map(str::to_owned))
        });
        let prefix = match (frame.branch_id.0, &name) {
            (0, _) => String::new(),
            (b, Some(n)) => format!("[{n}#{b}] "),
            (b, None) => format!("[{}#{b}] ", frame.cmd_id),
        };
        match frame.type_id {
            TypeId::IDLE => {
                self.running.remove(&key);
                if self.fg == Some(key) {
                    self.fg = None;
                    if self.interrupts > 0 {
                        self.out
                            .print(&format!("{} stopped", name.as_deref().unwrap_or("command")));
                    }
                    self.interrupts = 0;
                }
                if self.secret_for == Some(key) {
                    self.secret_for = None;
                    editor::lock(&self.shared).secret_prompt = None;
                }
                if !prefix.is_empty() {
                    self.out.print(&format!("{prefix}done"));
                }
            }
            TypeId::PRIV_TEXT => {
                let prompt = frame.text_payload();
                self.secret_for = Some(key);
                editor::lock(&self.shared).secret_prompt = Some(prompt.clone());
                self.out
                    .print(&format!("{prefix}{} (input hidden)", prompt.trim_end()));
            }
            _ => self.show(frame, &prefix),
        }
    }

    fn async_frame(&mut self, frame: &Frame) {
        let id = AsyncId::from_cmd_id(frame.cmd_id);
        let prefix = match id {
            Some(AsyncId::SYS_MSG | AsyncId::RDY) | None => String::new(),
            Some(id) => format!("[{}] ", id.name().unwrap_or("async")),
        };
        self.show(frame, &prefix);
    }

    fn show(&mut self, frame: &Frame, prefix: &str) {
        let Some(out) = render(frame, Some(self.out.width)) else {
            return;
        };
        let text = out.text.trim_end_matches('\n');
        if text.trim().is_empty() {
            return;
        }
        let text = if prefix.is_empty() {
            text.to_owned()
        } else {
            text.lines()
                .map(|l| format!("{prefix}{l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if out.is_err {
            self.out.err(&text);
        } else {
            self.out.print(&text);
        }
    }
}

const LOCAL_HELP: &str = "Client commands:
  /reconnect          connect to the host again
  /halt [NAME[#N]]    pause a running command (HALT_CMD)
  /resume [NAME[#N]]  resume it (RESUME_CMD)
  /term [NAME[#N]]    ask it to stop (TERM_CMD); Ctrl-C does this for the foreground command
  /kill [NAME[#N]]    end it (KILL_CMD); a second Ctrl-C does this
  /quit               leave (or press Ctrl-D)
  help [NAME]         list the host's commands, or show one's usage (also NAME -help)
  LINE &              run a command in the background on a new branch";

async fn recv(link: &mut Option<Client>) -> anyhow::Result<Option<Frame>> {
    match link {
        Some(link) => Ok(link.recv().await?),
        None => std::future::pending().await,
    }
}
