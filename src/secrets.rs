//! Passwords for the CLI: from a terminal prompt (not echoed), a file, or standard input;
//! never from a command line unless the user insists (`--password`, documented as unsafe).

use std::io::{BufRead as _, IsTerminal as _};
use std::path::Path;

use anyhow::{Context as _, bail};

/// The first line of a file.
pub(crate) fn from_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file '{}'", path.display()))?;
    let line = text.lines().next().unwrap_or_default().to_string();
    if line.is_empty() {
        bail!("the password file '{}' is empty", path.display());
    }
    Ok(line)
}

/// A password typed at the terminal.
pub(crate) fn prompt(question: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no password given: type it at a terminal, or use MCX_PASSWORD or --password-file");
    }
    let password = rpassword::prompt_password(question).context("cannot read the password")?;
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// A new password: typed twice at a terminal, else one line of standard input.
pub(crate) fn new_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = prompt("new password: ")?;
        let again = prompt("the same again: ")?;
        if first != again {
            bail!("the two passwords differ; nothing was printed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}
