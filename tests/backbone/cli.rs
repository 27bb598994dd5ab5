//! Every subcommand answers `--help`.

use std::process::Command;

#[test]
fn every_subcommand_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["dev"],
        &["migrate"],
        &["projections"],
        &["projections", "rebuild"],
        &["projections", "status"],
        &["events"],
        &["events", "show"],
        &["events", "encrypt-legacy"],
        &["admin"],
        &["admin", "grant"],
        &["admin", "revoke"],
    ];
    for args in commands {
        let output = Command::new(env!("CARGO_BIN_EXE_jukebox"))
            .args(*args)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?} --help failed");
        assert!(text.contains("Usage: jukebox"), "{args:?}: {text}");
    }
}
