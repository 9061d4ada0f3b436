//! `trawl serve` and `trawl token ...`: the command line over the `server` crate.

use crate::cli::{DataArgs, TokenAction};
use crate::setup::{data_dir, load_config};
use anyhow::{bail, Context, Result};
use server::config::ServerConfig;
use server::serve::{open_store, run, ServeOptions};
use server::store::Store;
use server::token::{Grant, Secret};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The data directory and `[server]` table, as every command resolves them.
pub(crate) fn server_setup(data: &DataArgs) -> Result<(PathBuf, ServerConfig)> {
    let config = load_config(data.config.as_deref())?;
    let dir = data_dir(data, config.as_ref().map(|(c, _)| c));
    let server = match &config {
        Some((c, path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut s = ServerConfig::from_config_text(&text)
                .map_err(|e| crate::exit::Usage(format!("{}: {e}", path.display())))?;
            // Relative certificate paths are relative to the config file, like feed paths.
            s.tls_cert = s.tls_cert.map(|p| c.resolve(&p));
            s.tls_key = s.tls_key.map(|p| c.resolve(&p));
            s.signing_key = s.signing_key.map(|p| c.resolve(&p));
            s
        }
        None => ServerConfig::default(),
    };
    Ok((dir, server))
}

/// `trawl serve`.
pub fn serve(
    data: &DataArgs,
    listen: Option<String>,
    ready_file: Option<PathBuf>,
) -> Result<ExitCode> {
    let (dir, config) = server_setup(data)?;
    run(ServeOptions {
        data: dir.clone(),
        config,
        listen,
        ready_file,
        poll: Duration::from_millis(500),
    })
    .with_context(|| format!("trawl serve (data directory {})", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn store(data: &DataArgs) -> Result<std::sync::Arc<dyn Store>> {
    let (dir, config) = server_setup(data)?;
    open_store(&dir, &config)
        .with_context(|| format!("opening the server store in {}", dir.display()))
}

fn now() -> i64 {
    server::http::now()
}

/// `trawl token ...`.
pub fn token(action: TokenAction) -> Result<ExitCode> {
    match action {
        TokenAction::Create {
            data,
            user,
            groups,
            read,
            write,
            admin,
            max_tlp,
            itypes,
            expires,
            format,
        } => {
            let user = user.trim().to_string();
            if user.is_empty() || user.chars().any(char::is_control) {
                bail!(crate::exit::Usage(
                    "--user: a name, without control characters".into()
                ));
            }
            let groups = if groups.is_empty() {
                vec![matcher::DEFAULT_GROUP.to_string()]
            } else {
                groups
            };
            for g in &groups {
                feeds::config::check_group_name(g)
                    .map_err(|e| crate::exit::Usage(format!("--groups: {e}")))?;
            }
            let expires = match expires {
                Some(d) => {
                    let d: feeds::config::DurationSpec = d
                        .parse()
                        .map_err(|e: String| crate::exit::Usage(format!("--expires: {e}")))?;
                    let secs = i64::try_from(d.0.as_secs()).unwrap_or(i64::MAX);
                    Some(now().saturating_add(secs))
                }
                None => None,
            };
            let mut grant = Grant {
                user,
                groups,
                read: read || !(write || admin),
                write,
                admin,
                max_tlp,
                itypes,
                expires,
            };
            grant.tidy();
            let secret = Secret::generate()
                .map_err(|e| anyhow::anyhow!("reading the system's random source: {e}"))?;
            let t = store(&data)?.create_token(&secret.hash(), &grant, now())?;
            if format == "json" {
                let mut v = server::http::token_json(&t);
                if let Some(o) = v.as_object_mut() {
                    o.insert("token".into(), serde_json::json!(secret.expose()));
                }
                println!("{v}");
            } else {
                println!("{}", secret.expose());
                eprintln!(
                    "token {} for {} (groups {}; {}; max TLP {}{}): shown once, store it now",
                    t.hash_prefix,
                    t.grant.user,
                    t.grant.groups.join(","),
                    rights(&t.grant),
                    t.grant.max_tlp,
                    t.grant
                        .expires
                        .and_then(server::query::format_time)
                        .map(|e| format!("; expires {e}"))
                        .unwrap_or_default(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenAction::List { data, format } => {
            let list = store(&data)?.tokens()?;
            if format == "json" {
                for t in &list {
                    println!("{}", server::http::token_json(t));
                }
            } else {
                println!(
                    "{:<4} {:<8} {:<16} {:<24} {:<16} {:<12} {:<20} state",
                    "id", "hash", "user", "groups", "rights", "max tlp", "expires"
                );
                for t in &list {
                    let state = if t.revoked {
                        "revoked"
                    } else if t.grant.expires.is_some_and(|e| e <= now()) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<4} {:<8} {:<16} {:<24} {:<16} {:<12} {:<20} {state}",
                        t.id,
                        t.hash_prefix,
                        t.grant.user,
                        t.grant.groups.join(","),
                        rights(&t.grant),
                        t.grant.max_tlp.as_str(),
                        t.grant
                            .expires
                            .and_then(server::query::format_time)
                            .unwrap_or_else(|| "never".into()),
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenAction::Revoke { data, token, user } => {
            let s = store(&data)?;
            let (n, what) = match (token, user) {
                (Some(t), _) => (
                    s.revoke_hash(&Secret::presented(&t).hash())?,
                    "that token".to_string(),
                ),
                (None, Some(u)) => (s.revoke_user(&u)?, format!("user {u:?}")),
                (None, None) => bail!(crate::exit::Usage("give --token or --user".into())),
            };
            if n == 0 {
                bail!(crate::exit::Usage(format!(
                    "no active token of {what}; `trawl token list` shows them"
                )));
            }
            eprintln!("revoked {n} token(s) of {what}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rights(g: &Grant) -> String {
    let mut r: Vec<&str> = Vec::new();
    if g.read {
        r.push("read");
    }
    if g.write {
        r.push("write");
    }
    if g.admin {
        r.push("admin");
    }
    r.join(",")
}
