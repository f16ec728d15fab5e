//! The transfer progress bar on a real terminal: `mrci run ... upload` and `download` in a
//! pseudo-terminal against a host with the file commands on draw the bar (bytes, rate, time
//! left) and leave its finished state on the screen before the summary line; the same
//! commands without a terminal draw nothing on stderr.
//!
//! Nothing here depends on how fast the transfer runs: indicatif draws the finished bar once
//! more when the transfer completes, whatever it drew (or skipped) in between, and the
//! summary line is printed only after that.

use expectrl::Expect as _;

use crate::support::{Host, expect};

/// 3 MiB: three chunks, so the bar has a total to show.
const SIZE: usize = 3 << 20;

fn contents() -> Vec<u8> {
    (0..SIZE).map(|i| (i % 251) as u8).collect()
}

/// The bar's finished state, as it must appear on the terminal (see `BAR_TEMPLATE`).
fn assert_finished_bar(screen: &str, label: &str) {
    assert!(screen.contains(&format!("{label} [")), "label: {screen:?}");
    assert!(screen.contains("3.00 MiB/3.00 MiB"), "bytes: {screen:?}");
    assert!(screen.contains("iB/s"), "rate: {screen:?}");
    assert!(screen.contains("ETA"), "time left: {screen:?}");
}

#[test]
fn the_progress_bar_is_drawn_on_a_terminal_and_only_there() {
    let host = Host::start_with_files();
    drop(host.first_login("admin"));
    let password_file = host.password_file();
    let pw = password_file.to_str().unwrap();
    let src = host.path("src.bin");
    std::fs::write(&src, contents()).unwrap();
    let login = ["--user", "admin", "--password-file", pw];

    let mut up =
        host.run_in_pty(&[&login[..], &["upload", src.to_str().unwrap(), "up.bin"]].concat());
    let screen = expect(&mut up, &format!("Uploaded {SIZE} bytes to up.bin."));
    up.expect(expectrl::Eof).unwrap();
    assert_finished_bar(&screen, "up.bin");
    assert_eq!(
        std::fs::read(host.path("files/up.bin")).unwrap(),
        contents()
    );

    let back = host.path("back.bin");
    let back_s = back.to_str().unwrap();
    let mut down = host.run_in_pty(&[&login[..], &["download", "up.bin", back_s]].concat());
    let screen = expect(&mut down, &format!("Downloaded {SIZE} bytes to {back_s}."));
    down.expect(expectrl::Eof).unwrap();
    assert_finished_bar(&screen, "up.bin");
    assert_eq!(std::fs::read(&back).unwrap(), contents());

    // Without a terminal: the same transfers, the summaries on stdout, no bar anywhere.
    let out = host.run(&[&login[..], &["upload", src.to_str().unwrap(), "up2.bin"]].concat());
    let down = host.run(
        &[
            &login[..],
            &[
                "download",
                "up2.bin",
                host.path("back2.bin").to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    for out in [out, down] {
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{out:?}");
        assert!(stdout.contains(&format!("{SIZE} bytes")), "{stdout}");
        for bar in ["MiB/", "ETA", "[="] {
            assert!(
                !stderr.contains(bar) && !stdout.contains(bar),
                "a bar without a terminal: {stdout:?} {stderr:?}"
            );
        }
    }
    assert_eq!(std::fs::read(host.path("back2.bin")).unwrap(), contents());
}
