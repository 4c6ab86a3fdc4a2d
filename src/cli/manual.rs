//! `warden completions SHELL` and `warden man`: shell completions and a
//! man page generated from the clap definitions of the tools and from the
//! server's flag table (`config::flags::FLAGS`), so neither can list a flag
//! the parser does not take, nor miss one it does.
//!
//! The server's flags follow Go's rules, which take every name with one
//! dash or two; clap's model has one-letter short flags and long ones, so
//! a one-letter name is a short flag and every other name a long one
//! (`--sl`, `--DV`: both forms work with warden, as with nats-server).

use std::io::Write;

use clap::{Arg, ArgAction, Command};
use warden::config::flags::{Flag, FLAGS};

/// The server's flags as clap arguments.
fn server_args() -> impl Iterator<Item = Arg> {
    FLAGS.iter().map(server_arg)
}

fn server_arg(flag: &Flag) -> Arg {
    let (short, long): (Vec<&'static str>, Vec<&'static str>) = flag.names.iter().partition(|n| n.len() == 1);
    let mut arg = Arg::new(flag.names[0]);
    if let Some(c) = short.first().and_then(|s| s.chars().next()) {
        arg = arg.short(c);
    }
    let mut long = long.into_iter();
    if let Some(first) = long.next() {
        arg = arg.long(first);
    }
    // The other names complete too; the man page shows them only in the help.
    let aliases: Vec<&'static str> = long.collect();
    arg = match aliases.as_slice() {
        [] => arg.help(flag.help),
        _ => {
            let also: Vec<String> = aliases.iter().map(|a| format!("--{a}")).collect();
            arg.visible_aliases(aliases).help(format!("{} (also {})", flag.help, also.join(", ")))
        }
    };
    match flag.value {
        Some(value) => arg.value_name(value).action(ArgAction::Set),
        None => arg.action(ArgAction::SetTrue),
    }
}

/// The whole command line: `warden [flags]`, `warden serve [flags]` and
/// the tools, as `tools` (the clap definition of the tools) describes them.
pub fn command(tools: Command) -> Command {
    // `-h` and `-v` are the server's flags here, as in nats-server.
    let serve = Command::new("serve")
        .about("Run the broker (the default without a tool name)")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(server_args());
    tools
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(server_args())
        .args_conflicts_with_subcommands(true)
        .subcommand(serve)
}

/// Writes `shell`'s completion script for `cmd` to `out`.
pub fn completions(shell: clap_complete::Shell, mut cmd: Command, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut cmd, "warden", out);
}

/// Writes the man page of `cmd` (section 1, roff) to `out`.
pub fn man(cmd: Command, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(cmd).render(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_server_flag_name_is_in_the_completions_and_the_man_page() {
        let cmd = || command(Command::new("warden").subcommand(Command::new("check")));
        let bash = rendered(|out| completions(clap_complete::Shell::Bash, cmd(), out));
        let page = rendered(|out| man(cmd(), out).unwrap());
        for flag in FLAGS {
            for name in flag.names {
                let dashed = if name.len() == 1 { format!("-{name}") } else { format!("--{name}") };
                assert!(bash.contains(&dashed), "bash completion lacks {dashed}");
                // roff escapes each dash.
                let escaped = dashed.replace('-', "\\-");
                assert!(page.contains(&escaped), "man page lacks {dashed}");
            }
        }
        assert!(bash.contains("check") && bash.contains("serve"));
    }
}
