//! The built binary's outer contract: its name, version and commands.

use crate::BIN;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run iggy-warden");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn version_is_the_package_version() {
    let (code, out) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("iggy-warden {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_every_operator_command() {
    let (code, out) = run(&["--help"]);
    assert_eq!(code, 0);
    for command in ["check", "recover", "replay", "restore", "watch", "journal"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "`{command}` missing from --help:\n{out}"
        );
    }
    assert!(
        !out.contains("generate-assets"),
        "the packaging helper must stay hidden:\n{out}"
    );
}
