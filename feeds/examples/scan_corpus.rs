fn main() {
    let root_buf =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/feeds");
    let root = root_buf.as_path();
    let mut files: Vec<_> = walk(root);
    files.sort();
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        let feed = feeds::FeedConfig::new("x", "x");
        let (s, inds) = feeds::update::process_bytes(&bytes, &feed, 1_800_000_000);
        let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
        for i in &inds {
            if !i.derived {
                *by.entry(i.itype.as_str()).or_default() += 1;
            }
        }
        println!(
            "{} [{:?}] acc {} rej {} dup {} der {} skip {} {:?}",
            p.strip_prefix(root).unwrap().display(),
            s.format,
            s.accepted,
            s.rejected,
            s.duplicates,
            s.derived,
            s.skipped,
            by
        );
        for r in s.reject_samples.iter().take(3) {
            println!(
                "    {}: {}",
                r.line,
                r.reason.chars().take(150).collect::<String>()
            );
        }
    }
}
fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = vec![];
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p))
        } else {
            v.push(p)
        }
    }
    v
}
