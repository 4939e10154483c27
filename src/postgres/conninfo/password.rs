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

/// The socket directories libpq's builds default to (PostgreSQL's own,
/// and Debian's and its kin's): the password file names them `localhost`,
/// where one libpq build so names its own.
const DEFAULT_SOCKET_DIRECTORIES: [&str; 2] = ["/tmp", "/var/run/postgresql"];

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
    // An empty `passfile` in the string stands in for `PGPASSFILE` too, as
    // libpq reads options, and leaves `.pgpass`.
    let named = match passfile {
        Some(named) => Some(OsString::from(named)),
        None => environment.password_file.clone(),
    };
    let path = match (named, &environment.home) {
        (Some(named), _) if !named.is_empty() => PathBuf::from(named),
        (_, Some(home)) if !home.is_empty() => Path::new(home).join(".pgpass"),
        _ => return Ok(()),
    };
    let Some(lines) = read(&path) else {
        return Ok(());
    };
    // Empty settings are unset ones, as libpq takes them.
    let user = match config.get_user().filter(|user| !user.is_empty()) {
        Some(user) => user.to_owned(),
        // The driver's default, the user running this process.
        None => match whoami::username() {
            Ok(user) => user,
            Err(_) => return Ok(()),
        },
    };
    let database = config
        .get_dbname()
        .filter(|database| !database.is_empty())
        .unwrap_or(&user);
    let mut found: Option<Vec<u8>> = None;
    for (host, port) in endpoints(config) {
        let wanted = [
            host.as_bytes(),
            port.as_bytes(),
            database.as_bytes(),
            user.as_bytes(),
        ];
        let Some(password) = lines.iter().find_map(|line| password_for(line, &wanted)) else {
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

/// The password file's lines, but comments and empty ones; `None` if it
/// is missing, unreadable, not a plain file, or open to its group or
/// others.
fn read(path: &Path) -> Option<Vec<Vec<u8>>> {
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
            // As libpq reads a line: up to a NUL byte, without the
            // carriage returns that end it.
            .map(|line| line.split(|b| *b == 0).next().unwrap_or(line))
            .map(|line| {
                let kept = line.len() - line.iter().rev().take_while(|b| **b == b'\r').count();
                &line[..kept]
            })
            .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// The password of `line` if its first four fields match `wanted` (host,
/// port, database and user), read as libpq reads it: each field is
/// compared byte by byte with its wanted value, `\` taking the byte after
/// it literally, and ends at the first unescaped `:` once the value is
/// used up (so a `:` in the value may stand unescaped); a field of `*`
/// alone matches anything. The password runs to the next unescaped `:` or
/// the end of the line.
fn password_for(line: &[u8], wanted: &[&[u8]; 4]) -> Option<Vec<u8>> {
    let mut rest = line;
    for value in wanted {
        rest = field_matching(rest, value)?;
    }
    let mut password = Vec::new();
    let mut bytes = rest.iter().peekable();
    while let Some(&byte) = bytes.next() {
        match byte {
            b':' => break,
            // A `\` ending the line is kept.
            b'\\' if bytes.peek().is_some() => password.extend(bytes.next()),
            _ => password.push(byte),
        }
    }
    Some(password)
}

/// What follows the field at the start of `text`, if it matches `value`.
fn field_matching<'a>(text: &'a [u8], value: &[u8]) -> Option<&'a [u8]> {
    if let Some(rest) = text.strip_prefix(b"*:") {
        return Some(rest);
    }
    let (mut at, mut matched) = (0, 0);
    while at < text.len() {
        let escaped = text[at] == b'\\';
        if escaped {
            at += 1;
        }
        let byte = text.get(at).copied();
        if byte == Some(b':') && matched == value.len() && !escaped {
            return Some(&text[at + 1..]);
        }
        if matched == value.len() || byte != Some(value[matched]) {
            return None;
        }
        at += 1;
        matched += 1;
    }
    None
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
            File::at(path, text)
        }

        /// The file `path`, with `text`.
        fn at(path: PathBuf, text: &str) -> File {
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
        // The database defaults to the user's name, an empty one too.
        let file = File::new("database", "db:5432:app:app:own\n");
        for conninfo in ["host=db user=app", "host=db user=app dbname=''"] {
            assert_eq!(
                password(conninfo, &file.environment()).as_deref(),
                Some("own"),
                "{conninfo}"
            );
        }
        assert_eq!(
            password("host=db user=app dbname=x", &file.environment()),
            None
        );
    }

    #[test]
    fn a_colon_the_value_holds_may_stand_unescaped_as_libpq_reads_it() {
        let file = File::new(
            "colons",
            "::1:5432:app:app:short\n\
             db:5432:a:b:app:unescaped\n\
             *:*:*:app:other\n",
        );
        let environment = file.environment();
        let found = |conninfo| password(conninfo, &environment);
        assert_eq!(found("hostaddr=::1 user=app").as_deref(), Some("short"));
        assert_eq!(
            found("host=db dbname='a:b' user=app").as_deref(),
            Some("unescaped")
        );
        // The field ends at a colon only once the value is used up.
        assert_eq!(found("host=db dbname=a user=app").as_deref(), Some("other"));
    }

    #[test]
    fn carriage_returns_ending_a_line_are_not_the_passwords() {
        let file = File::new("returns", "db:5432:*:app:crcr\r\r\n*:*:*:*:x\r\n");
        assert_eq!(
            password("host=db user=app", &file.environment()).as_deref(),
            Some("crcr")
        );
    }

    #[test]
    fn ports_and_addresses_are_looked_up_in_their_plain_forms() {
        let file = File::new(
            "plain",
            "db:5432:*:app:port\n\
             \\:\\:1:5432:*:app:address\n",
        );
        let environment = file.environment();
        let found = |conninfo| password(conninfo, &environment);
        assert_eq!(
            found("host=db port=05432 user=app").as_deref(),
            Some("port")
        );
        assert_eq!(
            found("hostaddr=0:0:0:0:0:0:0:1 user=app").as_deref(),
            Some("address")
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
        assert_eq!(found("host=/run/postgresql user=app"), None);
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
        let in_home = File::at(home.join(".pgpass"), "*:*:*:*:home\n");
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
        // An empty one in the string stands in for the environment's.
        let mut config = Config::from_str("host=db user=app").expect("parsed");
        fill_in(&mut config, Some(""), &environment).expect("found");
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
        let file = File::new(
            "short",
            "db:5432:jobs:app\ndb:5432:jobs\n\n*:*:*:app:fallback\n",
        );
        assert_eq!(
            password("host=db dbname=jobs user=app", &file.environment()).as_deref(),
            Some("fallback")
        );
        // The four keys with an empty password match, as libpq's do.
        let file = File::new("empty", "db:5432:jobs:app:\n*:*:*:app:fallback\n");
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
