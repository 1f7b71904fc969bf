//! TLS on every door, over real sockets: certificates made here with
//! rcgen; redis-cli --tls, openssl s_client, curl over HTTPS, the redis
//! crate's rustls client and a rustls client speaking RESP and memcached
//! text; mutual TLS yes/no/optional,
//! the refusals (no client certificate, another CA's, an expired one,
//! plaintext on a TLS port, a TLS version not offered), reloading on
//! CONFIG SET and SIGHUP, bad files at start, and CONFIG GET tls-* beside
//! a real redis-server.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{free_port, magpie, Server};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA and the certificates the tests use, written to a temporary
/// directory as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

/// One issued certificate: its PEM and its key's.
struct Issued {
    cert: String,
    key: String,
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (Issuer::new(params, key), cert.pem())
}

fn issue(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> Issued {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Issued {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    /// ca.crt; server.crt/key and server2.crt/key (both for localhost and
    /// 127.0.0.1); client.crt/key from the CA; other.crt/key from another
    /// CA; expired.crt/key from the CA but expired in 2021.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, ca_pem) = ca("magpie test CA");
        let (other_issuer, other_ca_pem) = ca("another CA");
        let server_sans = ["localhost", "127.0.0.1"];
        let files = [
            (
                "server",
                issue(
                    &issuer,
                    "server one",
                    &server_sans,
                    ExtendedKeyUsagePurpose::ServerAuth,
                    false,
                ),
            ),
            (
                "server2",
                issue(
                    &issuer,
                    "server two",
                    &server_sans,
                    ExtendedKeyUsagePurpose::ServerAuth,
                    false,
                ),
            ),
            (
                "client",
                issue(
                    &issuer,
                    "client",
                    &[],
                    ExtendedKeyUsagePurpose::ClientAuth,
                    false,
                ),
            ),
            (
                "other",
                issue(
                    &other_issuer,
                    "stranger",
                    &[],
                    ExtendedKeyUsagePurpose::ClientAuth,
                    false,
                ),
            ),
            (
                "expired",
                issue(
                    &issuer,
                    "old client",
                    &[],
                    ExtendedKeyUsagePurpose::ClientAuth,
                    true,
                ),
            ),
        ];
        std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
        std::fs::write(dir.path().join("other-ca.crt"), other_ca_pem).unwrap();
        for (name, issued) in files {
            std::fs::write(dir.path().join(format!("{name}.crt")), issued.cert).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), issued.key).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A magpie with its RESP port in plaintext (for CONFIG) and TLS on the
/// RESP, memcached and HTTP doors; `extra` flags after the TLS ones.
struct TlsServer {
    server: Server,
    tls: u16,
    mc: u16,
    https: u16,
}

fn start(pki: &Pki, extra: &[&str]) -> TlsServer {
    let (tls, mc, https) = (free_port(), free_port(), free_port());
    let (tls_s, mc_s, https_s) = (tls.to_string(), mc.to_string(), https.to_string());
    let (cert, key, ca) = (pki.p("server.crt"), pki.p("server.key"), pki.p("ca.crt"));
    let mut flags = vec![
        "--tls-port",
        &tls_s,
        "--tls-memcache-port",
        &mc_s,
        "--tls-http-port",
        &https_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
    ];
    flags.extend_from_slice(extra);
    TlsServer {
        server: magpie(&flags),
        tls,
        mc,
        https,
    }
}

/// Which certificate a test client presents.
#[derive(Clone, Copy)]
enum ClientCert<'a> {
    None,
    Named(&'a str),
}

fn client_config(
    pki: &Pki,
    cert: ClientCert<'_>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.path("ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let config = match cert {
        ClientCert::None => builder.with_no_client_auth(),
        ClientCert::Named(name) => {
            let chain = CertificateDer::pem_file_iter(pki.path(&format!("{name}.crt")))
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_file(pki.path(&format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    Arc::new(config)
}

type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A rustls client connection to `port` (not yet handshaken: the first
/// write or read does it).
fn tls_connect(
    pki: &Pki,
    port: u16,
    cert: ClientCert<'_>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsConn {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let conn = rustls::ClientConnection::new(
        client_config(pki, cert, versions),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Sends `request` and reads until `want` has arrived; the bytes read, or
/// the error that ended the connection first.
fn exchange(conn: &mut TlsConn, request: &[u8], want: &[u8]) -> std::io::Result<Vec<u8>> {
    conn.write_all(request)?;
    conn.flush()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(want) {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {:?}", String::from_utf8_lossy(&got)),
            ));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(got)
}

/// PING over TLS as `cert`: Ok when PONG came back.
fn ping(pki: &Pki, port: u16, cert: ClientCert<'_>) -> std::io::Result<()> {
    let mut conn = tls_connect(pki, port, cert, BOTH);
    let got = exchange(&mut conn, b"PING\r\n", b"\r\n")?;
    assert_eq!(got, b"+PONG\r\n");
    Ok(())
}

/// The server certificate a new connection is shown.
fn served_cert(pki: &Pki, port: u16) -> Vec<u8> {
    let mut conn = tls_connect(pki, port, ClientCert::Named("client"), BOTH);
    exchange(&mut conn, b"PING\r\n", b"+PONG\r\n").unwrap();
    conn.conn.peer_certificates().unwrap()[0].to_vec()
}

fn pem_cert(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path).unwrap().to_vec()
}

fn tool(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(name)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !found {
        assert!(!common::in_ci(), "CI=true but {name} is missing");
        eprintln!("\n*** SKIPPED: {name} is not installed ***\n");
    }
    found
}

#[test]
fn resp_over_tls_with_a_client_certificate() {
    let pki = Pki::new();
    let s = start(&pki, &[]);
    let mut conn = tls_connect(&pki, s.tls, ClientCert::Named("client"), BOTH);
    let got = exchange(
        &mut conn,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"hello\r\n",
    )
    .unwrap();
    assert_eq!(got, b"+OK\r\n$5\r\nhello\r\n");
    // the same keyspace as the plaintext port
    assert_eq!(s.server.client().cmd_str(&["GET", "k"]), "$5\r\nhello\r\n");
    // a large reply crosses many TLS records intact
    let big = "x".repeat(300_000);
    s.server.client().cmd_str(&["SET", "big", &big]);
    let got = exchange(
        &mut conn,
        b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n",
        format!("{big}\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(got.len(), "$300000\r\n".len() + 300_002);
}

#[test]
fn mutual_tls_yes_refuses_missing_foreign_and_expired_certificates() {
    let pki = Pki::new();
    let s = start(&pki, &[]);
    ping(&pki, s.tls, ClientCert::Named("client")).unwrap();
    for cert in ["other", "expired"] {
        let e = ping(&pki, s.tls, ClientCert::Named(cert)).unwrap_err();
        eprintln!("{cert}: {e}");
    }
    ping(&pki, s.tls, ClientCert::None).unwrap_err();
    // the server says why in its log, and keeps serving
    ping(&pki, s.tls, ClientCert::Named("client")).unwrap();
    for line in ["TLS handshake failed", "UnknownIssuer", "xpired"] {
        let log = common::log_once_it_has(s.server.port, line);
        assert!(log.contains(line), "{log}");
    }
    // the same rules on the memcached and HTTPS doors
    for port in [s.mc, s.https] {
        let mut conn = tls_connect(&pki, port, ClientCert::None, BOTH);
        exchange(&mut conn, b"version\r\n", b"\r\n").unwrap_err();
        let mut conn = tls_connect(&pki, port, ClientCert::Named("other"), BOTH);
        exchange(&mut conn, b"version\r\n", b"\r\n").unwrap_err();
    }
}

#[test]
fn mutual_tls_optional_checks_a_certificate_only_if_sent() {
    let pki = Pki::new();
    let s = start(&pki, &["--tls-auth-clients", "optional"]);
    ping(&pki, s.tls, ClientCert::None).unwrap();
    ping(&pki, s.tls, ClientCert::Named("client")).unwrap();
    ping(&pki, s.tls, ClientCert::Named("other")).unwrap_err();
    ping(&pki, s.tls, ClientCert::Named("expired")).unwrap_err();
}

#[test]
fn mutual_tls_no_asks_for_no_certificate() {
    let pki = Pki::new();
    // no CA needed without client authentication
    let (tls, tls_s) = {
        let p = free_port();
        (p, p.to_string())
    };
    let (cert, key) = (pki.p("server.crt"), pki.p("server.key"));
    let _s = magpie(&[
        "--tls-port",
        &tls_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-auth-clients",
        "no",
    ]);
    ping(&pki, tls, ClientCert::None).unwrap();
}

#[test]
fn a_ca_directory_trusts_every_ca_in_it() {
    let pki = Pki::new();
    let cas = pki.path("cas");
    std::fs::create_dir(&cas).unwrap();
    std::fs::copy(pki.path("ca.crt"), cas.join("one.pem")).unwrap();
    std::fs::copy(pki.path("other-ca.crt"), cas.join("two.pem")).unwrap();
    std::fs::write(cas.join("README"), "not a certificate\n").unwrap();
    let tls = free_port();
    let (tls_s, cert, key, dir) = (
        tls.to_string(),
        pki.p("server.crt"),
        pki.p("server.key"),
        cas.display().to_string(),
    );
    let s = magpie(&[
        "--tls-port",
        &tls_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-dir",
        &dir,
    ]);
    ping(&pki, tls, ClientCert::Named("client")).unwrap();
    ping(&pki, tls, ClientCert::Named("other")).unwrap();
    ping(&pki, tls, ClientCert::None).unwrap_err();
    let mut c = s.client();
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "tls-ca-cert-dir"]),
        format!(
            "*2\r\n$15\r\ntls-ca-cert-dir\r\n${}\r\n{dir}\r\n",
            dir.len()
        )
    );
}

#[test]
fn plaintext_on_a_tls_port_is_dropped() {
    let pki = Pki::new();
    let s = start(&pki, &[]);
    for port in [s.tls, s.mc, s.https] {
        let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        raw.write_all(b"PING\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        // closed (possibly after a TLS alert record), never answered
        let _ = raw.read_to_end(&mut got);
        assert!(
            !got.windows(4).any(|w| w == b"PONG" || w == b"HTTP"),
            "{got:?}"
        );
    }
    // nothing else noticed
    ping(&pki, s.tls, ClientCert::Named("client")).unwrap();
    assert_eq!(s.server.client().cmd_str(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_stalled_handshake_is_closed_at_the_timeout() {
    let pki = Pki::new();
    let s = start(&pki, &["--tls-handshake-timeout", "300"]);
    // connects and says nothing: closed once the timeout passes
    let mut raw = TcpStream::connect(("127.0.0.1", s.tls)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut got = Vec::new();
    raw.read_to_end(&mut got)
        .expect("closed by the server, not by the read timeout");
    assert!(got.is_empty(), "{got:?}");
    let log = common::log_once_it_has(s.server.port, "TLS handshake timed out");
    assert!(log.contains("TLS handshake timed out"), "{log}");
    // a client that completes its handshake in time is served and is not
    // cut off later: the timeout covers only the handshake
    let mut conn = tls_connect(&pki, s.tls, ClientCert::Named("client"), BOTH);
    exchange(&mut conn, b"PING\r\n", b"+PONG\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    exchange(&mut conn, b"PING\r\n", b"+PONG\r\n").unwrap();
    let out = common::failed_serve(&["--tls-handshake-timeout", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--tls-handshake-timeout must be between 1 and 3600000"));
}

#[test]
fn tls_protocols_limits_the_versions_offered() {
    let pki = Pki::new();
    let s = start(&pki, &["--tls-protocols", "TLSv1.2"]);
    let mut conn = tls_connect(
        &pki,
        s.tls,
        ClientCert::Named("client"),
        &[&rustls::version::TLS13],
    );
    exchange(&mut conn, b"PING\r\n", b"\r\n").unwrap_err();
    let mut conn = tls_connect(&pki, s.tls, ClientCert::Named("client"), BOTH);
    exchange(&mut conn, b"PING\r\n", b"+PONG\r\n").unwrap();
    assert_eq!(
        conn.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    // CONFIG SET applies to new connections
    let mut c = s.server.client();
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "tls-protocols", "TLSv1.3"]),
        "+OK\r\n"
    );
    let mut conn = tls_connect(&pki, s.tls, ClientCert::Named("client"), BOTH);
    exchange(&mut conn, b"PING\r\n", b"+PONG\r\n").unwrap();
    assert_eq!(
        conn.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let e = c.cmd_str(&["CONFIG", "SET", "tls-protocols", "TLSv1.1"]);
    assert!(e.contains("TLSv1.1 is not offered"), "{e}");
    let e = c.cmd_str(&["CONFIG", "SET", "tls-ciphersuites", "TLS_NOPE"]);
    assert!(e.contains("unknown TLSv1.3 cipher suite 'TLS_NOPE'"), "{e}");
}

#[test]
fn memcached_over_tls() {
    let pki = Pki::new();
    let s = start(&pki, &[]);
    let mut conn = tls_connect(&pki, s.mc, ClientCert::Named("client"), BOTH);
    assert_eq!(
        exchange(&mut conn, b"set k 5 0 2\r\nhi\r\n", b"\r\n").unwrap(),
        b"STORED\r\n"
    );
    assert_eq!(
        exchange(&mut conn, b"get k\r\n", b"END\r\n").unwrap(),
        b"VALUE k 5 2\r\nhi\r\nEND\r\n"
    );
    assert_eq!(
        exchange(&mut conn, b"mg k v\r\n", b"\r\nhi\r\n").unwrap(),
        b"VA 2\r\nhi\r\n"
    );
    // the same keyspace (database 0) as RESP
    assert_eq!(s.server.client().cmd_str(&["GET", "k"]), "$2\r\nhi\r\n");
}

#[test]
fn https_with_curl() {
    if !tool("curl") {
        return;
    }
    let pki = Pki::new();
    let s = start(&pki, &[]);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", &pki.p("ca.crt")])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let url = format!("https://localhost:{}/v1/keys/greeting", s.https);
    let with_cert = [
        "--cert",
        &pki.p("client.crt"),
        "--key",
        &pki.p("client.key"),
    ];
    let (ok, _, err) = curl(&[&with_cert[..], &["-X", "PUT", "--data", "hello", &url]].concat());
    assert!(ok, "{err}");
    let (ok, body, err) = curl(&[&with_cert[..], &[url.as_str()]].concat());
    assert!(ok, "{err}");
    assert_eq!(body, "hello");
    let (ok, body, _) = curl(
        &[
            &with_cert[..],
            &[format!("https://127.0.0.1:{}/healthz", s.https).as_str()],
        ]
        .concat(),
    );
    assert!(ok);
    assert!(body.contains("ok"), "{body}");
    // no client certificate: refused
    let (ok, _, _) = curl(&[url.as_str()]);
    assert!(!ok);
    // plain HTTP to the HTTPS port: no answer
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{}/healthz", s.https))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        s.server.client().cmd_str(&["GET", "greeting"]),
        "$5\r\nhello\r\n"
    );
}

fn redis_cli_tls(pki: &Pki, port: u16, cert: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["--tls", "--cacert", &pki.p("ca.crt")]);
    if let Some(name) = cert {
        cmd.args(["--cert", &pki.p(&format!("{name}.crt"))])
            .args(["--key", &pki.p(&format!("{name}.key"))]);
    }
    let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success() && !text.contains("rror"), text)
}

fn redis_cli_has_tls() -> bool {
    if !tool("redis-cli") {
        return false;
    }
    let help = Command::new("redis-cli").arg("--help").output().unwrap();
    let has = String::from_utf8_lossy(&help.stdout).contains("--tls")
        || String::from_utf8_lossy(&help.stderr).contains("--tls");
    if !has {
        assert!(!common::in_ci(), "CI=true but redis-cli has no --tls");
        eprintln!("\n*** SKIPPED: redis-cli was built without TLS ***\n");
    }
    has
}

#[test]
fn redis_cli_and_openssl_s_client() {
    if !redis_cli_has_tls() {
        return;
    }
    let pki = Pki::new();
    let s = start(&pki, &[]);
    let (ok, out) = redis_cli_tls(&pki, s.tls, Some("client"), &["SET", "a", "1"]);
    assert!(ok && out.trim() == "OK", "{out}");
    let (ok, out) = redis_cli_tls(&pki, s.tls, Some("client"), &["GET", "a"]);
    assert!(ok && out.trim() == "1", "{out}");
    let (ok, out) = redis_cli_tls(&pki, s.tls, None, &["PING"]);
    assert!(!ok, "{out}");
    let (ok, out) = redis_cli_tls(&pki, s.tls, Some("other"), &["PING"]);
    assert!(!ok, "{out}");

    if !tool("openssl") {
        return;
    }
    let out = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error"])
        .args(["-connect", &format!("127.0.0.1:{}", s.tls)])
        .args(["-CAfile", &pki.p("ca.crt")])
        .args(["-cert", &pki.p("client.crt"), "-key", &pki.p("client.key")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            // QUIT makes the server close, which ends s_client
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"GET a\r\nQUIT\r\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "$1\r\n1\r\n+OK\r\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn config_set_reloads_the_certificate_and_keeps_it_on_a_bad_file() {
    let pki = Pki::new();
    // the server reads its certificate from files the test replaces
    std::fs::copy(pki.path("server.crt"), pki.path("live.crt")).unwrap();
    std::fs::copy(pki.path("server.key"), pki.path("live.key")).unwrap();
    let tls = free_port();
    let (tls_s, cert, key, ca) = (
        tls.to_string(),
        pki.p("live.crt"),
        pki.p("live.key"),
        pki.p("ca.crt"),
    );
    let s = magpie(&[
        "--tls-port",
        &tls_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
    ]);
    let one = pem_cert(&pki.path("server.crt"));
    let two = pem_cert(&pki.path("server2.crt"));
    assert_eq!(served_cert(&pki, tls), one);
    // a connection open across the reload keeps working
    let mut open = tls_connect(&pki, tls, ClientCert::Named("client"), BOTH);
    exchange(&mut open, b"PING\r\n", b"+PONG\r\n").unwrap();

    let mut c = s.client();
    // both files point at the second certificate: one CONFIG SET
    let (cert2, key2) = (pki.p("server2.crt"), pki.p("server2.key"));
    assert_eq!(
        c.cmd_str(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &cert2,
            "tls-key-file",
            &key2
        ]),
        "+OK\r\n"
    );
    assert_eq!(served_cert(&pki, tls), two);
    exchange(&mut open, b"PING\r\n", b"+PONG\r\n").unwrap();

    // a certificate without its key: refused whole, nothing changes
    let e = c.cmd_str(&["CONFIG", "SET", "tls-cert-file", &cert]);
    assert!(
        e.starts_with("-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration: tls-key-file"),
        "{e}"
    );
    assert!(e.contains("does not fit"), "{e}");
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "tls-cert-file"]),
        format!(
            "*2\r\n$13\r\ntls-cert-file\r\n${}\r\n{cert2}\r\n",
            cert2.len()
        )
    );
    // a missing file, and a file that holds no certificate
    let e = c.cmd_str(&["CONFIG", "SET", "tls-cert-file", "/nonexistent/x.crt"]);
    assert!(
        e.contains("cannot read tls-cert-file /nonexistent/x.crt"),
        "{e}"
    );
    let e = c.cmd_str(&["CONFIG", "SET", "tls-cert-file", &pki.p("server2.key")]);
    assert!(e.contains("holds no PEM certificate"), "{e}");
    assert_eq!(served_cert(&pki, tls), two);

    // same paths, new contents: CONFIG SET rereads them
    assert_eq!(
        c.cmd_str(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &cert,
            "tls-key-file",
            &key
        ]),
        "+OK\r\n"
    );
    assert_eq!(served_cert(&pki, tls), one);
    std::fs::copy(pki.path("server2.crt"), pki.path("live.crt")).unwrap();
    std::fs::copy(pki.path("server2.key"), pki.path("live.key")).unwrap();
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "tls-cert-file", &cert]),
        "+OK\r\n"
    );
    assert_eq!(served_cert(&pki, tls), two);

    // tls-auth-clients changes for new connections
    ping(&pki, tls, ClientCert::None).unwrap_err();
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "tls-auth-clients", "optional"]),
        "+OK\r\n"
    );
    ping(&pki, tls, ClientCert::None).unwrap();
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "tls-auth-clients", "maybe"]),
        "-ERR CONFIG SET failed (possibly related to argument 'tls-auth-clients') - argument(s) must be one of the following: no, yes, optional\r\n"
    );
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "tls-port", "1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'tls-port') - can't set immutable config\r\n"
    );
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_it_on_a_bad_file() {
    let pki = Pki::new();
    std::fs::copy(pki.path("server.crt"), pki.path("live.crt")).unwrap();
    std::fs::copy(pki.path("server.key"), pki.path("live.key")).unwrap();
    let tls = free_port();
    let (tls_s, cert, key, ca) = (
        tls.to_string(),
        pki.p("live.crt"),
        pki.p("live.key"),
        pki.p("ca.crt"),
    );
    let s = magpie(&[
        "--tls-port",
        &tls_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
    ]);
    let one = pem_cert(&pki.path("server.crt"));
    let two = pem_cert(&pki.path("server2.crt"));
    assert_eq!(served_cert(&pki, tls), one);
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &s.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let log = || std::fs::read_to_string(common::log_path(s.port)).unwrap();
    let wait_for_log = |n: usize, what: &str| {
        for _ in 0..500 {
            if log().matches(what).count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no {n}x {what:?} in the log:\n{}", log());
    };
    std::fs::copy(pki.path("server2.crt"), pki.path("live.crt")).unwrap();
    std::fs::copy(pki.path("server2.key"), pki.path("live.key")).unwrap();
    hup();
    wait_for_log(1, "TLS certificates reloaded");
    assert_eq!(served_cert(&pki, tls), two);
    // a torn rotation (new certificate, garbage key): the old pair stays
    std::fs::copy(pki.path("server.crt"), pki.path("live.crt")).unwrap();
    std::fs::write(pki.path("live.key"), "not a key\n").unwrap();
    hup();
    wait_for_log(1, "TLS certificates NOT reloaded");
    assert!(log().contains("cannot read tls-key-file"), "{}", log());
    assert_eq!(served_cert(&pki, tls), two);
    // the server is still up and serving both ports
    assert_eq!(s.client().cmd_str(&["PING"]), "+PONG\r\n");
}

#[test]
fn bad_tls_files_stop_the_start_with_a_clear_message() {
    let pki = Pki::new();
    let tls = free_port().to_string();
    let run = |args: &[&str]| {
        let out = common::failed_serve(&[&["--tls-port", tls.as_str()], args].concat());
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let (cert, key, ca) = (pki.p("server.crt"), pki.p("server.key"), pki.p("ca.crt"));
    let err = run(&["--tls-key-file", &key]);
    assert!(
        err.contains("need --tls-cert-file and --tls-key-file"),
        "{err}"
    );
    let err = run(&[
        "--tls-cert-file",
        "/nonexistent/server.crt",
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
    ]);
    assert!(
        err.contains("TLS: cannot read tls-cert-file /nonexistent/server.crt"),
        "{err}"
    );
    // a key that is not the certificate's
    let other_key = pki.p("server2.key");
    let err = run(&[
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &other_key,
        "--tls-ca-cert-file",
        &ca,
    ]);
    assert!(err.contains("does not fit tls-cert-file"), "{err}");
    // a key file that holds a certificate
    let err = run(&[
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &cert,
        "--tls-ca-cert-file",
        &ca,
    ]);
    assert!(err.contains("cannot read tls-key-file"), "{err}");
    // client authentication without a CA
    let err = run(&["--tls-cert-file", &cert, "--tls-key-file", &key]);
    assert!(
        err.contains("Either tls-ca-cert-file or tls-ca-cert-dir must be specified"),
        "{err}"
    );
    let err = run(&[
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-protocols",
        "TLSv1",
    ]);
    assert!(err.contains("TLSv1 is not offered"), "{err}");
}

/// Kills a server started by hand when the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn plaintext_ports_can_all_be_off() {
    let pki = Pki::new();
    let tls = free_port();
    let log = pki.path("serve.log");
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_magpie"))
            .args(["serve", "--ephemeral", "--port", "0"])
            .args(["--memcache-port", "0", "--http-port", "0"])
            .args(["--tls-port", &tls.to_string()])
            .args(["--tls-cert-file", &pki.p("server.crt")])
            .args(["--tls-key-file", &pki.p("server.key")])
            .args(["--tls-ca-cert-file", &pki.p("ca.crt")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    for _ in 0..2000 {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("magpie ready")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("RESP over TLS listening"), "{text}");
    for door in [
        "msg=\"RESP listening",
        "msg=\"memcached listening",
        "msg=\"HTTP listening",
    ] {
        assert!(!text.contains(door), "{text}");
    }
    let mut conn = tls_connect(&pki, tls, ClientCert::Named("client"), BOTH);
    let got = exchange(
        &mut conn,
        b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nport\r\n",
        b"\r\n0\r\n",
    )
    .unwrap();
    assert_eq!(got, b"*2\r\n$4\r\nport\r\n$1\r\n0\r\n");
}

/// CONFIG GET tls-* and CONFIG SET's refusals as redis-server 7.0 gives
/// them, then one TLS-enabled redis-server and magpie on the same
/// certificates, checked with the same redis-cli commands.
#[test]
fn differential_tls_config_and_redis_cli() {
    let Some(redis) = common::redis() else {
        return;
    };
    let m = magpie(&[]);
    let (mut r, mut mc) = (redis.client(), m.client());
    for name in [
        "tls-port",
        "tls-cert-file",
        "tls-key-file",
        "tls-ca-cert-file",
        "tls-ca-cert-dir",
        "tls-auth-clients",
        "tls-protocols",
        "tls-ciphersuites",
    ] {
        assert_eq!(
            mc.cmd_str(&["CONFIG", "GET", name]),
            r.cmd_str(&["CONFIG", "GET", name]),
            "{name}"
        );
    }
    for (name, value) in [
        ("tls-auth-clients", "maybe"),
        ("tls-auth-clients", "optional"),
        ("tls-auth-clients", "yes"),
    ] {
        assert_eq!(
            mc.cmd_str(&["CONFIG", "SET", name, value]),
            r.cmd_str(&["CONFIG", "SET", name, value]),
            "{name} {value}"
        );
    }
    drop(redis);

    if !redis_cli_has_tls() {
        return;
    }
    let pki = Pki::new();
    let rport = free_port();
    let mut child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &rport.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--tls-cert-file", &pki.p("server.crt")])
        .args(["--tls-key-file", &pki.p("server.key")])
        .args(["--tls-ca-cert-file", &pki.p("ca.crt")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = start(&pki, &[]);
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", rport)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cases: &[(Option<&str>, &[&str])] = &[
        (Some("client"), &["SET", "k", "v"]),
        (Some("client"), &["GET", "k"]),
        (Some("client"), &["CONFIG", "GET", "tls-auth-clients"]),
        (None, &["PING"]),
        (Some("other"), &["PING"]),
        (Some("expired"), &["PING"]),
    ];
    for (cert, args) in cases {
        let (r_ok, r_out) = redis_cli_tls(&pki, rport, *cert, args);
        let (m_ok, m_out) = redis_cli_tls(&pki, s.tls, *cert, args);
        assert_eq!(
            m_ok, r_ok,
            "{cert:?} {args:?}: redis {r_out:?}, magpie {m_out:?}"
        );
        if r_ok {
            assert_eq!(m_out, r_out, "{cert:?} {args:?}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The `redis` crate's rustls client (`rediss://`, mutual TLS) against the
/// TLS port: commands work, and without a client certificate the
/// connection is refused.
#[test]
fn redis_crate_over_tls() {
    let pki = Pki::new();
    let s = start(&pki, &[]);
    let read = |name: &str| std::fs::read(pki.path(name)).unwrap();
    let url = format!("rediss://localhost:{}/", s.tls);
    let client = |with_cert: bool| {
        redis::Client::build_with_tls(
            url.as_str(),
            redis::TlsCertificates {
                client_tls: with_cert.then(|| redis::ClientTlsConfig {
                    client_cert: read("client.crt"),
                    client_key: read("client.key"),
                }),
                root_cert: Some(read("ca.crt")),
            },
        )
        .unwrap()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut con = client(true)
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("SET")
            .arg("crate")
            .arg("tls")
            .query_async(&mut con)
            .await
            .unwrap();
        let v: String = redis::cmd("GET")
            .arg("crate")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(v, "tls");
        let refused = async {
            let mut con = client(false).get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut con).await
        };
        assert!(refused.await.is_err());
    });
}
