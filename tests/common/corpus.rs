//! Where the shared corpus is, for every test binary of the workspace (the root's through
//! `tests/common`, the crates' by `#[path]`): one lookup, so a test never silently finds
//! nothing because it guessed the path from another directory.

use std::path::{Path, PathBuf};

/// The shared corpus: `$TRAWL_CORPUS`, else the first `shared/corpus` beside the package's
/// directory or one of its parents (`../shared/corpus` of the repository, also from a git
/// worktree below it). `None`, with a loud line, when absent: `make test` then says that the
/// conformance tests did not run.
pub fn corpus_dir() -> Option<PathBuf> {
    let found = match std::env::var_os("TRAWL_CORPUS") {
        Some(p) => Some(PathBuf::from(p)),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join("shared/corpus"))
            .find(|p| p.is_dir()),
    };
    match found {
        Some(p) if p.is_dir() => Some(p),
        other => {
            eprintln!(
                "CORPUS ABSENT: {} — corpus conformance not checked (set TRAWL_CORPUS)",
                other.map_or_else(|| "../shared/corpus".into(), |p| p.display().to_string())
            );
            None
        }
    }
}
