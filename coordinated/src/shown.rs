//! A `--backend` value as it may be shown (logged, or quoted in an error):
//! rebuilt from what it parses as, so that no credential it holds, however
//! written, is shown.

use reqwest::Url;
use tokio_postgres::config::Host;

/// What is shown of a value that is not shown.
const NOT_SHOWN: &str = "(not shown: it may hold credentials)";

/// `backend` as it may be shown: `memory`; a PostgreSQL connection
/// (`postgres://…`, or `postgres:` and a `key=value` string) as its hosts,
/// ports, database and user; an `http://` or `https://` URL
/// without its user name, password, query and fragment; any other value
/// only if it is a plain
/// word (a misspelt `memory`, say), as nothing else can be told apart from
/// a credential.
///
/// ```
/// use coordinated::shown::backend_shown;
///
/// assert_eq!(
///     backend_shown("postgres://app:s3cret@db:5433/jobs?sslmode=disable"),
///     "postgres (host=db port=5433 dbname=jobs user=app)"
/// );
/// assert_eq!(
///     backend_shown("http://alice:s3cret@proxy:5980/?token=x"),
///     "http://proxy:5980/"
/// );
/// assert_eq!(backend_shown("memroy"), "memroy");
/// ```
pub fn backend_shown(backend: &str) -> String {
    if let Some(connection) = crate::config::postgres_connection(backend) {
        return postgres_shown(connection);
    }
    if crate::config::is_http_url(backend) {
        let Ok(mut url) = Url::parse(backend) else {
            return format!("http {NOT_SHOWN}");
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        return url.into();
    }
    let plain = backend
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        backend.to_owned()
    } else {
        NOT_SHOWN.to_owned()
    }
}

/// A parsed field as it may be shown: whole if it holds only letters,
/// digits, `-`, `_`, `.` and `/` (a host name, an address, a socket
/// directory, a database or user name), else hidden. A malformed string
/// parses into fields that carry what follows them (`host=db;password=…`
/// is one host), and a field with any other character may be one of those.
fn field_shown(field: &str) -> &str {
    let plain = field
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if plain {
        field
    } else {
        "***"
    }
}

/// A PostgreSQL connection string (URL or `key=value`) as its hosts,
/// ports, database and user, each field as [`field_shown`] shows it.
fn postgres_shown(connection: &str) -> String {
    let Ok(config) = coordinate::postgres::connection_config_as_written(connection) else {
        return format!("postgres {NOT_SHOWN}");
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => field_shown(name).to_owned(),
            Host::Unix(path) => field_shown(&path.display().to_string()).to_owned(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let mut fields = Vec::new();
    if !hosts.is_empty() {
        fields.push(format!("host={}", hosts.join(",")));
    }
    if !ports.is_empty() {
        fields.push(format!("port={}", ports.join(",")));
    }
    if let Some(dbname) = config.get_dbname() {
        fields.push(format!("dbname={}", field_shown(dbname)));
    }
    if let Some(user) = config.get_user() {
        fields.push(format!("user={}", field_shown(user)));
    }
    format!("postgres ({})", fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values holding the password `s3cret`, each as a user might write
    /// one (or mistype it).
    const WITH_A_PASSWORD: &[&str] = &[
        "postgres://app:s3cret@db/jobs",
        "postgresql://app:s3cret@db/jobs",
        "postgres://app@db/jobs?password=s3cret",
        "postgres://app@db/jobs?pass%77ord=s3cret",
        "postgres://app@db/jobs?password=s3cret#x",
        "postgres://db/jobs?application_name=a#&password=s3cret",
        "postgres:postgres://app:s3cret@db/jobs",
        "postgres:host=db password=s3cret user=app",
        "postgres:host=db password = 's3cret x' user=app",
        "postgres:host=db password=pa://s3cret@x",
        "postgres:password=s3cret host",
        "host=db password=s3cret",
        "http://alice:s3cret@proxy:5980/",
        "http://proxy:5980/?password=s3cret",
        "HTTP://alice:s3cret@proxy:5980/",
        "http:/alice:s3cret@proxy:5980/",
        " http://alice:s3cret@proxy:5980/",
        "postgres//app:s3cret@db/jobs",
        // Malformed: the password lands in another field.
        "postgres:host=db;user=app;password=s3cret",
        "postgres://db/jobs?user=app;password=s3cret",
        "postgres://server.example.com/jobs?user=app@server&password=s3cret",
        "postgres://db/jobs?password=s3cret&application_name=me@laptop",
        "postgres://app:s3c@ret@db/jobs",
        "postgres:host=db user=app:s3cret",
        "postgres:host=127.0.0.1,db;password=s3cret port=5432",
        "s3cret",
    ];

    #[test]
    fn no_password_is_shown_however_written() {
        for given in WITH_A_PASSWORD.iter().filter(|given| **given != "s3cret") {
            let shown = backend_shown(given);
            assert!(!shown.contains("s3cret"), "{given:?} shown as {shown:?}");
        }
    }

    #[test]
    fn a_postgres_connection_shows_where_it_goes() {
        assert_eq!(
            backend_shown("postgres:host=/tmp/pg,db2 port=5432,5433 dbname=jobs"),
            "postgres (host=/tmp/pg,db2 port=5432,5433 dbname=jobs)"
        );
        assert_eq!(
            backend_shown("postgres:host=db password='s3cret x' user=app"),
            "postgres (host=db user=app)"
        );
        assert_eq!(
            backend_shown("postgres:password=s3cret host"),
            format!("postgres {NOT_SHOWN}")
        );
        // TLS options the driver does not know itself.
        assert_eq!(
            backend_shown(
                "postgres://app:s3cret@db/jobs?sslmode=verify-full&sslrootcert=/etc/ca.pem"
            ),
            "postgres (host=db port=5432 dbname=jobs user=app)"
        );
    }

    /// What the string says is shown without its password being looked
    /// up: a password file the string names is not read for it.
    #[test]
    fn a_postgres_connection_is_shown_without_its_password_file() {
        use std::os::unix::fs::PermissionsExt;
        let file = std::env::temp_dir().join(format!("coordinated-shown-{}", std::process::id()));
        // Two passwords for the hosts of one string: a lookup refuses it.
        std::fs::write(&file, "a:*:*:app:one\nb:*:*:app:two\n").expect("a password file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .expect("owner only");
        let shown = backend_shown(&format!(
            "postgres:host=a,b user=app passfile={}",
            file.display()
        ));
        let _ = std::fs::remove_file(&file);
        assert_eq!(shown, "postgres (host=a,b user=app)");
    }

    #[test]
    fn a_url_shows_where_it_goes() {
        assert_eq!(
            backend_shown("HTTP://alice:s3cret@proxy:5980/p/?q#f"),
            "http://proxy:5980/p/"
        );
    }

    #[test]
    fn other_values_are_shown_only_as_plain_words() {
        assert_eq!(backend_shown("memory"), "memory");
        assert_eq!(backend_shown("mem-ory_2.0"), "mem-ory_2.0");
        assert_eq!(backend_shown("host=db password=x"), NOT_SHOWN);
        assert_eq!(backend_shown("http:/alice:x@proxy/"), NOT_SHOWN);
    }
}
