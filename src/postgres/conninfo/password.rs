//! The password a connection string leaves out, found where libpq finds
//! it: `PGPASSWORD`, else the password file (the file's form, and where
//! this differs from libpq: the `postgres` module docs' `# Passwords`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tokio_postgres::config::Host;
use tokio_postgres::Config;

use crate::postgres::PostgresError;

/// The port a host without one is reached on.
const DEFAULT_PORT: u16 = 5432;

/// Socket directories libpq builds default to (upstream's, and the one of
/// Debian and its kin): the password file names them `localhost`.
const DEFAULT_SOCKET_DIRECTORIES: [&str; 3] = ["/tmp", "/var/run/postgresql", "/run/postgresql"];

/// What the password's lookup reads from the process's environment.
#[derive(Debug, Default)]
pub(crate) struct Environment {
    /// `PGPASSWORD`.
    pub(crate) password: Option<OsString>,
    /// `PGPASSFILE`.
    pub(crate) password_file: Option<OsString>,
    /// `HOME`, where `.pgpass` is.
    pub(crate) home: Option<OsString>,
}

impl Environment {
    /// This process's.
    pub(crate) fn of_process() -> Self {
        Environment {
            password: std::env::var_os("PGPASSWORD"),
            password_file: std::env::var_os("PGPASSFILE"),
            home: std::env::var_os("HOME"),
        }
    }
}

/// Gives `config` the password libpq would send where it has none (or an
/// empty one): `PGPASSWORD`, else the line of the password file (named by
/// `passfile`, the connection string's option, if given) for its hosts.
/// The driver sends one password to every host of a list, so a file that
/// gives two hosts of one list different passwords is refused.
pub(crate) fn fill_in(
    config: &mut Config,
    passfile: Option<&str>,
    environment: &Environment,
) -> Result<(), PostgresError> {
    if config.get_password().is_some_and(|p| !p.is_empty()) {
        return Ok(());
    }
    if let Some(password) = environment.password.clone().filter(|p| !p.is_empty()) {
        config.password(password.into_encoded_bytes());
        return Ok(());
    }
    let path = match (passfile, &environment.password_file, &environment.home) {
        (Some(named), _, _) => PathBuf::from(named),
        (None, Some(named), _) if !named.is_empty() => PathBuf::from(named),
        (None, _, Some(home)) if !home.is_empty() => Path::new(home).join(".pgpass"),
        _ => return Ok(()),
    };
    let Some(lines) = read(&path) else {
        return Ok(());
    };
    let user = match config.get_user() {
        Some(user) => user.to_owned(),
        // The driver's default, the user running this process.
        None => match whoami::username() {
            Ok(user) => user,
            Err(_) => return Ok(()),
        },
    };
    let database = config.get_dbname().unwrap_or(&user);
    let mut found: Option<Vec<u8>> = None;
    for (host, port) in endpoints(config) {
        let wanted = [
            host.as_bytes(),
            port.as_bytes(),
            database.as_bytes(),
            user.as_bytes(),
        ];
        let Some(password) = lines.iter().find_map(|line| line.password_for(&wanted)) else {
            continue;
        };
        match &found {
            Some(other) if *other != password => {
                return Err(PostgresError::PasswordFile(format!(
                    "{} gives the hosts of one connection string different passwords; \
                     the driver sends one to every host",
                    path.display()
                )))
            }
            _ => found = Some(password),
        }
    }
    if let Some(password) = found {
        config.password(password);
    }
    Ok(())
}

/// Each host a connection may be made to, as the password file names it,
/// with its port.
fn endpoints(config: &Config) -> Vec<(String, String)> {
    let ports = config.get_ports();
    let port = |i: usize| match ports {
        [] => DEFAULT_PORT,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(DEFAULT_PORT),
    };
    let named: Vec<String> = match config.get_hosts() {
        [] => config
            .get_hostaddrs()
            .iter()
            .map(ToString::to_string)
            .collect(),
        hosts => hosts
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(directory) => {
                    let directory = directory.to_string_lossy();
                    match DEFAULT_SOCKET_DIRECTORIES.contains(&directory.as_ref()) {
                        true => "localhost".to_owned(),
                        false => directory.into_owned(),
                    }
                }
            })
            .collect(),
    };
    named
        .into_iter()
        .enumerate()
        .map(|(i, host)| (host, port(i).to_string()))
        .collect()
}

/// The password file's lines, but comments; `None` if it is missing,
/// unreadable, not a plain file, or open to its group or others.
fn read(path: &Path) -> Option<Vec<Line>> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        tracing::warn!(path = %path.display(), "the password file is not a plain file; ignored");
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the password file has group or world access; ignored (permissions should be \
                 u=rw, 0600, or less)"
            );
            return None;
        }
    }
    let text = std::fs::read(path).ok()?;
    Some(
        text.split(|b| *b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.starts_with(b"#"))
            .filter_map(Line::parse)
            .collect(),
    )
}

/// One line of the password file: its fields, unescaped.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    /// Host, port, database and user; `None` for `*`.
    keys: [Option<Vec<u8>>; 4],
    password: Vec<u8>,
}

impl Line {
    /// The line's fields; `None` for one with fewer than five, which
    /// matches nothing.
    fn parse(line: &[u8]) -> Option<Line> {
        // Each field with whether it held an escape: `\*` is a star, not
        // the wildcard.
        let mut fields: Vec<(Vec<u8>, bool)> = Vec::new();
        let (mut field, mut escaped) = (Vec::new(), false);
        let mut bytes = line.iter();
        // The fifth field, the password, ends at an unescaped `:` too, as
        // libpq reads it.
        while fields.len() < 5 {
            match bytes.next() {
                Some(b'\\') => {
                    escaped = true;
                    // A `\` ending the line is kept, as libpq keeps it.
                    field.push(*bytes.next().unwrap_or(&b'\\'));
                }
                Some(b':') => {
                    fields.push((std::mem::take(&mut field), std::mem::take(&mut escaped)))
                }
                Some(byte) => field.push(*byte),
                None => {
                    fields.push((field, escaped));
                    break;
                }
            }
        }
        let mut fields = fields.into_iter();
        let mut key = || {
            fields
                .next()
                .map(|(text, escaped)| match (text.as_slice(), escaped) {
                    (b"*", false) => None,
                    _ => Some(text),
                })
        };
        let keys = [key()?, key()?, key()?, key()?];
        let (password, _) = fields.next()?;
        Some(Line { keys, password })
    }

    /// The password, if this line matches `wanted` (host, port, database
    /// and user).
    fn password_for(&self, wanted: &[&[u8]; 4]) -> Option<Vec<u8>> {
        self.keys
            .iter()
            .zip(wanted)
            .all(|(key, wanted)| key.as_deref().map_or(true, |key| key == *wanted))
            .then(|| self.password.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// A scratch password file with `text`, only its owner may read.
    struct File(PathBuf);

    impl File {
        fn new(name: &str, text: &str) -> File {
            let path = std::env::temp_dir()
                .join(format!("coordinate-pgpass-{}-{name}", std::process::id()));
            std::fs::write(&path, text).expect("write the file");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("owner only");
            }
            File(path)
        }

        fn environment(&self) -> Environment {
            Environment {
                password_file: Some(self.0.clone().into_os_string()),
                ..Environment::default()
            }
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The password `conninfo` (in the driver's syntax) gets.
    fn password(conninfo: &str, environment: &Environment) -> Option<String> {
        let mut config = Config::from_str(conninfo).expect(conninfo);
        fill_in(&mut config, None, environment).expect("found");
        config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    #[test]
    fn the_first_matching_line_gives_the_password() {
        let file = File::new(
            "first",
            "# host:port:database:user:password\n\
             db:5432:jobs:app:first\r\n\
             db:5432:jobs:app:second\n\
             *:*:*:app:any\n\
             *:*:*:*:fallback",
        );
        let environment = file.environment();
        let found = |conninfo| password(conninfo, &environment);
        assert_eq!(
            found("host=db dbname=jobs user=app").as_deref(),
            Some("first")
        );
        assert_eq!(
            found("host=db port=6543 dbname=jobs user=app").as_deref(),
            Some("any")
        );
        assert_eq!(found("host=other user=ops").as_deref(), Some("fallback"));
        // The database defaults to the user's name.
        let file = File::new("database", "db:5432:app:app:own\n");
        assert_eq!(
            password("host=db user=app", &file.environment()).as_deref(),
            Some("own")
        );
        assert_eq!(
            password("host=db user=app dbname=x", &file.environment()),
            None
        );
    }

    #[test]
    fn escapes_and_wildcards_are_read_as_libpq_reads_them() {
        let file = File::new(
            "escapes",
            "db:5432:a\\:b:app:colon\n\
             db:5432:\\*:app:star\n\
             db:5432:*:app:p\\:w\\\\d:ignored\n",
        );
        let environment = file.environment();
        let found = |conninfo| password(conninfo, &environment);
        assert_eq!(
            found("host=db dbname='a:b' user=app").as_deref(),
            Some("colon")
        );
        // An escaped star is a star, not the wildcard.
        assert_eq!(found("host=db dbname=* user=app").as_deref(), Some("star"));
        // The password ends at an unescaped colon.
        assert_eq!(
            found("host=db dbname=x user=app").as_deref(),
            Some("p:w\\d")
        );
    }

    #[test]
    fn a_socket_in_a_default_directory_is_localhost() {
        let file = File::new(
            "sockets",
            "localhost:5432:*:app:local\n/srv/pg:5433:*:app:private\n",
        );
        let environment = file.environment();
        let found = |conninfo| password(conninfo, &environment);
        assert_eq!(
            found("host=/var/run/postgresql user=app").as_deref(),
            Some("local")
        );
        assert_eq!(found("host=/tmp user=app").as_deref(), Some("local"));
        assert_eq!(found("host=localhost user=app").as_deref(), Some("local"));
        assert_eq!(
            found("host=/srv/pg port=5433 user=app").as_deref(),
            Some("private")
        );
        assert_eq!(found("host=/srv/pg user=app"), None);
        assert_eq!(found("hostaddr=127.0.0.1 user=app"), None);
    }

    #[test]
    fn a_password_given_or_in_the_environment_comes_first() {
        let file = File::new("order", "*:*:*:*:from-file\n");
        let mut environment = file.environment();
        assert_eq!(
            password("host=db user=app password=given", &environment).as_deref(),
            Some("given")
        );
        assert_eq!(
            password("host=db user=app password=''", &environment).as_deref(),
            Some("from-file")
        );
        environment.password = Some("from-environment".into());
        assert_eq!(
            password("host=db user=app", &environment).as_deref(),
            Some("from-environment")
        );
        environment.password = Some("".into());
        assert_eq!(
            password("host=db user=app", &environment).as_deref(),
            Some("from-file")
        );
    }

    #[test]
    fn the_file_is_named_by_the_string_then_the_environment_then_home() {
        let named = File::new("named", "*:*:*:*:named\n");
        let home = std::env::temp_dir().join(format!("coordinate-pghome-{}", std::process::id()));
        std::fs::create_dir_all(&home).expect("a home");
        let in_home = File(home.join(".pgpass"));
        std::fs::write(&in_home.0, "*:*:*:*:home\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&in_home.0, std::fs::Permissions::from_mode(0o600))
                .expect("owner only");
        }
        let mut environment = Environment {
            home: Some(home.clone().into_os_string()),
            ..Environment::default()
        };
        assert_eq!(
            password("host=db user=app", &environment).as_deref(),
            Some("home")
        );
        environment.password_file = Some(named.0.clone().into_os_string());
        assert_eq!(
            password("host=db user=app", &environment).as_deref(),
            Some("named")
        );
        let mut config = Config::from_str("host=db user=app").expect("parsed");
        let by_string = in_home.0.to_str().expect("a UTF-8 path");
        fill_in(&mut config, Some(by_string), &environment).expect("found");
        assert_eq!(config.get_password(), Some(&b"home"[..]));
        drop(in_home);
        let _ = std::fs::remove_dir(&home);
    }

    #[test]
    fn a_missing_or_open_file_gives_none() {
        let missing = Environment {
            password_file: Some("/no/such/pgpass".into()),
            ..Environment::default()
        };
        assert_eq!(password("host=db user=app", &missing), None);
        let open = File::new("open", "*:*:*:*:secret\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&open.0, std::fs::Permissions::from_mode(0o640))
                .expect("group may read");
            assert_eq!(password("host=db user=app", &open.environment()), None);
        }
        let directory = Environment {
            password_file: Some(std::env::temp_dir().into_os_string()),
            ..Environment::default()
        };
        assert_eq!(password("host=db user=app", &directory), None);
    }

    #[test]
    fn short_lines_match_nothing() {
        let file = File::new("short", "db:5432:jobs:app\ndb:5432:jobs\n\n*:*:*:app:\n");
        // The four keys with an empty password match, as libpq's do.
        assert_eq!(
            password("host=db dbname=jobs user=app", &file.environment()).as_deref(),
            Some("")
        );
    }

    #[test]
    fn hosts_of_one_string_share_their_password_or_are_refused() {
        let file = File::new(
            "hosts",
            "a:5432:*:app:same\nb:5433:*:app:same\nc:*:*:app:other\n",
        );
        let environment = file.environment();
        assert_eq!(
            password("host=a,b port=5432,5433 user=app", &environment).as_deref(),
            Some("same")
        );
        // A host without a line takes the one found for another.
        assert_eq!(
            password("host=a,z user=app", &environment).as_deref(),
            Some("same")
        );
        let mut config = Config::from_str("host=a,c user=app").expect("parsed");
        let error = fill_in(&mut config, None, &environment)
            .expect_err("two passwords")
            .to_string();
        assert!(error.contains("different passwords"), "{error}");
    }
}
