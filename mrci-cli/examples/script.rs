//! Scripting a host from Rust with the `mrci_cli::client` library: connect, log in with the
//! user and password from the environment, run `my_info` and print what it says.
//!
//! ```text
//! MRCI_USER=alice MRCI_PASSWORD=... cargo run -p mrci-cli --example script -- HOST[:PORT]
//! ```
//!
//! The host's certificate is trusted if it has the fingerprint in `MRCI_FINGERPRINT` (as
//! `mrci host run` prints it), else if `mrci connect` pinned it in its known-hosts file.
#![forbid(unsafe_code)]

use std::{error::Error, process::ExitCode, sync::Arc};

use mrci_cli::client::{Client, ConnectOptions, KnownHosts, Target, Trust};
use mrci_proto::{TypeId, payload::MyInfo};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let target: Target = std::env::args()
        .nth(1)
        .ok_or("usage: script HOST[:PORT]")?
        .parse()?;
    let user = std::env::var("MRCI_USER").map_err(|_| "set MRCI_USER")?;
    let password = std::env::var("MRCI_PASSWORD").map_err(|_| "set MRCI_PASSWORD")?;

    let trust = match std::env::var("MRCI_FINGERPRINT") {
        Ok(fingerprint) => Trust::Fingerprint(fingerprint.parse()?),
        Err(_) => {
            let path = KnownHosts::default_path().ok_or("set MRCI_FINGERPRINT or HOME")?;
            Trust::FirstUse(Arc::new(KnownHosts::new(path)))
        }
    };
    let opts = ConnectOptions::new(trust).app_name("mrci script example");
    let mut client = Client::connect(&target, &opts).await?;
    let timings = client.info().timings;
    eprintln!("connected to {target} in {:?}", timings.total());

    client.login(&user, &password).await?;
    let out = client.run("my_info", "").await?;
    print!("{}", out.text());
    // The typed payload is there too.
    if let Some(frame) = out.frames.iter().find(|f| f.type_id == TypeId::MY_INFO) {
        let info = MyInfo::parse(&frame.payload)?;
        eprintln!("logged in as {}", info.peer.user_name);
    }
    Ok(())
}
