//! TLS for `kind = "postgres"` connections (rustls with the aws-lc-rs
//! provider, the same rustls that the AWS and HTTP clients build):
//!
//! ```toml
//! [env.prod.connections.shop]
//! kind = "postgres"
//! url_env = "SHOP_URL"
//! sslmode = "verify-full"          # or `tls = true` (the same)
//! root_cert = "/etc/ssl/shop-ca.pem" # a private CA; default: the system's roots
//! ```
//!
//! The modes are libpq's: `disable` (the default; a plain connection),
//! `require` (encrypted, the server's certificate not checked, unless
//! `root_cert` is given: then as `verify-ca`), `verify-ca` (the certificate
//! must chain to a trusted root) and `verify-full` (and name the host that
//! was connected to). `sslmode=require` in the URL means `require`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};

use crate::spec::project::Connection;

/// The connection settings this module reads.
pub const KEYS: &[&str] = &["tls", "sslmode", "root_cert"];

/// How a connection uses TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    Off,
    /// Encrypted; the certificate is checked as far as `verify` says.
    On {
        verify: Verify,
        root_cert: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    Nothing,
    Chain,
    ChainAndHost,
}

impl Tls {
    /// The TLS settings of `conn` (and of its URL's `sslmode`, already in
    /// `cfg`).
    pub fn of(conn: &Connection, cfg: &Config) -> Result<Self> {
        let s = &conn.settings;
        let root_cert = match s.get("root_cert") {
            None => None,
            Some(v) => Some(PathBuf::from(v.as_str().ok_or_else(|| {
                anyhow!("connection `{}`: `root_cert` must be a path to a PEM file", conn.name)
            })?)),
        };
        let tls = match s.get("tls") {
            None => None,
            Some(toml::Value::Boolean(b)) => Some(*b),
            Some(_) => bail!("connection `{}`: `tls` must be true or false", conn.name),
        };
        let mode = s.get("sslmode").map(|v| v.as_str().unwrap_or("").to_string());
        let verify = match (tls, mode.as_deref()) {
            (Some(true), None | Some("verify-full")) | (None, Some("verify-full")) => Some(Verify::ChainAndHost),
            (Some(false), None | Some("disable")) | (None, Some("disable")) => None,
            (None | Some(true), Some("verify-ca")) => Some(Verify::Chain),
            (None | Some(true), Some("require")) => Some(Verify::Nothing),
            (None, None) => (cfg.get_ssl_mode() == SslMode::Require).then_some(Verify::Nothing),
            (Some(false), Some(_)) | (Some(true), Some("disable")) => bail!(
                "connection `{}`: `tls` and `sslmode` disagree: keep one of them",
                conn.name
            ),
            (_, Some(other)) => bail!(
                "connection `{}`: `sslmode = \"{other}\"` is not a mode: use \"disable\", \"require\", \"verify-ca\" or \"verify-full\"",
                conn.name
            ),
        };
        Ok(match verify {
            None if root_cert.is_some() => bail!(
                "connection `{}`: `root_cert` is set but TLS is off: add `sslmode = \"verify-full\"`",
                conn.name
            ),
            None => Tls::Off,
            // libpq: `require` with a root certificate checks the chain.
            Some(Verify::Nothing) if root_cert.is_some() => Tls::On {
                verify: Verify::Chain,
                root_cert,
            },
            Some(verify) => Tls::On { verify, root_cert },
        })
    }

    /// Connects with `cfg` over this TLS setting; the connection's task is
    /// spawned and returned so the caller can end it.
    pub async fn connect(&self, cfg: &mut Config) -> Result<(Client, tokio::task::JoinHandle<()>), ConnectError> {
        let log_end = |r: Result<(), tokio_postgres::Error>| {
            if let Err(e) = r {
                tracing::debug!("PostgreSQL connection ended: {e}");
            }
        };
        match self {
            Tls::Off => {
                let (client, connection) = cfg.connect(tokio_postgres::NoTls).await?;
                Ok((client, tokio::spawn(async move { log_end(connection.await) })))
            }
            Tls::On { verify, root_cert } => {
                cfg.ssl_mode(SslMode::Require);
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
                    client_config(*verify, root_cert.as_ref()).map_err(ConnectError::Setup)?,
                );
                let (client, connection) = cfg.connect(tls).await?;
                Ok((client, tokio::spawn(async move { log_end(connection.await) })))
            }
        }
    }
}

/// Why a connection failed: the TLS setup (a bad `root_cert`) or the
/// connection itself.
#[derive(Debug)]
pub enum ConnectError {
    Setup(anyhow::Error),
    Postgres(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for ConnectError {
    fn from(e: tokio_postgres::Error) -> Self {
        ConnectError::Postgres(e)
    }
}

impl ConnectError {
    /// The error, with what to check when the server's certificate was
    /// refused.
    pub fn describe(&self, describe_pg: impl Fn(&tokio_postgres::Error) -> String) -> String {
        match self {
            ConnectError::Setup(e) => format!("{e:#}"),
            ConnectError::Postgres(e) => {
                let mut text = describe_pg(e);
                // The rustls error is the source, not in Display.
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    if !text.contains(&s.to_string()) {
                        text += &format!(": {s}");
                    }
                    source = s.source();
                }
                if text.contains("certificate") {
                    text += " (the server's certificate must chain to `root_cert` (or a system root) and, with verify-full, name the host connected to)";
                }
                text
            }
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls client config for `verify`, trusting `root_cert` (PEM, one or
/// more certificates) or else the system's roots.
fn client_config(verify: Verify, root_cert: Option<&PathBuf>) -> Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("`root_cert` {}: {e}", path.display()))?;
            if certs.is_empty() {
                bail!("`root_cert` {}: no PEM certificate in it", path.display());
            }
            for c in certs {
                roots
                    .add(c)
                    .with_context(|| format!("`root_cert` {}: a certificate is not usable", path.display()))?;
            }
        }
        None if verify != Verify::Nothing => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                bail!("no system root certificates found: set `root_cert` to the server's CA (PEM)");
            }
        }
        None => {}
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let config = match verify {
        Verify::ChainAndHost => builder.with_root_certificates(roots).with_no_client_auth(),
        other => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .ok();
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient {
                    inner: if other == Verify::Chain { inner } else { None },
                    provider: provider(),
                }))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// `require` (nothing checked but the handshake's signatures) and
/// `verify-ca` (the chain checked, not the name).
#[derive(Debug)]
struct Lenient {
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(settings: &str, url: &str) -> Result<Tls> {
        let conn = Connection {
            name: "shop".into(),
            kind: "postgres".into(),
            settings: toml::from_str(settings).unwrap(),
        };
        Tls::of(&conn, &url.parse().unwrap())
    }

    #[test]
    fn modes() {
        let url = "postgres://u@h/db";
        assert_eq!(tls("", url).unwrap(), Tls::Off);
        let full = Tls::On {
            verify: Verify::ChainAndHost,
            root_cert: None,
        };
        assert_eq!(tls("tls = true", url).unwrap(), full);
        assert_eq!(tls("sslmode = \"verify-full\"", url).unwrap(), full);
        assert_eq!(
            tls("", "postgres://u@h/db?sslmode=require").unwrap(),
            Tls::On {
                verify: Verify::Nothing,
                root_cert: None
            }
        );
        assert_eq!(
            tls("sslmode = \"require\"\nroot_cert = \"ca.pem\"", url).unwrap(),
            Tls::On {
                verify: Verify::Chain,
                root_cert: Some("ca.pem".into())
            }
        );
        let e = tls("sslmode = \"verify\"", url).unwrap_err().to_string();
        assert!(e.contains("\"verify-full\""), "{e}");
        let e = tls("root_cert = \"ca.pem\"", url).unwrap_err().to_string();
        assert!(e.contains("TLS is off"), "{e}");
        assert!(tls("tls = false\nsslmode = \"require\"", url).is_err());
    }

    #[test]
    fn a_missing_root_cert_is_named() {
        let e = client_config(Verify::ChainAndHost, Some(&PathBuf::from("/nonexistent/ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
