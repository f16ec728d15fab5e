//! `mrci run` as shell scripts and CI use it: output on stdout for a pipeline, errors on
//! stderr with a failing exit code, script files, and certificate checks without a terminal.

use std::process::Command;

use crate::support::{Host, mrci};

#[test]
fn run_in_a_pipeline_and_fail_on_err() {
    let host = Host::start();
    drop(host.first_login("admin"));
    let password_file = host.password_file();
    let pw = password_file.to_str().unwrap();

    let pipeline = format!(
        "'{}' run {} --known-hosts '{}' --user admin --password-file '{pw}' my_info | grep 'User name: *admin'",
        mrci().display(),
        host.target(),
        host.known_hosts().display(),
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&pipeline)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin"));

    let failed = host.run(&[
        "--user",
        "admin",
        "--password-file",
        pw,
        "cmd_info",
        "-cmd_name",
        "no_such_command",
    ]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("err:"));
    assert!(failed.stdout.is_empty(), "{failed:?}");

    // The password may come from the environment, and scripts stop at the first ERR.
    let script = host.path("script.mrci");
    std::fs::write(
        &script,
        "# two commands, then one that fails\nmy_info\nls_cmds -find my_\ncmd_info -cmd_name nope\nmy_info\n",
    )
    .unwrap();
    let out = Command::new(mrci())
        .arg("run")
        .arg(host.target())
        .arg("--known-hosts")
        .arg(host.known_hosts())
        .args(["--user", "admin", "--script"])
        .arg(&script)
        .env("MRCI_PASSWORD", crate::support::NEW_PASSWORD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout.matches("Logged in:").count(), 1, "{stdout}");
    assert!(stdout.contains("my_info"), "{stdout}");
}

#[test]
fn a_wrong_password_or_a_pending_change_fails_the_login() {
    let host = Host::start();
    let otp = host.add_admin("admin");
    let otp_file = host.path("otp");
    std::fs::write(&otp_file, &otp).unwrap();
    let accept = ["--accept-new", "--user", "admin", "--password-file"];
    let out = host.run(&[&accept[..], &[otp_file.to_str().unwrap(), "my_info"]].concat());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("mrci connect"));

    std::fs::write(&otp_file, "Wrong-Passw0rd!").unwrap();
    let out = host.run(&[&accept[..], &[otp_file.to_str().unwrap(), "my_info"]].concat());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Access denied"));
}

#[test]
fn an_unknown_host_needs_accept_new_without_a_terminal() {
    let host = Host::start();
    let out = host.run(&["my_info"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--accept-new"));
    assert!(!host.known_hosts().exists());

    let out = host.run(&["--accept-new", "my_info"]);
    assert!(out.status.success(), "{out:?}");
    let pins = std::fs::read_to_string(host.known_hosts()).unwrap();
    assert!(pins.contains(&host.fingerprint));
}

#[test]
fn a_changed_certificate_is_refused() {
    let host = Host::start();
    let old = "AA:".repeat(31) + "AA";
    std::fs::write(host.known_hosts(), format!("{} {old}\n", host.target())).unwrap();
    let out = host.run(&["--accept-new", "my_info"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("HOST CERTIFICATE HAS CHANGED"), "{stderr}");
    assert!(stderr.contains(&host.fingerprint), "{stderr}");
    assert!(out.stdout.is_empty());
    // The pin is left as it was.
    let pins = std::fs::read_to_string(host.known_hosts()).unwrap();
    assert!(pins.contains(&old) && !pins.contains(&host.fingerprint));
}
