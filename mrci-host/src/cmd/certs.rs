//! Certificates per common name (COMMANDS.md §3.9, modernised): `add_cert`, `rm_cert`,
//! `cert_info`, `ls_certs`.
//!
//! A certificate and its key are read from PEM files on the host, checked (the key belongs to
//! the certificate, which is valid now) and stored in the data directory; the host's TLS
//! material is then rebuilt, so new connections asking for that common name get it at once
//! while established ones keep theirs.

use mrci_proto::args::Args;

use super::{
    CmdCtx, CmdResult, CommandDef, Fail, Input,
    table::show_table,
    task,
    util::{Outcome, arg, refused, reply},
};
use crate::tls::{self, CertInfo};

pub(super) fn commands() -> Vec<CommandDef> {
    vec![
        CommandDef::ranked(
            "add_cert",
            "add or replace the certificate served for a common name",
            "[-name (common name)] [-cert (path)] [-priv (path)] {-force}/[text]",
            "Reads a PEM certificate chain and its PEM private key from files on the host, \
             checks that the key belongs to the certificate and that the certificate is valid \
             now, and stores both in the data directory. Clients whose header asks for that \
             common name get it from their next connection. Replacing a name asks first \
             unless -force is given.",
            task!(add_cert),
        ),
        CommandDef::ranked(
            "rm_cert",
            "remove the certificate of a common name",
            "[-name (common name)] {-force}/[text]",
            "Removes a certificate added with add_cert (asks first unless -force is given). \
             Clients asking for that name get the default certificate if it covers the \
             name, else no TLS.",
            task!(rm_cert),
        ),
        CommandDef::ranked(
            "cert_info",
            "show a certificate",
            "[{-name (common name)}]/[text]",
            "Shows the subject, issuer, whether it is self-signed, its validity dates and its \
             SHA-256 fingerprint; without -name, the certificate served by default.",
            reply!(cert_info),
        ),
        CommandDef::ranked(
            "ls_certs",
            "list the certificates per common name",
            "[none]/[text]",
            "Lists the certificates added with add_cert, and the default one.",
            task!(ls_certs),
        ),
    ]
}

fn name_arg(args: &Args) -> Result<String, Fail> {
    let name = arg(args, "-name")?;
    if !tls::valid_common_name(name) {
        return refused(
            "The common name must be 1-200 letters, digits or . - _ : * and not start with a dot.",
        );
    }
    Ok(name.to_ascii_lowercase())
}

fn read_file(args: &Args, key: &str) -> Result<Vec<u8>, Fail> {
    let path = arg(args, key)?;
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) => refused(format!("{path}: {e}.")),
    }
}

async fn confirm(ctx: &mut CmdCtx, question: &str) -> bool {
    ctx.text(&format!("{question} (y/n): ")).await;
    ctx.next_text()
        .await
        .is_some_and(|a| a.trim().eq_ignore_ascii_case("y"))
}

fn stored(ctx: &CmdCtx, name: &str) -> Option<String> {
    tls::named_pems(&ctx.host.config.data_dir)
        .into_iter()
        .find(|(cn, _)| cn == name)
        .map(|(_, pem)| pem)
}

async fn add_cert(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let name = name_arg(args)?;
    let cert = read_file(args, "-cert")?;
    let key = read_file(args, "-priv")?;
    let Ok(cert) = String::from_utf8(cert) else {
        return refused("The certificate file is not PEM text.");
    };
    if stored(ctx, &name).is_some()
        && !args.has("-force")
        && !confirm(ctx, &format!("Replace the certificate of {name}?")).await
    {
        ctx.text("Cancelled.\n").await;
        return Ok(());
    }
    let info = match tls::install_named(&ctx.host.config.data_dir, &name, &cert, &key) {
        Ok(info) => info,
        Err(crate::Error::Invalid(why)) => return refused(format!("{why}.")),
        Err(e) => return Err(e.into()),
    };
    ctx.host.reload_tls()?;
    tracing::info!(%name, fingerprint = %info.fingerprint, "certificate added");
    ctx.text(&format!(
        "Certificate for {name} added (SHA-256 {}); new connections get it.\n",
        info.fingerprint
    ))
    .await;
    Ok(())
}

async fn rm_cert(ctx: &mut CmdCtx, input: Input) -> CmdResult {
    let args = &input.args;
    let name = name_arg(args)?;
    if stored(ctx, &name).is_none() {
        return refused(format!("No certificate was added for {name}."));
    }
    if !args.has("-force") && !confirm(ctx, &format!("Remove the certificate of {name}?")).await {
        ctx.text("Cancelled.\n").await;
        return Ok(());
    }
    tls::remove_named(&ctx.host.config.data_dir, &name)?;
    ctx.host.reload_tls()?;
    tracing::info!(%name, "certificate removed");
    ctx.text(&format!("Certificate for {name} removed.\n"))
        .await;
    Ok(())
}

async fn cert_info(ctx: &CmdCtx, args: &Args, _caller: u32) -> Outcome {
    let (label, pem) = match args.value("-name") {
        Some(_) => {
            let name = name_arg(args)?;
            let Some(pem) = stored(ctx, &name) else {
                return refused(format!("No certificate was added for {name}."));
            };
            (name, pem)
        }
        None => ("(default)".to_owned(), ctx.host.tls().cert_pem.clone()),
    };
    let info = CertInfo::from_pem(&pem)?;
    let now = ctx.host.clock.now();
    let state = if info.not_after <= now {
        "EXPIRED".to_owned()
    } else if info.not_before > now {
        "not valid yet".to_owned()
    } else {
        let days = (info.not_after - now) / 86_400;
        if days < tls::EXPIRY_WARNING_DAYS {
            format!("valid, expires in {days} days")
        } else {
            format!("valid for {days} more days")
        }
    };
    Ok(format!(
        "common name: {label}\nsubject:     {}\nissuer:      {}\nself-signed: {}\nnot before:  {}\nnot after:   {}\nstate:       {state}\nDNS names:   {}\nSHA-256:     {}\n",
        info.subject,
        info.issuer,
        if info.self_signed { "yes" } else { "no" },
        info.not_before,
        info.not_after,
        info.dns_names.join(", "),
        info.fingerprint,
    ))
}

async fn ls_certs(ctx: &mut CmdCtx, _input: Input) -> CmdResult {
    let mut rows = Vec::new();
    let default = ctx.host.tls();
    let mut push = |name: String, pem: &str| {
        if let Ok(info) = CertInfo::from_pem(pem) {
            rows.push(vec![name, info.not_after.to_string(), info.fingerprint]);
        }
    };
    push(
        format!("(default: {})", default.common_names.join(" ")),
        &default.cert_pem,
    );
    for (name, pem) in tls::named_pems(&ctx.host.config.data_dir) {
        push(name, &pem);
    }
    show_table(ctx, &["common_name", "not_after", "sha256"], rows).await;
    Ok(())
}
