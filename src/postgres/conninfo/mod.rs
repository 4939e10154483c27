//! A libpq connection string read into the driver's [`Config`]: the
//! options the driver does not know cut out (the `options` module),
//! `sslmode` mapped onto the modes it has, and a password left out found
//! where libpq finds it (the `password` module).

pub(crate) mod options;
mod password;

use std::str::FromStr;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Config;

use super::PostgresError;
use options::Mode;

/// The driver's settings a libpq connection string gives, its `sslmode`
/// as the driver knows it and `sslrootcert` taken out (see the `postgres`
/// module docs' `# TLS`), and the password it leaves out found as libpq
/// finds it (`PGPASSWORD`, then the password file; see `# Passwords`
/// there): what [`PostgresBackend`] connects with. Of the files a string
/// names, this reads the password file only;
/// [`PostgresTls::new`](super::PostgresTls::new) reads `sslrootcert`.
///
/// ```
/// # fn main() -> Result<(), coordinate::postgres::PostgresError> {
/// use coordinate::postgres::{connection_config, PostgresTls};
///
/// let url = "postgres://app@db.internal/jobs?sslmode=require";
/// let config = connection_config(url)?;
/// assert_eq!(config.get_dbname(), Some("jobs"));
/// // A session of one's own, with the backend's TLS:
/// // `config.connect(PostgresTls::new(url)?)`.
/// # PostgresTls::new(url)?;
/// # Ok(())
/// # }
/// ```
///
/// [`PostgresBackend`]: super::PostgresBackend
pub fn connection_config(conninfo: &str) -> Result<Config, PostgresError> {
    connection_config_for(conninfo, None)
}

/// [`connection_config`] without looking for a password the string leaves
/// out: only what the string itself says (to show it, say), with no file
/// or environment variable read.
///
/// ```
/// # fn main() -> Result<(), coordinate::postgres::PostgresError> {
/// use coordinate::postgres::connection_config_as_written;
///
/// let config = connection_config_as_written("host=db.internal user=app dbname=jobs")?;
/// assert_eq!(config.get_user(), Some("app"));
/// assert_eq!(config.get_password(), None);
/// # Ok(())
/// # }
/// ```
pub fn connection_config_as_written(conninfo: &str) -> Result<Config, PostgresError> {
    as_written(conninfo).map(|(config, _)| config)
}

/// [`connection_config`], connecting to `database` rather than the
/// string's, its password looked up for that database.
pub(crate) fn connection_config_for(
    conninfo: &str,
    database: Option<&str>,
) -> Result<Config, PostgresError> {
    let (mut config, options) = as_written(conninfo)?;
    if let Some(database) = database {
        config.dbname(database);
    }
    password::fill_in(
        &mut config,
        options.passfile.as_deref(),
        &password::Environment::of_process(),
    )?;
    Ok(config)
}

/// The driver's settings the string gives, `sslmode` mapped, and the
/// options the driver lacks.
fn as_written(conninfo: &str) -> Result<(Config, options::Options), PostgresError> {
    let (rest, options) = options::take(conninfo)?;
    let mut config = Config::from_str(&rest).map_err(PostgresError::Config)?;
    let mode = options.mode.unwrap_or(Mode::Prefer);
    let hosts = config.get_hosts();
    let named = hosts.iter().any(|h| matches!(h, Host::Tcp(_)));
    let sockets = hosts.iter().any(|h| matches!(h, Host::Unix(_)));
    let by_address = !config.get_hostaddrs().is_empty();
    let refused = |why: &str| Err(PostgresError::Tls(format!("sslmode={} {why}", mode.name())));
    config.ssl_mode(match mode {
        // Over Unix-domain sockets alone: the server offers no TLS there.
        _ if !named && !by_address => SslMode::Disable,
        Mode::Disable => SslMode::Disable,
        // The driver makes no TLS session without a host name.
        Mode::Prefer if !named => SslMode::Disable,
        _ if !named => return refused("needs `host`, the server's name, beside `hostaddr`"),
        Mode::Prefer => SslMode::Prefer,
        // The driver's mode is one for every host: the sockets would be
        // asked for TLS, which they never have.
        _ if sockets => return refused("cannot mix Unix-domain sockets and TCP hosts in `host`"),
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    Ok((config, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(conninfo: &str) -> SslMode {
        connection_config(conninfo).expect(conninfo).get_ssl_mode()
    }

    #[test]
    fn the_driver_gets_the_mode_it_knows() {
        assert_eq!(mode("host=h"), SslMode::Prefer);
        assert_eq!(mode("host=h sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://h/d?sslmode=require"), SslMode::Require);
    }

    #[test]
    fn a_unix_domain_socket_is_never_encrypted() {
        assert_eq!(
            mode("host=/run/postgresql sslmode=require"),
            SslMode::Disable
        );
        assert_eq!(mode("host=/run/postgresql,db"), SslMode::Prefer);
        for mixed in [
            "host=/run/postgresql,db sslmode=require",
            "postgres://db,%2Frun%2Fpostgresql/jobs?sslmode=verify-ca&sslrootcert=/ca.pem",
        ] {
            let error = connection_config(mixed).expect_err(mixed).to_string();
            assert!(error.contains("cannot mix Unix-domain sockets"), "{error}");
        }
    }

    #[test]
    fn an_address_without_a_name_is_encrypted_only_when_preferred() {
        assert_eq!(mode("hostaddr=10.0.0.1"), SslMode::Disable);
        let named = "hostaddr=10.0.0.1 host=db sslmode=require";
        assert_eq!(mode(named), SslMode::Require);
        for conninfo in [
            "hostaddr=10.0.0.1 sslmode=require",
            "host=/run/pg hostaddr=10.0.0.1 sslmode=verify-ca",
        ] {
            let error = connection_config(conninfo).expect_err(conninfo).to_string();
            assert!(error.contains("needs `host`"), "{error}");
        }
    }
}
