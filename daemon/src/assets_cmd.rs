//! `iggy-warden generate-assets DIR` (hidden): writes the man pages and the shell
//! completions the Debian package ships, generated from the command-line definition
//! itself so they cannot drift from it. `packaging/build-deb.sh` runs it before
//! `cargo deb`.
//!
//! Layout of DIR:
//! - `man/iggy-warden.1` and one page per subcommand (`man/iggy-warden-recover.1`, ...)
//! - `completions/iggy-warden.bash`, `completions/_iggy-warden` (zsh),
//!   `completions/iggy-warden.fish`

use anyhow::Context;
use clap_complete::Shell;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct AssetsArgs {
    /// Folder to write `man/` and `completions/` into (created if missing).
    pub out_dir: PathBuf,
}

pub fn run(args: &AssetsArgs, cmd: clap::Command) -> anyhow::Result<u8> {
    let completion_cmd = without_hidden_subcommands(&cmd);
    let mut cmd = without_help_subcommand(cmd);
    cmd.build();
    let man_dir = args.out_dir.join("man");
    let completion_dir = args.out_dir.join("completions");
    for dir in [&man_dir, &completion_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_man_pages(&cmd, &man_dir)?;
    let name = cmd.get_name().to_string();
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut completion_cmd.clone(), &name, &mut bytes);
        if shell == Shell::Bash {
            bytes = fix_bash_hyphenated_name(&name, bytes)?;
        }
        write(&completion_dir.join(file), &bytes)?;
    }
    Ok(crate::exit::OK)
}

/// clap_complete's bash script (4.6.11 and earlier) never completes past a subcommand
/// when the binary's name has a hyphen: its dispatch loop spells the state
/// `iggy__warden__subcmd__recover` but its case labels `iggy__subcmd__warden__subcmd__recover`
/// (clap-rs/clap#6421, #6529). Respell the labels the loop's way; a no-op once fixed
/// upstream.
fn fix_bash_hyphenated_name(name: &str, script: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let script = String::from_utf8(script).context("bash completion is not UTF-8")?;
    let broken = name.replace('-', "__subcmd__");
    let loop_spelling = name.replace('-', "__");
    Ok(script.replace(&broken, &loop_spelling).into_bytes())
}

/// A copy of the (not yet built) command without its hidden subcommands, which
/// clap_complete would otherwise offer.
fn without_hidden_subcommands(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(leak(cmd.get_name()))
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(version) = cmd.get_version() {
        out = out.version(leak(version));
    }
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    out
}

/// The same command without clap's `help` subcommand at any level, for the man
/// pages: `iggy-warden help ...` only repeats `--help`, and would add a page per
/// subcommand again.
fn without_help_subcommand(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd.disable_help_subcommand(true);
    for name in names {
        cmd = cmd.mut_subcommand(name, without_help_subcommand);
    }
    cmd
}

/// clap takes `&'static str` names (without its `string` feature); this command runs
/// once and exits.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// The main page, with the sections below, then the subcommands' pages.
fn write_man_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    let name = cmd.get_name().to_string();
    let mut main = String::from_utf8(render(cmd.clone())?).context("man page is not UTF-8")?;
    match main.find("\n.SH VERSION") {
        Some(at) => main.insert_str(at + 1, MAIN_PAGE_SECTIONS),
        None => main.push_str(MAIN_PAGE_SECTIONS),
    }
    write(&dir.join(format!("{name}.1")), main.as_bytes())?;
    write_subcommand_pages(cmd, &name, cmd.get_version(), dir)
}

/// One page per visible subcommand, at every depth: `iggy-warden-journal-show.1`, the
/// names the SUBCOMMANDS sections refer to.
fn write_subcommand_pages(
    parent: &clap::Command,
    parent_page: &str,
    version: Option<&str>,
    dir: &Path,
) -> anyhow::Result<()> {
    for sub in parent.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = leak(&format!("{parent_page}-{}", sub.get_name()));
        let mut renamed = sub.clone().name(page).display_name(page);
        if let Some(version) = version {
            renamed = renamed.version(leak(version));
        }
        write(&dir.join(format!("{page}.1")), &render(renamed)?)?;
        write_subcommand_pages(sub, page, version, dir)?;
    }
    Ok(())
}

/// Sections of the main page that the command line cannot tell: how the commands
/// fit together under systemd, and the recovery modes with their two defaults. Raw roff.
const MAIN_PAGE_SECTIONS: &str = r#".SH "RECOVERY MODES"
What \fBrecover\fR and \fBreplay \-\-apply\fR may repair on their own (\fB\-\-mode\fR,
\fBIGGY_WARDEN_MODE\fR or \fBmode\fR in the configuration file). Every byte a repair
removes goes to the quarantine first, for \fBrestore\fR.
.TP
\fBtolerate\-tail\fR
The default of the command line: repairs what a crash leaves at the end of a
partition and in rotations (a torn, zero\-filled or corrupt last message, index
damage, half a rotation, an empty newest pair). Damage before the end of a partition
changes nothing in the whole directory and exits 3.
.TP
\fBpoint\-in\-time\fR
Cuts each partition at its first damage, wherever it is; later segments go to
quarantine whole.
.TP
\fBsalvage\fR
The mode of the packaged \fB/etc/iggy\-warden/config.toml\fR: keeps every message
whose XXH3 is valid, wherever it is found. A damaged partition is re\-laid from its
first damaged segment on: every valid message in offset order, one segment per run of
consecutive offsets, named by its first offset, indexes rebuilt, no segment larger than
the partition's largest. The replaced files are quarantined whole and restorable. When
the disk lacks room for the new segments it exits 2 and changes nothing.
.TP
\fBabsolute\fR
Repairs nothing; any problem exits 3.
.SH "EXIT STATUS"
.TP
\fB0\fR
Healthy, or repaired and ready to start.
.TP
\fB1\fR
\fBcheck\fR found problems (nothing was changed).
.TP
\fB2\fR
The command could not run (bad configuration, unreadable files, another process
holds the journal, not enough free disk space for a salvage); nothing was left
half\-done.
.TP
\fB3\fR
\fBrecover\fR or \fBreplay \-\-apply\fR: the mode forbids a needed repair; an operator
must decide. Nothing was changed.
.SH ENVIRONMENT
.TP
\fBIGGY_WARDEN_CONFIG\fR, \fBIGGY_WARDEN_DATA_DIR\fR, \fBIGGY_WARDEN_STATE_DIR\fR, \fBIGGY_WARDEN_MODE\fR, \fBIGGY_WARDEN_CHECKPOINT_INTERVAL_MS\fR, \fBIGGY_WARDEN_VERIFY_INTERVAL_MS\fR
Defaults for \fB\-\-config\fR, \fB\-\-data\-dir\fR, \fB\-\-state\-dir\fR, \fB\-\-mode\fR,
\fB\-\-checkpoint\-interval\-ms\fR and \fB\-\-verify\-interval\-ms\fR. Flags win over the environment, which wins over
the configuration file.
.TP
\fBSTATE_DIRECTORY\fR
Set by systemd's \fBStateDirectory=\fR; the state directory when neither flag,
environment nor file names one (else \fI<data\-dir>\fR\fB.warden\fR).
.TP
\fBIGGY_WARDEN_LOG\fR
Log filter (tracing syntax), \fBinfo\fR by default.
.SH FILES
.TP
\fB/etc/iggy\-warden/config.toml\fR
Configuration read by both systemd units (keys \fBdata_dir\fR, \fBstate_dir\fR,
\fBmode\fR, \fBcheckpoint_interval_ms\fR, \fBverify_interval_ms\fR, ...). Pass it by hand with
\fB\-\-config /etc/iggy\-warden/config.toml\fR.
.TP
\fB/var/lib/iggy\-warden\fR
State directory: the journal, the quarantine (what repairs took out, for
\fBrestore\fR) and \fBsidecar.sock\fR, over which \fBrecover\fR, \fBreplay\fR and
\fBrestore\fR ask a running sidecar to hand over the journal.
.TP
\fBiggy\-warden.service\fR
The sidecar (\fBiggy\-warden watch\fR). \fBsystemctl enable iggy\-warden\fR makes
iggy\-server.service pull it in; it starts before the server. Its status line:
\fBsystemctl status iggy\-warden\fR.
.TP
\fBiggy\-server.service.d/10\-iggy\-warden.conf\fR
Drop\-in running \fBiggy\-warden recover\fR before every start of iggy\-server; a
non\-zero exit keeps the server stopped, with the reason in
\fBjournalctl \-u iggy\-server\fR.
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.service\fR(5)
"#;

fn render(cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut bytes)
        .context("cannot render a man page")?;
    Ok(bytes)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The committed man pages and completions (which `cargo deb` packages) must be
    /// what the current command line generates. To refresh them:
    /// `IGGY_WARDEN_UPDATE_ASSETS=1 cargo test -p iggy-warden assets` (or
    /// `cargo run -p iggy-warden -- generate-assets packaging/generated`).
    #[test]
    fn committed_assets_are_up_to_date() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/generated");
        if std::env::var_os("IGGY_WARDEN_UPDATE_ASSETS").is_some() {
            let _ = std::fs::remove_dir_all(&committed);
            let args = AssetsArgs {
                out_dir: committed.clone(),
            };
            run(&args, crate::Cli::command()).unwrap();
        }
        let fresh = tempfile::tempdir().unwrap();
        let args = AssetsArgs {
            out_dir: fresh.path().to_path_buf(),
        };
        run(&args, crate::Cli::command()).unwrap();
        let want = list(fresh.path());
        let have = list(&committed);
        let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&have),
            names(&want),
            "packaging/generated has other files than the CLI generates: refresh it with \
             IGGY_WARDEN_UPDATE_ASSETS=1 cargo test -p iggy-warden assets"
        );
        for ((path, have), (_, want)) in have.iter().zip(&want) {
            assert!(
                have == want,
                "packaging/generated/{} is stale: refresh it with \
                 IGGY_WARDEN_UPDATE_ASSETS=1 cargo test -p iggy-warden assets",
                path.display()
            );
        }
    }

    #[test]
    fn man_pages_cover_every_visible_subcommand_and_hide_the_hidden_one() {
        let out = tempfile::tempdir().unwrap();
        let args = AssetsArgs {
            out_dir: out.path().to_path_buf(),
        };
        run(&args, crate::Cli::command()).unwrap();
        let main = std::fs::read_to_string(out.path().join("man/iggy-warden.1")).unwrap();
        for sub in ["check", "recover", "replay", "restore", "watch"] {
            assert!(main.contains(sub), "main page lacks {sub}");
            let page = out.path().join(format!("man/iggy-warden-{sub}.1"));
            assert!(page.is_file(), "{} missing", page.display());
        }
        assert!(!main.contains("generate-assets"));
        assert!(!out
            .path()
            .join("man/iggy-warden-generate-assets.1")
            .exists());
        let bash =
            std::fs::read_to_string(out.path().join("completions/iggy-warden.bash")).unwrap();
        assert!(bash.contains("recover") && !bash.contains("generate-assets"));
        assert!(out.path().join("completions/_iggy-warden").is_file());
        assert!(out.path().join("completions/iggy-warden.fish").is_file());
    }

    /// Every `iggy-warden...(1)` a page refers to (SUBCOMMANDS sections) is a page we
    /// write, at any depth.
    #[test]
    fn every_referenced_page_exists() {
        let out = tempfile::tempdir().unwrap();
        let args = AssetsArgs {
            out_dir: out.path().to_path_buf(),
        };
        run(&args, crate::Cli::command()).unwrap();
        let man = out.path().join("man");
        let mut refs = 0;
        for (path, bytes) in list(&man) {
            let text = String::from_utf8(bytes).unwrap().replace("\\-", "-");
            for (at, _) in text.match_indices("(1)") {
                let start = text[..at]
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .map_or(0, |i| i + 1);
                let name = &text[start..at];
                if name.starts_with("iggy-warden") {
                    refs += 1;
                    assert!(
                        man.join(format!("{name}.1")).is_file(),
                        "{} refers to {name}(1), which is not generated",
                        path.display()
                    );
                }
            }
        }
        assert!(refs >= 5, "found only {refs} page references");
    }

    /// Bash really completes a subcommand's options (see fix_bash_hyphenated_name).
    #[test]
    fn bash_completes_subcommand_options() {
        let out = tempfile::tempdir().unwrap();
        let args = AssetsArgs {
            out_dir: out.path().to_path_buf(),
        };
        run(&args, crate::Cli::command()).unwrap();
        let script = out.path().join("completions/iggy-warden.bash");
        let complete = |words: &str| -> String {
            let shell = format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _iggy__warden iggy-warden \"${{COMP_WORDS[COMP_CWORD]}}\" \
                 \"${{COMP_WORDS[COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[*]}}\"",
                script.display()
            );
            let out = std::process::Command::new("bash")
                .args(["--norc", "-c", &shell])
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(complete("iggy-warden rec").trim(), "recover");
        let opts = complete("iggy-warden recover --d");
        assert!(opts.contains("--data-dir"), "{opts:?}");
        let opts = complete("iggy-warden replay --a");
        assert!(opts.contains("--apply"), "{opts:?}");
    }

    /// Every file under `dir`, as (path relative to `dir`, bytes), sorted.
    fn list(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                    out.push((rel, std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
}
