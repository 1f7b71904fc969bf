//! TLS for every front door (rustls over ring): the `tls-*` settings as
//! Redis 7.0 names them, the server configuration built from them, and the
//! handshake that wraps an accepted TCP stream before a door's connection
//! loop sees it. The configuration in force can be swapped while the server
//! runs (`CONFIG SET tls-cert-file ...`, SIGHUP): connections accepted
//! afterwards get the new certificate, open ones keep theirs, and a
//! configuration that does not load is refused whole, leaving the old one.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Whether clients must present a certificate (Redis `tls-auth-clients`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthClients {
    /// A certificate signed by a trusted CA is required (Redis's default).
    #[default]
    Yes,
    /// No certificate is asked for.
    No,
    /// A certificate is asked for and checked if sent, but not required.
    Optional,
}

impl AuthClients {
    /// The name CONFIG GET reports and CONFIG SET takes.
    pub fn name(self) -> &'static str {
        match self {
            AuthClients::Yes => "yes",
            AuthClients::No => "no",
            AuthClients::Optional => "optional",
        }
    }

    /// Parses `yes`, `no` or `optional` (any case), with Redis's error text.
    pub fn parse(v: &[u8]) -> Result<AuthClients, String> {
        match v.to_ascii_lowercase().as_slice() {
            b"yes" => Ok(AuthClients::Yes),
            b"no" => Ok(AuthClients::No),
            b"optional" => Ok(AuthClients::Optional),
            _ => Err("argument(s) must be one of the following: no, yes, optional".into()),
        }
    }
}

impl fmt::Display for AuthClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `tls-*` settings that say how to build the server's TLS
/// configuration; CONFIG SET may change them while running.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, server certificate first (`tls-cert-file`).
    pub cert_file: String,
    /// PEM private key of that certificate (`tls-key-file`).
    pub key_file: String,
    /// PEM file of the CAs that sign client certificates
    /// (`tls-ca-cert-file`).
    pub ca_cert_file: String,
    /// A directory whose PEM files hold more such CAs (`tls-ca-cert-dir`).
    pub ca_cert_dir: String,
    /// Whether clients must present a certificate (`tls-auth-clients`).
    pub auth_clients: AuthClients,
    /// Space-separated protocol versions (`tls-protocols`); empty means
    /// `TLSv1.2 TLSv1.3`.
    pub protocols: String,
    /// Colon-separated TLSv1.3 cipher suites in OpenSSL's (IANA) names
    /// (`tls-ciphersuites`); empty means all that rustls offers.
    pub ciphersuites: String,
}

/// The TLSv1.3 cipher suites offered, by the names OpenSSL and
/// `tls-ciphersuites` use, with rustls's own.
const TLS13_SUITES: [(&str, rustls::CipherSuite); 3] = [
    (
        "TLS_AES_256_GCM_SHA384",
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_AES_128_GCM_SHA256",
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// Parses `tls-protocols`: `TLSv1.2` and/or `TLSv1.3`, space-separated,
/// any case. TLSv1 and TLSv1.1 are named as not offered (rustls has
/// neither, and both are deprecated).
pub fn parse_protocols(v: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if v.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut versions = Vec::new();
    for word in v.split_ascii_whitespace() {
        let version = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            "tlsv1" | "tlsv1.1" => {
                return Err(format!(
                    "tls-protocols: {word} is not offered (magpie speaks TLSv1.2 and TLSv1.3)"
                ))
            }
            _ => {
                return Err(format!(
                    "Invalid tls-protocols specified ('{word}'). Use a combination of 'TLSv1.2' and 'TLSv1.3'."
                ))
            }
        };
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    Ok(versions)
}

/// The crypto provider with the cipher suites `tls-ciphersuites` allows
/// (TLSv1.2 suites are rustls's defaults either way).
fn provider(ciphersuites: &str) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if ciphersuites.trim().is_empty() {
        return Ok(provider);
    }
    let mut wanted = Vec::new();
    for name in ciphersuites
        .split(':')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let Some((_, suite)) = TLS13_SUITES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        else {
            let known: Vec<&str> = TLS13_SUITES.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "tls-ciphersuites: unknown TLSv1.3 cipher suite '{name}' (known: {})",
                known.join(":")
            ));
        };
        wanted.push(*suite);
    }
    provider.cipher_suites.retain(|s| match s {
        rustls::SupportedCipherSuite::Tls13(_) => wanted.contains(&s.suite()),
        _ => true,
    });
    Ok(provider)
}

/// Reads every certificate of a PEM file, naming the file and the setting
/// in any error.
fn read_certs(path: &Path, setting: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read {setting} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The trusted client CAs: `tls-ca-cert-file` and every PEM file of
/// `tls-ca-cert-dir`.
fn client_roots(s: &TlsSettings) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, from: &Path| -> Result<(), String> {
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("bad CA certificate in {}: {e}", from.display()))?;
        }
        Ok(())
    };
    if !s.ca_cert_file.is_empty() {
        let path = Path::new(&s.ca_cert_file);
        add(read_certs(path, "tls-ca-cert-file")?, path)?;
    }
    if !s.ca_cert_dir.is_empty() {
        let dir = Path::new(&s.ca_cert_dir);
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read tls-ca-cert-dir {}: {e}", dir.display()))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            // files without a certificate (a README, a CRL) are skipped
            if let Ok(certs) = read_certs(&path, "tls-ca-cert-dir file") {
                add(certs, &path)?;
            }
        }
    }
    Ok(roots)
}

/// Builds the rustls server configuration the settings describe, reading
/// every file they name; the error says which setting and file failed.
pub fn build(s: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    if s.cert_file.is_empty() || s.key_file.is_empty() {
        return Err(
            "TLS needs tls-cert-file and tls-key-file (--tls-cert-file, --tls-key-file)".into(),
        );
    }
    let versions = parse_protocols(&s.protocols)?;
    let provider = Arc::new(provider(&s.ciphersuites)?);
    let cert_path = Path::new(&s.cert_file);
    let certs = read_certs(cert_path, "tls-cert-file")?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file)
        .map_err(|e| format!("cannot read tls-key-file {}: {e}", s.key_file))?;
    let verifier = match s.auth_clients {
        AuthClients::No => WebPkiClientVerifier::no_client_auth(),
        auth => {
            if s.ca_cert_file.is_empty() && s.ca_cert_dir.is_empty() {
                return Err(
                    "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-auth-clients is yes or optional (or set tls-auth-clients no)"
                        .into(),
                );
            }
            let roots = client_roots(s)?;
            if roots.is_empty() {
                return Err("tls-ca-cert-file and tls-ca-cert-dir hold no CA certificate".into());
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if auth == AuthClients::Optional {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("cannot use the client CAs: {e}"))?
        }
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols and tls-ciphersuites leave nothing to speak: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "tls-key-file {} does not fit tls-cert-file {}: {e}",
                s.key_file, s.cert_file
            )
        })?;
    Ok(Arc::new(config))
}

/// The server's TLS state: the settings, whether any TLS port listens, and
/// the configuration new connections are handshaken with.
pub struct Tls {
    /// Held while a new configuration is built, so changes apply in turn.
    settings: Mutex<TlsSettings>,
    /// True when a TLS port is configured: only then are the files loaded
    /// (as Redis applies `tls-*` only with TLS enabled).
    active: bool,
    /// What the next handshake uses (None until [`Tls::load`]).
    current: RwLock<Option<Arc<ServerConfig>>>,
    /// A client that has not finished its handshake this long after
    /// connecting is dropped, so stalled handshakes cannot pin connections.
    handshake_timeout: Duration,
}

impl Tls {
    /// The TLS state of a server started with `settings`, `active` when
    /// some door listens for TLS, dropping clients whose handshake takes
    /// longer than `handshake_timeout`; nothing is read from disk until
    /// [`Tls::load`].
    pub fn new(settings: TlsSettings, active: bool, handshake_timeout: Duration) -> Tls {
        Tls {
            settings: Mutex::new(settings),
            active,
            current: RwLock::new(None),
            handshake_timeout,
        }
    }

    /// True when some door listens for TLS.
    pub fn active(&self) -> bool {
        self.active
    }

    /// The settings in force.
    pub fn settings(&self) -> TlsSettings {
        self.settings.lock().clone()
    }

    /// Loads the configuration at start (a no-op without a TLS port).
    pub fn load(&self) -> Result<(), String> {
        self.reload()
    }

    /// Rereads the files of the settings in force (SIGHUP): on success new
    /// connections get what they hold now; on failure nothing changes.
    pub fn reload(&self) -> Result<(), String> {
        let settings = self.settings.lock();
        if self.active {
            *self.current.write() = Some(build(&settings)?);
        }
        Ok(())
    }

    /// Checks `new`, then makes it the settings in force (CONFIG SET). With
    /// TLS active the configuration is rebuilt from it first, and if that
    /// fails neither the settings nor the configuration change. Protocol
    /// and cipher-suite names are checked even with TLS off.
    pub fn apply(&self, new: TlsSettings) -> Result<(), String> {
        let mut settings = self.settings.lock();
        parse_protocols(&new.protocols)?;
        provider(&new.ciphersuites)?;
        if self.active {
            *self.current.write() = Some(build(&new)?);
        }
        *settings = new;
        Ok(())
    }

    /// The acceptor for a connection accepted now.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current.read().clone().map(TlsAcceptor::from)
    }
}

/// Runs the server side of the handshake on an accepted stream, within
/// the handshake timeout (`--tls-handshake-timeout`). A client that fails it (plaintext on a TLS port,
/// an untrusted or expired certificate, none where one is required) is
/// logged and dropped: `None`.
pub async fn handshake(
    tls: &Tls,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let acceptor = tls.acceptor()?;
    match tokio::time::timeout(tls.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::info!(client = %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(client = %peer, "TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_like_redis_names_them() {
        assert_eq!(parse_protocols("").unwrap().len(), 2);
        assert_eq!(parse_protocols("TLSv1.2").unwrap().len(), 1);
        assert_eq!(parse_protocols("tlsv1.3 TLSv1.2 TLSv1.3").unwrap().len(), 2);
        assert!(parse_protocols("TLSv1.1")
            .unwrap_err()
            .contains("not offered"));
        assert!(parse_protocols("TLSv1.4")
            .unwrap_err()
            .contains("Invalid tls-protocols"));
    }

    #[test]
    fn ciphersuites_keep_only_the_named_tls13_suites() {
        let all = provider("").unwrap().cipher_suites.len();
        let one = provider("TLS_AES_128_GCM_SHA256").unwrap();
        let tls13: Vec<_> = one
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)))
            .collect();
        assert_eq!(tls13.len(), 1);
        assert_eq!(
            tls13[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        assert!(one.cipher_suites.len() < all);
        assert!(provider("TLS_AES_128_GCM_SHA256:NOPE")
            .unwrap_err()
            .contains("unknown TLSv1.3 cipher suite 'NOPE'"));
    }

    #[test]
    fn auth_clients_takes_redis_values() {
        assert_eq!(AuthClients::parse(b"YES"), Ok(AuthClients::Yes));
        assert_eq!(AuthClients::parse(b"optional"), Ok(AuthClients::Optional));
        assert_eq!(
            AuthClients::parse(b"maybe").unwrap_err(),
            "argument(s) must be one of the following: no, yes, optional"
        );
    }

    #[test]
    fn build_names_the_missing_setting() {
        let e = build(&TlsSettings::default()).unwrap_err();
        assert!(e.contains("tls-cert-file"), "{e}");
        let s = TlsSettings {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
            auth_clients: AuthClients::No,
            ..TlsSettings::default()
        };
        let e = build(&s).unwrap_err();
        assert!(
            e.starts_with("cannot read tls-cert-file /nonexistent/cert.pem"),
            "{e}"
        );
    }
}
