//! A complete MRCI module: it lists `hello` (public) and `greet` (user rank), and runs them.
//! `greet` reads its argument text from the client and keeps a per-process counter, showing
//! that a run-mode process is reused after IDLE.
//!
//! Build it with `cargo build -p mrci-modrun --example hello_module` and register the
//! executable in the host's module table.
#![forbid(unsafe_code)]

use mrci_modrun::module::{self, Flow, IpcFrame, ListMode, ModuleArgs, Pipe, TypeId};

fn main() -> mrci_modrun::Result<()> {
    let args = ModuleArgs::from_env()?;
    let mut greeted = 0u32;
    module::serve(
        &args,
        |mode| match mode {
            ListMode::Public => vec![module::command("hello", "say hello")],
            ListMode::Exempt => vec![],
            ListMode::User => vec![module::command("greet", "greet someone by name")],
        },
        |name, frame: IpcFrame, pipe: &mut Pipe| {
            if frame.type_id != TypeId::TEXT {
                return Ok(Flow::More);
            }
            match name {
                "hello" => pipe.send_text("hello\n")?,
                "greet" => {
                    greeted += 1;
                    let who = mrci_proto::text::decode(&frame.payload);
                    pipe.send_text(&format!("hello, {} (#{greeted})\n", who.trim()))?;
                }
                other => pipe.send_err(&format!("err: unknown command {other}\n"))?,
            }
            Ok(Flow::Idle)
        },
    )
}
