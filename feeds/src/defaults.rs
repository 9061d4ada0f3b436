//! The curated default feed set `trawl init` writes: one commented `trawl.toml`
//! (`feeds/src/defaults/trawl.toml`), kept as a file so it reads and diffs as the user sees it.

/// The `trawl.toml` `trawl init` writes.
pub const TRAWL_TOML: &str = include_str!("defaults/trawl.toml");

/// A disabled config line of [`TRAWL_TOML`]: `# [[feed]]` or `# key = value`.
fn disabled_line(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    if rest == "[[feed]]" {
        return Some(rest);
    }
    let (key, _) = rest.split_once(" = ")?;
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(rest)
}

/// [`TRAWL_TOML`] with every disabled feed and key enabled (what a user gets after removing
/// the leading `# ` of their lines): tests parse it to prove those lines are valid config.
pub fn with_everything_enabled() -> String {
    let mut out = String::with_capacity(TRAWL_TOML.len());
    for line in TRAWL_TOML.lines() {
        out.push_str(disabled_line(line).unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_template_and_its_enabled_variant_parse() {
        let enabled = Config::from_toml_str(TRAWL_TOML).unwrap();
        let all = Config::from_toml_str(&with_everything_enabled()).unwrap();
        assert!(enabled.feeds.len() >= 15, "{}", enabled.feeds.len());
        // Every disabled `[[feed]]` became a feed; nothing else changed.
        let disabled = TRAWL_TOML.lines().filter(|l| *l == "# [[feed]]").count();
        assert!(disabled >= 8, "{disabled}");
        assert_eq!(all.feeds.len(), enabled.feeds.len() + disabled);
        for f in &enabled.feeds {
            assert!(all.feeds.iter().any(|g| g.name == f.name), "{}", f.name);
        }
        // Every feed states its provider, type of content, confidence, severity, TLP, tags
        // and a refresh interval.
        for f in &all.feeds {
            assert!(f.provider.is_some(), "{}: provider", f.name);
            assert!(f.confidence.is_some() || !f.map.is_empty(), "{}", f.name);
            assert!(f.severity.is_some(), "{}: severity", f.name);
            assert!(f.tlp.is_some(), "{}: tlp", f.name);
            assert!(!f.tags.is_empty(), "{}: tags", f.name);
            let refresh = f.refresh.map(|r| r.0.as_secs());
            assert!(refresh.is_some_and(|r| r >= 3600), "{}: refresh", f.name);
            assert!(f.source.starts_with("https://"), "{}: {}", f.name, f.source);
        }
        assert_eq!(all.data_dir(), Some(std::path::PathBuf::from("data")));
    }

    #[test]
    fn explanations_are_not_taken_for_config() {
        assert_eq!(disabled_line("# name = \"x\""), Some("name = \"x\""));
        assert_eq!(disabled_line("# [[feed]]"), Some("[[feed]]"));
        assert_eq!(disabled_line("# Terms: free = yes"), None);
        assert_eq!(disabled_line("#name = 1"), None);
        assert_eq!(disabled_line("name = 1"), None);
    }
}
