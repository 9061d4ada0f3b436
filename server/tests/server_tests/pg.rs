//! A real PostgreSQL for the tests, from the Debian package: `initdb` into a temporary
//! directory, `pg_ctl start` on 127.0.0.1 and a free port (as `nobody` when the tests run as
//! root), one fresh database per test. Stopped and removed when the last test holding it
//! drops it (panics included); a watchdog shell does the same if the test process dies
//! without unwinding.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    /// `runuser -u nobody --` when running as root.
    run_as: Vec<String>,
    watchdog: Option<Child>,
    // Last: removed after the server stopped.
    dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/N/bin` holding `initdb`, or a failure saying what to do.
fn binaries() -> PathBuf {
    binaries_in(Path::new("/usr/lib/postgresql"))
}

/// The newest `ROOT/N/bin` holding `initdb`; a panic saying to run `make deps` when none.
fn binaries_in(root: &Path) -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under {}/*/bin: run \
             `make deps` (it installs the Debian package `postgresql`); the server tests run \
             against both SQLite and PostgreSQL",
            root.display()
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl PgCluster {
    /// A new cluster of its own (tests that restart it use this).
    pub fn start() -> PgCluster {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("trawl-pg-")
            .tempdir()
            .expect("temp dir");
        let run_as: Vec<String> = if is_root() {
            let chown = Command::new("chown")
                .arg("nobody")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(chown.success(), "chown nobody {}", dir.path().display());
            ["runuser", "-u", "nobody", "--"].map(String::from).to_vec()
        } else {
            Vec::new()
        };
        let data = dir.path().join("data");
        let mut cluster = PgCluster {
            port: 0,
            bin,
            data,
            run_as,
            watchdog: None,
            dir,
        };
        cluster.watchdog = Some(cluster.spawn_watchdog());
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&cluster.data)
            .args([
                "-U",
                "trawl",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port found free may be taken before PostgreSQL binds it: try a few.
        for _ in 0..5 {
            cluster.port = free_port();
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off",
                cluster.port,
                cluster.dir.path().display()
            );
            let ok = cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&cluster.data)
                .arg("-l")
                .arg(cluster.dir.path().join("log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"])
                .stdout(Stdio::null())
                .status()
                .expect("running pg_ctl start")
                .success();
            if ok {
                return cluster;
            }
        }
        panic!(
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(cluster.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// The cluster shared by the tests running now (started by the first, stopped with the
    /// last).
    pub fn shared() -> Arc<PgCluster> {
        static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.upgrade() {
            return c;
        }
        let c = Arc::new(PgCluster::start());
        *slot = Arc::downgrade(&c);
        c
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://trawl@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A new empty database; its URL.
    pub fn create_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connecting to the test PostgreSQL");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        self.url(&name)
    }

    /// Stop and start again on the same port (what a server's restart does to connections).
    pub fn restart(&self) {
        let ok = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-m", "fast", "restart"])
            .stdout(Stdio::null())
            .status()
            .expect("running pg_ctl restart")
            .success();
        assert!(ok, "pg_ctl restart failed");
    }

    /// Stop the server (what an outage does).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Everything PostgreSQL wrote for this cluster (to look for secrets in).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut c = match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        c.current_dir(self.dir.path());
        c
    }

    /// A shell that stops the cluster and removes its directory once our end of its stdin
    /// closes: at the latest when this process exits, however it exits.
    fn spawn_watchdog(&self) -> Child {
        let mut stop: Vec<String> = self.run_as.clone();
        stop.push(self.bin.join("pg_ctl").display().to_string());
        let script = "read _ ; \"$@\" >/dev/null 2>&1 ; rm -rf \"$DIR\"";
        Command::new("sh")
            .args(["-c", script, "watchdog"])
            .args(&stop)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .env("DIR", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the cleanup watchdog")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut w) = self.watchdog.take() {
            // Let it run (stopping an already stopped cluster is harmless) and wait for it,
            // so the directory is gone when this returns.
            if let Some(mut stdin) = w.stdin.take() {
                let _ = stdin.write_all(b"\n");
            }
            let _ = w.wait();
        }
    }
}

#[test]
fn missing_postgresql_binaries_fail_saying_to_run_make_deps() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("15/bin")).unwrap(); // no initdb in it
    let e = std::panic::catch_unwind(|| binaries_in(empty.path())).unwrap_err();
    let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("make deps"), "{msg}");
    // And the real ones are found here.
    assert!(binaries().join("pg_ctl").is_file());
}
