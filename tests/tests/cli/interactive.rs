//! The interactive client in a pseudo-terminal: first contact and pinning, the first login
//! with its forced password change, tab completion, local help, an event arriving while a
//! line is being typed, Ctrl-C on a command waiting for input, and background branches.

use expectrl::Expect as _;

use crate::support::{Host, NEW_PASSWORD, expect, type_line, type_text};

#[test]
fn first_connect_asks_and_pins_the_certificate() {
    let host = Host::start();
    let mut client = host.connect(&[]);
    let shown = expect(&mut client, "(y/n)");
    assert!(
        shown.contains(&host.fingerprint),
        "fingerprint shown: {shown}"
    );
    type_line(&mut client, "y");
    expect(&mut client, "Pinned");
    expect(&mut client, "Ready");
    let pins = std::fs::read_to_string(host.known_hosts()).unwrap();
    assert_eq!(
        pins.trim(),
        format!("{} {}", host.target(), host.fingerprint)
    );
    type_line(&mut client, "/quit");
    client.expect(expectrl::Eof).unwrap();

    // The second time the pin matches and nothing is asked.
    let mut again = host.connect(&[]);
    let before = expect(&mut again, "Ready");
    assert!(!before.contains("(y/n)"), "asked again: {before}");
}

#[test]
fn refusing_an_unknown_certificate_does_not_pin_it() {
    let host = Host::start();
    let mut client = host.connect(&[]);
    expect(&mut client, "(y/n)");
    type_line(&mut client, "n");
    expect(&mut client, "not accepted");
    client.expect(expectrl::Eof).unwrap();
    assert!(!host.known_hosts().exists());
}

#[test]
fn first_login_completion_help_and_hidden_passwords() {
    let host = Host::start();
    let otp = host.add_admin("admin");
    let mut client = host.connect(&["--accept-new"]);
    expect(&mut client, "Ready");

    type_line(&mut client, "auth -user admin");
    expect(&mut client, "Enter password");
    type_line(&mut client, &otp);
    expect(&mut client, "You must set a new password");
    type_line(&mut client, NEW_PASSWORD);
    expect(&mut client, "Password changed");
    let seen = expect(&mut client, "Access granted");

    // Tab completes a command name announced after the login; Enter runs it.
    type_text(&mut client, "my_in\t");
    expect(&mut client, "my_info");
    type_line(&mut client, "");
    let seen2 = expect(&mut client, "User name:      admin");
    // The last line of my_info's output; its IDLE follows at once.
    expect(&mut client, "Owner override:");
    assert!(seen2.contains("My info:"), "MY_INFO rendered: {seen2}");
    for secret in [otp.as_str(), NEW_PASSWORD] {
        assert!(
            !seen.contains(secret) && !seen2.contains(secret),
            "a password was echoed"
        );
    }

    // Usage comes from the NEW_CMD texts, locally.
    type_line(&mut client, "my_info -help");
    expect(&mut client, "usage: my_info");
    type_line(&mut client, "help");
    expect(&mut client, "ls_cmds");
    type_line(&mut client, "no_such_cmd");
    expect(&mut client, "Unknown command");
}

#[test]
fn an_event_arrives_while_a_line_is_typed() {
    let host = Host::start();
    let mut client = host.first_login("admin");
    let password_file = host.password_file();

    // Half a command line is on the screen when another session renames the account.
    type_text(&mut client, "ls_cm");
    let other = host.run(&[
        "--user",
        "admin",
        "--password-file",
        password_file.to_str().unwrap(),
        "set_disp_name",
        "-new_name",
        "Chief",
    ]);
    assert!(other.status.success(), "{other:?}");
    expect(&mut client, "Display name: Chief");
    // The half-typed line survived the event; finishing it runs ls_cmds.
    type_line(&mut client, "ds");
    expect(&mut client, "list the commands this session may run");
}

#[test]
fn ctrl_c_stops_a_command_waiting_for_input() {
    let host = Host::start();
    let mut client = host.connect(&["--accept-new"]);
    expect(&mut client, "Ready");

    // Ctrl-C with nothing running only explains how to leave.
    client.send(expectrl::ControlCode::EndOfText).unwrap();
    expect(&mut client, "Ctrl-D");

    // auth waits for a password (PRIV_TEXT); Ctrl-C sends TERM_CMD and it ends.
    type_line(&mut client, "auth -user nobody");
    expect(&mut client, "Enter password");
    client.send(expectrl::ControlCode::EndOfText).unwrap();
    expect(&mut client, "TERM_CMD");
    expect(&mut client, "auth stopped");
    // The next line is a command again, not a password for auth.
    type_line(&mut client, "my_info");
    expect(&mut client, "Logged in:      false");

    // Ctrl-D only means end of input to a line editor that is reading: between two reads the
    // terminal is in cooked mode and would swallow it. The prompt after the output says the
    // editor reads again.
    expect(&mut client, "mrci> ");
    client
        .send(expectrl::ControlCode::EndOfTransmission)
        .unwrap();
    client.expect(expectrl::Eof).unwrap();
}

#[test]
fn a_trailing_ampersand_runs_on_its_own_branch() {
    let host = Host::start();
    let mut client = host.connect(&["--accept-new"]);
    expect(&mut client, "Ready");
    type_line(&mut client, "my_info &");
    expect(&mut client, "[my_info#1] started");
    expect(&mut client, "[my_info#1] Logged in:");
    expect(&mut client, "[my_info#1] done");
}

#[test]
fn the_host_going_away_is_reported_and_reconnect_works() {
    let mut host = Host::start();
    let mut client = host.connect(&["--accept-new"]);
    expect(&mut client, "Ready");
    host.stop();
    expect(&mut client, "Disconnected from");
    type_line(&mut client, "my_info");
    expect(&mut client, "Not connected");
    type_line(&mut client, "/reconnect");
    expect(&mut client, "Cannot connect");

    // Back on the same port with the same certificate: the pin still matches.
    host.restart();
    type_line(&mut client, "/reconnect");
    expect(&mut client, "Connected to");
    expect(&mut client, "Ready");
    type_line(&mut client, "my_info");
    expect(&mut client, "Logged in:      false");
    type_line(&mut client, "/quit");
    client.expect(expectrl::Eof).unwrap();
}
