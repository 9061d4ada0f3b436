//! How the process ends: its exit code (one meaning each, listed in `--help` and the README)
//! and the one-line error message on stderr.

use std::process::ExitCode;

/// The exit codes of every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did all it was asked.
    Ok = 0,
    /// `query`: no indicator covers any of the values (like grep's "no match").
    NoMatch = 1,
    /// The command line was refused (unknown option, value out of range); nothing was done.
    Usage = 2,
    /// Some input was unreadable, corrupt or cut short (or shrank while read): what could be
    /// read was processed and its output written, the rest is reported on stderr.
    Partial = 3,
    /// The command failed (config, snapshot, data directory, output).
    Error = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// The list shown after `trawl --help`.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  query: no indicator covers any of the values
  2  usage: the command line was refused (unknown option, value out of range); nothing was done
  3  partial: some input was unreadable, corrupt, cut short or shrank while read; the rest was
     processed and its output written
  4  error: the command failed (config, snapshot, data directory, output)";

/// A command-line value refused after parsing (it needs the snapshot or the file system to
/// check): the process exits with [`Exit::Usage`].
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The exit code for a failed command: usage errors are 2, everything else 4.
pub fn code_of(e: &anyhow::Error) -> Exit {
    if e.chain().any(|c| c.is::<Usage>()) {
        Exit::Usage
    } else {
        Exit::Error
    }
}

/// An error chain as one line, each cause said once ([`sensor::error_chain::one_line`]).
pub fn render(e: &anyhow::Error) -> String {
    let e: &(dyn std::error::Error + 'static) = e.as_ref();
    sensor::error_chain::one_line(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[derive(Debug)]
    struct WithSource(std::io::Error);
    impl std::fmt::Display for WithSource {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "/x.pcap: {}", self.0)
        }
    }
    impl std::error::Error for WithSource {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = Err::<(), _>(WithSource(io()))
            .context("loading /x.pcap")
            .unwrap_err();
        assert_eq!(render(&e), format!("loading /x.pcap: {}", io()));
        let e = Err::<(), _>(WithSource(io()))
            .context("replaying captures")
            .unwrap_err();
        assert_eq!(render(&e), format!("replaying captures: /x.pcap: {}", io()));
        let e = anyhow::anyhow!("plain");
        assert_eq!(render(&e), "plain");
    }

    #[test]
    fn usage_errors_exit_2_others_4() {
        let e = anyhow::Error::new(Usage("--feed x: no such feed".into())).context("export");
        assert_eq!(code_of(&e), Exit::Usage);
        assert_eq!(code_of(&anyhow::anyhow!("disk full")), Exit::Error);
    }
}
