//! `tidelog user create|delete|list`: SCRAM credentials of users (the password is salted here and
//! never sent).

use std::io::BufRead as _;

use anyhow::{Context as _, bail};

use super::args::{Format, Mechanism, UserCommand};
use super::output::{Table, print, print_json, show};
use crate::kafka::client::{self, Client, ScramHash};

/// Longest password read from stdin.
const PASSWORD_BYTES_MAX: usize = 1024;

fn mechanism(m: Mechanism) -> ScramHash {
    match m {
        Mechanism::ScramSha256 => ScramHash::Sha256,
        Mechanism::ScramSha512 => ScramHash::Sha512,
    }
}

pub(crate) fn run(
    client: &mut Client,
    format: Format,
    command: &UserCommand,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            name,
            mechanism: m,
            password,
            password_stdin,
            iterations,
        } => {
            let password = match password {
                Some(p) => p.clone(),
                None if *password_stdin => read_password()?,
                None => bail!("give --password or --password-stdin"),
            };
            client::upsert_user(client, name, mechanism(*m), &password, *iterations)?;
            confirm(format, "created", name, mechanism(*m))
        }
        UserCommand::Delete { name, mechanism: m } => {
            client::delete_user(client, name, mechanism(*m))?;
            confirm(format, "deleted", name, mechanism(*m))
        }
        UserCommand::List => {
            let users = client::list_users(client)?;
            let mut table = Table::new(&["USER", "MECHANISMS"]);
            for u in &users {
                let mechanisms: Vec<String> = u
                    .credentials
                    .iter()
                    .map(|(m, iterations)| format!("{m} ({iterations} iterations)"))
                    .collect();
                table.row(vec![u.user.clone(), mechanisms.join(", ")]);
            }
            show(format, &[table], &users)
        }
    }
}

fn confirm(format: Format, verb: &str, name: &str, hash: ScramHash) -> anyhow::Result<()> {
    let m = client::mechanism_name(hash);
    match format {
        Format::Table => print(&format!("{verb} {m} credential of user {name}\n")),
        Format::Json => print_json(&serde_json::json!({ verb: name, "mechanism": m })),
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    if password.len() > PASSWORD_BYTES_MAX {
        bail!("the password is longer than {PASSWORD_BYTES_MAX} bytes");
    }
    Ok(password.to_owned())
}
