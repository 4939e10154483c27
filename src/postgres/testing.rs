//! A throwaway PostgreSQL cluster for tests, benchmarks and examples.
//!
//! Only built with the `testing` feature: it runs server binaries and may
//! switch user, which no production build should be able to do.
//!
//! [`TestCluster::shared`] starts one cluster per process, the first time it
//! is asked for, from the system's PostgreSQL binaries (`initdb`, `pg_ctl`,
//! found on `PATH`, under `/usr/lib/postgresql/*/bin`, or in `PG_BINDIR`):
//!
//! * in a fresh directory under the temporary directory (`/tmp` when root);
//! * as the unprivileged `postgres` user when the process runs as root
//!   (PostgreSQL refuses to run as root), via
//!   `std::os::unix::process::CommandExt::uid`;
//! * listening only on a unix socket inside that directory (no TCP port;
//!   [`TestCluster::start_with_tls`] adds a loopback one, with TLS);
//! * tuned for tests (`fsync`, `synchronous_commit` and `full_page_writes`
//!   off: a crash loses the cluster, which is thrown away anyway).
//!
//! With `POSTGRES_URL` set, no cluster is started: databases are made on
//! that server instead (its user needs `CREATEDB`; they are not dropped).
//!
//! # Removal at exit
//!
//! Rust runs no destructors for statics at exit, and a test binary may also
//! be killed. So each cluster gets a *watchdog*: a small shell process,
//! started before the cluster, whose standard input is a pipe whose only
//! write end this process holds (close-on-exec, so no other child inherits
//! it). However this process ends — normally, by panic or by `SIGKILL` — the
//! kernel closes that end, the watchdog reads end-of-file, stops the server
//! (`pg_ctl stop -m immediate`) and deletes the directory. The watchdog and
//! the server run in their own process group, so a Ctrl-C aimed at the test
//! run does not kill the watchdog before it has cleaned up.
//!
//! # Isolation
//!
//! [`TestCluster::fresh_backend`] gives every caller its own database,
//! copied (`CREATE DATABASE … TEMPLATE`) from a template migrated once per
//! process, so tests never see each other's data and start with an empty
//! store — which some conformance scenarios require.
//! [`TestCluster::lease_backend`] does the same but hands back a
//! [`DatabaseLease`]: when the lease is dropped, the database is emptied
//! (`TRUNCATE`) in the background and reused by a later lease, which keeps
//! a suite of hundreds of tests to a handful of databases (each copy costs
//! about 8 MB and a fifth of a second).

use std::fmt;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::PostgresBackend;
use crate::clock::Clock;

/// Why no test cluster could be had.
#[derive(Debug, Clone)]
pub struct HarnessError(String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no PostgreSQL server for the tests: {}. Install PostgreSQL \
             (Debian/Ubuntu: `apt-get install postgresql`, which provides initdb and pg_ctl \
             under /usr/lib/postgresql/*/bin), or point POSTGRES_URL at a server whose user \
             may create databases",
            self.0
        )
    }
}

impl std::error::Error for HarnessError {}

fn fail(what: impl fmt::Display) -> HarnessError {
    HarnessError(what.to_string())
}

/// A PostgreSQL server for tests: a cluster this process started (and
/// removes again), or the server `POSTGRES_URL` names.
pub struct TestCluster {
    /// Connection string of the administrative database.
    url: String,
    owned: Option<Owned>,
    template: tokio::sync::OnceCell<String>,
    databases: AtomicU64,
    /// Emptied databases, ready for reuse.
    free: Arc<Mutex<Vec<String>>>,
}

/// A cluster this process started.
struct Owned {
    dir: PathBuf,
    bindir: PathBuf,
    run_as: Option<(u32, u32)>,
    port: u16,
    /// Listening on loopback TCP too.
    tcp: bool,
    /// The watchdog; dropping its stdin (at the latest, at exit) removes the cluster.
    watchdog: Mutex<Option<Child>>,
}

impl fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCluster")
            .field("dir", &self.owned.as_ref().map(|o| &o.dir))
            .field("databases", &self.databases.load(Ordering::Relaxed))
            .finish()
    }
}

/// Clusters are numbered for unique names within the process.
static CLUSTERS: AtomicU64 = AtomicU64::new(0);

impl TestCluster {
    /// The process-wide test server: `POSTGRES_URL` if set, else a cluster
    /// started on first use and removed when the process exits.
    pub fn shared() -> Result<&'static TestCluster, HarnessError> {
        static SHARED: OnceLock<Result<TestCluster, HarnessError>> = OnceLock::new();
        SHARED
            .get_or_init(|| match std::env::var("POSTGRES_URL") {
                Ok(url) if !url.is_empty() => Ok(TestCluster::external(url)),
                _ => TestCluster::start(),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// [`shared`](Self::shared) for a test: a test that needs PostgreSQL
    /// fails, never silently passes, when no server can be had.
    ///
    /// # Panics
    ///
    /// When no server can be started or reached, with the reason and how to
    /// install PostgreSQL.
    pub fn shared_or_panic() -> &'static TestCluster {
        Self::shared().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A server given by connection string, used as it is.
    pub fn external(url: String) -> TestCluster {
        TestCluster {
            url,
            owned: None,
            template: tokio::sync::OnceCell::new(),
            databases: AtomicU64::new(0),
            free: Arc::default(),
        }
    }

    /// Starts a private cluster (for tests that stop and restart it); it is
    /// removed when dropped, or at the latest when the process exits.
    pub fn start() -> Result<TestCluster, HarnessError> {
        Self::start_with(None, false)
    }

    /// [`start`](Self::start), the cluster asking every user but
    /// `postgres` (the user of [`url`](Self::url)) for a password
    /// (`scram-sha-256` authentication on its socket).
    pub fn start_requiring_passwords() -> Result<TestCluster, HarnessError> {
        Self::start_with(None, true)
    }

    /// [`start`](Self::start), the cluster also listening on a free
    /// loopback TCP port ([`tcp_port`](Self::tcp_port)) with TLS on, where
    /// it shows `certificate` (PEM: its certificate, then any intermediate
    /// ones) for the private `key` (PEM). Its [`url`](Self::url) stays on
    /// the unix socket.
    pub fn start_with_tls(certificate: &str, key: &str) -> Result<TestCluster, HarnessError> {
        Self::start_with(
            Some(ServerTls {
                certificate: certificate.to_owned(),
                key: key.to_owned(),
                client_authority: None,
            }),
            false,
        )
    }

    /// [`start_with_tls`](Self::start_with_tls), the cluster admitting a
    /// TCP client only with a certificate that `client_authority` (PEM)
    /// signed, for the user its common name names (`cert` authentication;
    /// `postgres`, the user of [`url`](Self::url)). Clients of the socket
    /// need none.
    pub fn start_requiring_client_certificates(
        certificate: &str,
        key: &str,
        client_authority: &str,
    ) -> Result<TestCluster, HarnessError> {
        Self::start_with(
            Some(ServerTls {
                certificate: certificate.to_owned(),
                key: key.to_owned(),
                client_authority: Some(client_authority.to_owned()),
            }),
            false,
        )
    }

    fn start_with(tls: Option<ServerTls>, passwords: bool) -> Result<TestCluster, HarnessError> {
        let bindir = find_bindir()?;
        let run_as = if running_as_root() {
            Some(user_ids("postgres")?)
        } else {
            None
        };
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        // The postgres user must reach the directory: root's TMPDIR may
        // sit under a private home, /tmp never does.
        let base = if run_as.is_some() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("coordinate-pg-{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| fail(format!("cannot clear {dir:?}: {e}")))?;
        }
        std::fs::create_dir(&dir).map_err(|e| fail(format!("cannot create {dir:?}: {e}")))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| fail(format!("cannot give {dir:?} to the postgres user: {e}")))?;
        }
        let port = match tls {
            // One port for the socket and TCP: a free one.
            Some(_) => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| fail(format!("cannot find a free TCP port: {e}")))?
                .port(),
            None => 5432,
        };
        let owned = Owned {
            dir,
            bindir,
            run_as,
            port,
            tcp: tls.is_some(),
            watchdog: Mutex::new(None),
        };
        // The watchdog first: from here on, the directory is removed
        // whatever happens to this process.
        owned.spawn_watchdog()?;
        owned.initdb()?;
        if let Some(tls) = tls {
            owned.enable_tls(&tls)?;
        }
        if passwords {
            owned.write_file(
                "pg_hba.conf",
                "local all postgres trust\nlocal all all scram-sha-256\n",
            )?;
        }
        owned.start_server()?;
        Ok(TestCluster {
            url: format!(
                "host={} port={port} user=postgres dbname=postgres",
                owned.dir.display()
            ),
            owned: Some(owned),
            template: tokio::sync::OnceCell::new(),
            databases: AtomicU64::new(0),
            free: Arc::default(),
        })
    }

    /// The loopback TCP port of a cluster started
    /// [with TLS](Self::start_with_tls).
    pub fn tcp_port(&self) -> Option<u16> {
        self.owned.as_ref().filter(|o| o.tcp).map(|o| o.port)
    }

    /// The connection string of the server's administrative database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory of a cluster this process started.
    pub fn dir(&self) -> Option<&Path> {
        self.owned.as_ref().map(|o| o.dir.as_path())
    }

    /// Stops the server of a cluster this process started (fast shutdown:
    /// open connections are closed), keeping its data.
    pub fn stop_server(&self) -> Result<(), HarnessError> {
        self.owned()?
            .pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"])
    }

    /// Starts the server again after [`stop_server`](Self::stop_server).
    pub fn start_server(&self) -> Result<(), HarnessError> {
        self.owned()?.start_server()
    }

    fn owned(&self) -> Result<&Owned, HarnessError> {
        self.owned
            .as_ref()
            .ok_or_else(|| fail("the server was given by POSTGRES_URL and is not ours to stop"))
    }

    /// Creates an empty, migrated database; answers its name.
    pub async fn fresh_database(&self) -> Result<String, HarnessError> {
        let template = self
            .template
            .get_or_try_init(|| self.make_template())
            .await?;
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("coordinate_{}_{n}", std::process::id());
        // Names are made here from digits, never from caller data.
        self.admin(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await?;
        Ok(name)
    }

    /// A [`PostgresBackend`] on a fresh database, with this clock.
    pub async fn fresh_backend(
        &self,
        clock: impl Clock + 'static,
    ) -> crate::Result<PostgresBackend> {
        let db = self.fresh_database().await.map_err(crate::Error::backend)?;
        PostgresBackend::builder(&self.url)
            .database(&db)
            .clock(clock)
            .build()
            .await
    }

    /// A [`PostgresBackend`] with this clock on an empty database that is
    /// emptied and reused once the returned lease is dropped (drop the
    /// backend and its handles first).
    pub async fn lease_backend(
        &self,
        clock: impl Clock + 'static,
    ) -> crate::Result<(PostgresBackend, DatabaseLease)> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        let db = match reused {
            Some(db) => db,
            None => self.fresh_database().await.map_err(crate::Error::backend)?,
        };
        let lease = DatabaseLease {
            url: self.database_url(&db),
            name: db,
            free: Arc::clone(&self.free),
        };
        let backend = PostgresBackend::builder(&lease.url)
            .clock(clock)
            .build()
            .await?;
        Ok((backend, lease))
    }

    /// The connection string of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        // key=value strings take the last value of a key; URLs get a
        // query parameter.
        if self.url.contains("://") {
            let sep = if self.url.contains('?') { '&' } else { '?' };
            format!("{}{sep}dbname={name}", self.url)
        } else {
            format!("{} dbname={name}", self.url)
        }
    }

    async fn make_template(&self) -> Result<String, HarnessError> {
        let name = format!(
            "coordinate_template_{}_{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        );
        self.admin(&format!("CREATE DATABASE {name}")).await?;
        let backend = PostgresBackend::builder(&self.url)
            .database(&name)
            .max_connections(1)
            .build()
            .await
            .map_err(|e| fail(format!("cannot migrate the template database: {e}")))?;
        // Copying needs the template without sessions: close ours now.
        backend.shared.pool.close();
        drop(backend);
        Ok(name)
    }

    /// Runs one administrative statement on its own connection.
    async fn admin(&self, sql: &str) -> Result<(), HarnessError> {
        let config = tokio_postgres::Config::from_str(&self.url)
            .map_err(|e| fail(format!("bad connection string {:?}: {e}", self.url)))?;
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| fail(format!("cannot connect to {:?}: {e}", self.url)))?;
        let task = tokio::spawn(connection);
        // The template may still have a closing session for a moment.
        let mut tries = 0;
        let result = loop {
            match client.batch_execute(sql).await {
                Err(e) if tries < 50 && e.to_string().contains("being accessed by other users") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => break other,
            }
        };
        drop(client);
        let _ = task.await;
        result.map_err(|e| fail(format!("{sql}: {e}")))
    }
}

/// What a cluster started with TLS shows its clients.
struct ServerTls {
    certificate: String,
    key: String,
    /// The authority whose certificates TCP clients must show, if any.
    client_authority: Option<String>,
}

/// A database lent by [`TestCluster::lease_backend`]; dropping it empties
/// the database in the background and returns it for reuse.
pub struct DatabaseLease {
    name: String,
    url: String,
    free: Arc<Mutex<Vec<String>>>,
}

impl DatabaseLease {
    /// The database's name.
    pub fn database(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for DatabaseLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseLease")
            .field("database", &self.name)
            .finish()
    }
}

impl Drop for DatabaseLease {
    fn drop(&mut self) {
        // Drop may run inside an async runtime, where blocking is not
        // allowed: empty the database on a thread of its own. A database
        // that cannot be emptied (say, still locked) is simply not reused.
        let url = std::mem::take(&mut self.url);
        let name = std::mem::take(&mut self.name);
        let free = Arc::clone(&self.free);
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                let task = tokio::spawn(connection);
                let emptied = client
                    .batch_execute("SET lock_timeout = '5s'; TRUNCATE namespace, work_unit CASCADE")
                    .await
                    .is_ok();
                drop(client);
                let _ = task.await;
                if emptied {
                    if let Ok(mut free) = free.lock() {
                        free.push(name);
                    }
                }
            });
        });
    }
}

impl Owned {
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(&self.dir).process_group(0);
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn spawn_watchdog(&self) -> Result<(), HarnessError> {
        const SCRIPT: &str = r#"cat >/dev/null
"$2/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$1""#;
        let child = self
            .command(Path::new("/bin/sh"))
            .arg("-c")
            .arg(SCRIPT)
            .arg("coordinate-pg-watchdog")
            .arg(&self.dir)
            .arg(&self.bindir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("cannot start the cluster watchdog: {e}")))?;
        if let Ok(mut slot) = self.watchdog.lock() {
            *slot = Some(child);
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), HarnessError> {
        let args = [
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ];
        self.run_tool("initdb", &args, "initdb")?;
        let settings = format!(
            "\n# coordinate test cluster\nlisten_addresses = '{}'\nunix_socket_directories = '{}'\n\
             port = {}\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = 300\n",
            if self.tcp { "127.0.0.1" } else { "" },
            self.dir.display(),
            self.port,
        );
        self.configure(&settings)
    }

    fn configure(&self, settings: &str) -> Result<(), HarnessError> {
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .map_err(|e| fail(format!("cannot configure the cluster: {e}")))
    }

    /// Writes the server's certificate and key and turns TLS on.
    fn enable_tls(&self, tls: &ServerTls) -> Result<(), HarnessError> {
        use std::os::unix::fs::PermissionsExt;
        for (file, pem) in [("server.crt", &tls.certificate), ("server.key", &tls.key)] {
            let path = self.data().join(file);
            std::fs::write(&path, pem)
                // The server refuses a key others may read.
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                })
                .and_then(|()| match self.run_as {
                    Some((uid, gid)) => std::os::unix::fs::chown(&path, Some(uid), Some(gid)),
                    None => Ok(()),
                })
                .map_err(|e| fail(format!("cannot write {path:?}: {e}")))?;
        }
        self.configure("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")?;
        let Some(authority) = &tls.client_authority else {
            return Ok(());
        };
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 cert\n";
        for (file, text) in [("client_ca.crt", authority.as_str()), ("pg_hba.conf", hba)] {
            self.write_file(file, text)?;
        }
        self.configure("ssl_ca_file = 'client_ca.crt'\n")
    }

    /// Writes `text` to the data directory's `file`, the server's to read.
    fn write_file(&self, file: &str, text: &str) -> Result<(), HarnessError> {
        let path = self.data().join(file);
        std::fs::write(&path, text)
            .and_then(|()| match self.run_as {
                Some((uid, gid)) => std::os::unix::fs::chown(&path, Some(uid), Some(gid)),
                None => Ok(()),
            })
            .map_err(|e| fail(format!("cannot write {path:?}: {e}")))
    }

    fn start_server(&self) -> Result<(), HarnessError> {
        let log = self.dir.join("server.log");
        self.pg_ctl(&["-l", &log.to_string_lossy(), "-w", "-t", "60", "start"])
            .map_err(|e| {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                fail(format!("{e}; server log: {}", tail.trim()))
            })
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), HarnessError> {
        self.run_tool("pg_ctl", args, &format!("pg_ctl {}", args.join(" ")))
    }

    /// Runs the PostgreSQL program `tool` on the data directory; `what`
    /// names the run when it fails.
    fn run_tool(&self, tool: &str, args: &[&str], what: &str) -> Result<(), HarnessError> {
        let out = self
            .command(&self.bindir.join(tool))
            .arg("-D")
            .arg(self.data())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(format!("cannot run {tool}: {e}")))?;
        if !out.status.success() {
            return Err(fail(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // Closing the watchdog's stdin makes it stop the server and remove
        // the directory; wait so a dropped cluster is really gone.
        let child = self.watchdog.get_mut().ok().and_then(Option::take);
        if let Some(mut child) = child {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bindir() -> Result<PathBuf, HarnessError> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BINDIR").map(PathBuf::from) {
        if has_tools(&dir) {
            return Ok(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Debian links initdb into PATH; its siblings live where it points.
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(parent) = real.parent().filter(|p| has_tools(p)) {
                    return Ok(parent.to_path_buf());
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        fail("initdb and pg_ctl were not found on PATH nor under /usr/lib/postgresql")
    })
}

/// True if this process runs as root (PostgreSQL refuses to).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The uid and gid of a system user, from `/etc/passwd`.
fn user_ids(user: &str) -> Result<(u32, u32), HarnessError> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| fail(format!("cannot read /etc/passwd: {e}")))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [name, _, uid, gid, ..] if *name == user => {
                    Some((uid.parse().ok()?, gid.parse().ok()?))
                }
                _ => None,
            }
        })
        .ok_or_else(|| {
            fail(format!(
                "running as root and there is no {user:?} user to run PostgreSQL as"
            ))
        })
}
