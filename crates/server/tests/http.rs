//! The HTTP/JSON front door, driven with a real HTTP client (ureq) against
//! the real binary: every endpoint and error status, binary keys and values,
//! conditional requests, visibility across RESP and HTTP, the canonical log
//! line, the OpenAPI document and the curl examples of docs/http.md.
//!
//! Every response is checked against docs/openapi.json: its status must be
//! documented for the operation, and a JSON body must fit the schema.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use serde_json::Value;
use ureq::http::{Method, Request, Response};

const OPENAPI: &str = include_str!("../../../docs/openapi.json");
const HTTP_MD: &str = include_str!("../../../docs/http.md");
const README: &str = include_str!("../../../README.md");

/// A magpie with an HTTP listener.
struct Http {
    server: Server,
    port: u16,
    agent: ureq::Agent,
    doc: Value,
}

/// What came back from one request.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    /// Asserts this is a JSON error with `status` and `code`, carrying the
    /// response's request id.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        let j = self.json();
        assert_eq!(j["error"], code, "{j}");
        assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            j["request_id"].as_str(),
            self.header("x-request-id"),
            "error body and header carry the same request id"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

fn wait_http(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "HTTP port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Http {
    fn start(extra: &[&str]) -> Http {
        let port = free_port();
        let p = port.to_string();
        let mut flags = vec!["--http-port", &p];
        flags.extend_from_slice(extra);
        let server = magpie(&flags);
        wait_http(port);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Http {
            server,
            port,
            agent,
            doc: serde_json::from_str(OPENAPI).unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends a request and checks the reply against the OpenAPI document.
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(self.url(path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let res: Response<ureq::Body> = if body.is_empty() && method != "PUT" && method != "POST" {
            self.agent.run(b.body(()).unwrap())
        } else {
            self.agent.run(b.body(body.to_vec()).unwrap())
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let mut body = res.into_body();
        let body = body
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap_or_default();
        let reply = Reply {
            status,
            headers,
            body,
        };
        self.conform(method, path, &reply);
        reply
    }

    fn get(&self, path: &str) -> Reply {
        self.req("GET", path, &[], b"")
    }
    fn put(&self, path: &str, body: &[u8]) -> Reply {
        self.req("PUT", path, &[], body)
    }

    /// The status is documented for the operation; a JSON body matches its
    /// schema; the request id header is present.
    fn conform(&self, method: &str, path: &str, r: &Reply) {
        let rid = r
            .header("x-request-id")
            .expect("X-Request-Id on every response");
        assert!(!rid.is_empty());
        let found = operation(&self.doc, method, path).or_else(|| {
            // axum answers HEAD wherever there is a GET
            (method == "HEAD")
                .then(|| operation(&self.doc, "GET", path))
                .flatten()
        });
        let Some((template, op)) = found else {
            assert!(
                r.status == 404 || r.status == 405,
                "{method} {path} is undocumented but answered {}",
                r.status
            );
            if r.status == 405 {
                assert!(r.headers.contains_key("allow"));
            }
            if method != "HEAD" {
                r.assert_error(
                    r.status,
                    if r.status == 404 {
                        "not_found"
                    } else {
                        "method_not_allowed"
                    },
                );
            }
            return;
        };
        let resp = &op["responses"][r.status.to_string()];
        assert!(
            resp.is_object(),
            "{method} {template}: status {} is not documented ({:?})",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let ct = r.header("content-type").unwrap_or("");
        if ct == "application/json" && method != "HEAD" {
            let schema = &resp["content"]["application/json"]["schema"];
            assert!(
                schema.is_object(),
                "{method} {template} {}: JSON not documented",
                r.status
            );
            if let Err(e) = validate(&self.doc, schema, &r.json()) {
                panic!("{method} {template} {}: {e}: {}", r.status, r.json());
            }
        }
    }

    fn resp(&self) -> RawClient {
        self.server.client()
    }
}

/// The documented (template, operation) that `path` (without query) hits.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<(String, &'a Value)> {
    let path = path.split('?').next().unwrap();
    let segs: Vec<&str> = path.split('/').collect();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let t: Vec<&str> = template.split('/').collect();
        let fits = t.len() == segs.len()
            && t.iter()
                .zip(&segs)
                .all(|(a, b)| a == b || (a.starts_with('{') && !b.is_empty()));
        if fits {
            return item
                .get(method.to_ascii_lowercase())
                .map(|op| (template.clone(), op));
        }
    }
    None
}

/// A small JSON-schema check for the OpenAPI 3.0 subset the document uses.
fn validate(doc: &Value, schema: &Value, v: &Value) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        return validate(doc, doc.pointer(&r[1..]).unwrap(), v);
    }
    if v.is_null() {
        return if schema["nullable"] == true {
            Ok(())
        } else {
            Err("null where not nullable".into())
        };
    }
    if let Some(choices) = schema["enum"].as_array() {
        if !choices.contains(v) {
            return Err(format!("{v} not in {choices:?}"));
        }
    }
    match schema["type"].as_str() {
        Some("object") => {
            let o = v.as_object().ok_or(format!("{v} is not an object"))?;
            for req in schema["required"].as_array().into_iter().flatten() {
                if !o.contains_key(req.as_str().unwrap()) {
                    return Err(format!("missing {req}"));
                }
            }
            for (k, x) in o {
                match schema["properties"].get(k) {
                    Some(s) => validate(doc, s, x).map_err(|e| format!("{k}: {e}"))?,
                    None => match &schema["additionalProperties"] {
                        Value::Bool(false) => return Err(format!("unexpected property {k}")),
                        s @ Value::Object(_) => {
                            validate(doc, s, x).map_err(|e| format!("{k}: {e}"))?
                        }
                        _ => {}
                    },
                }
            }
        }
        Some("array") => {
            for x in v.as_array().ok_or(format!("{v} is not an array"))? {
                validate(doc, &schema["items"], x)?;
            }
        }
        Some("string") => {
            v.as_str().ok_or(format!("{v} is not a string"))?;
        }
        Some("integer") => {
            let ok = v.is_i64() || v.is_u64();
            if !ok {
                return Err(format!("{v} is not an integer"));
            }
            if let (Some(min), Some(n)) = (schema["minimum"].as_i64(), v.as_i64()) {
                if n < min {
                    return Err(format!("{n} < minimum {min}"));
                }
            }
        }
        Some("boolean") => {
            v.as_bool().ok_or(format!("{v} is not a boolean"))?;
        }
        _ => {}
    }
    Ok(())
}

fn bulk(b: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", b.len()).into_bytes();
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn binary_values_and_any_byte_keys_round_trip() {
    let h = Http::start(&[]);
    let value: Vec<u8> = vec![0, 0xff, 0xfe, b'\r', b'\n', 0x80, b'x'];
    for (path, key) in [
        ("/v1/keys/nul%00key", &b"nul\0key"[..]),
        ("/v1/keys/a%2Fb%2fc", b"a/b/c"),
        ("/v1/keys/with%20space", b"with space"),
        ("/v1/keys/%FF%FEraw", b"\xff\xferaw"),
        ("/v1/keys/plus+sign", b"plus+sign"),
    ] {
        let r = h.put(path, &value);
        assert_eq!(r.status, 201, "{path}");
        let loc = r.header("location").unwrap().to_owned();
        let etag = r.header("etag").unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'));

        // Location names the same key
        let g = h.get(&loc);
        assert_eq!(g.status, 200, "{loc}");
        assert_eq!(g.body, value);
        assert_eq!(g.header("etag"), Some(etag.as_str()));
        assert_eq!(g.header("content-type"), Some("application/octet-stream"));
        assert_eq!(g.header("content-length"), Some("7"));
        assert_eq!(g.header("x-ttl-ms"), None);

        let j = h
            .req("GET", path, &[("Accept", "application/json")], b"")
            .json();
        assert_eq!(j["encoding"], "base64");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(j["value"].as_str().unwrap())
                .unwrap(),
            value
        );
        let k = j["key"].as_str().unwrap();
        let k = if j["key_encoding"] == "base64" {
            base64::engine::general_purpose::STANDARD.decode(k).unwrap()
        } else {
            k.as_bytes().to_vec()
        };
        assert_eq!(k, key);
        assert_eq!(j["flags"], 0);
        assert_eq!(j["ttl_ms"], Value::Null);
        assert_eq!(format!("\"{}\"", j["cas"]), etag);

        // HEAD: GET's headers, no body
        let hd = h.req("HEAD", path, &[], b"");
        assert_eq!(hd.status, 200);
        assert!(hd.body.is_empty());
        assert_eq!(hd.header("content-length"), Some("7"));
        assert_eq!(hd.header("etag"), Some(etag.as_str()));

        // and RESP sees exactly these bytes under exactly this key
        let mut c = h.resp();
        c.send_cmd(&[b"GET", key]);
        assert_eq!(c.read_reply(), bulk(&value));
    }
    // a UTF-8 value is returned as text
    h.put("/v1/keys/text", "héllo".as_bytes());
    let j = h
        .req(
            "GET",
            "/v1/keys/text",
            &[("Accept", "text/html, application/json")],
            b"",
        )
        .json();
    assert_eq!(
        (j["value"].as_str(), j["encoding"].as_str()),
        (Some("héllo"), Some("utf8"))
    );
    // an empty body is an empty value
    assert_eq!(h.put("/v1/keys/empty", b"").status, 201);
    assert_eq!(h.get("/v1/keys/empty").body, b"");
    assert_eq!(h.resp().cmd(&["GET", "empty"]), b"$0\r\n\r\n");

    h.get("/v1/keys/%zz").assert_error(400, "bad_key");
    h.get("/v1/keys/abc%4").assert_error(400, "bad_key");
    h.get("/v1/keys/missing").assert_error(404, "not_found");
    h.get("/v1/keys/a/b").assert_error(404, "not_found");
    h.get("/v1/keys/").assert_error(404, "not_found");
    h.get("/nowhere").assert_error(404, "not_found");
}

#[test]
fn cross_protocol_visibility() {
    let h = Http::start(&[]);
    let mut c = h.resp();
    assert_eq!(h.put("/v1/keys/from-http", b"v1").status, 201);
    assert_eq!(c.cmd(&["GET", "from-http"]), b"$2\r\nv1\r\n");
    assert_eq!(c.cmd(&["SET", "from-resp", "hello"]), b"+OK\r\n");
    let g = h.get("/v1/keys/from-resp");
    assert_eq!((g.status, g.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(g.header("x-ttl-ms"), None);

    // a RESP write changes the ETag, so an HTTP CAS based on the old one fails
    let before = g.header("etag").unwrap().to_owned();
    c.cmd(&["SET", "from-resp", "hello!"]);
    let g = h.get("/v1/keys/from-resp");
    assert_eq!(g.body, b"hello!");
    assert_ne!(g.header("etag").unwrap(), before);
    h.req(
        "PUT",
        "/v1/keys/from-resp",
        &[("If-Match", &before)],
        b"lost",
    )
    .assert_error(412, "precondition_failed");
    assert_eq!(c.cmd(&["GET", "from-resp"]), b"$6\r\nhello!\r\n");

    // other databases are not visible over HTTP
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["SET", "only-db1", "x"]);
    h.get("/v1/keys/only-db1").assert_error(404, "not_found");
    // and HTTP DELETE is seen over RESP
    c.cmd(&["SELECT", "0"]);
    assert_eq!(h.req("DELETE", "/v1/keys/from-http", &[], b"").status, 204);
    assert_eq!(c.cmd(&["GET", "from-http"]), b"$-1\r\n");
}

#[test]
fn put_ttl_nx_xx_and_query_errors() {
    let h = Http::start(&[]);
    let mut c = h.resp();
    assert_eq!(h.put("/v1/keys/t?ttl=100", b"v").status, 201);
    let ttl: u64 = h
        .get("/v1/keys/t")
        .header("x-ttl-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    let j = h
        .req("GET", "/v1/keys/t", &[("Accept", "application/json")], b"")
        .json();
    let ttl_ms = j["ttl_ms"].as_u64().unwrap();
    assert!(ttl_ms > 90_000 && ttl_ms <= 100_000, "{ttl_ms}");
    // a PUT without ttl clears it, as SET does; 204 because it existed
    assert_eq!(h.put("/v1/keys/t", b"w").status, 204);
    assert_eq!(h.get("/v1/keys/t").header("x-ttl-ms"), None);
    assert_eq!(c.cmd(&["GET", "t"]), b"$1\r\nw\r\n");
    // px
    assert_eq!(h.put("/v1/keys/p?px=60", b"v").status, 201);
    std::thread::sleep(Duration::from_millis(150));
    h.get("/v1/keys/p").assert_error(404, "not_found");

    for bad in [
        "ttl=0",
        "ttl=-5",
        "ttl=abc",
        "ttl=",
        "ttl=1.5",
        "px=0",
        "ttl=1&px=1",
        "ttl=9223372036854775807",
        "px=9223372036854775807",
    ] {
        h.put(&format!("/v1/keys/t?{bad}"), b"v")
            .assert_error(400, "bad_ttl");
    }
    for bad in ["nx&xx", "nx=maybe", "bogus=1", "nx&nx", "%zz=1"] {
        h.put(&format!("/v1/keys/t?{bad}"), b"v")
            .assert_error(400, "bad_query");
    }
    h.get("/v1/keys/t?x=1").assert_error(400, "bad_query");

    h.put("/v1/keys/t?nx", b"v")
        .assert_error(412, "precondition_failed");
    h.put("/v1/keys/t?nx=true", b"v")
        .assert_error(412, "precondition_failed");
    assert_eq!(h.put("/v1/keys/t?nx=false", b"v2").status, 204);
    h.put("/v1/keys/new?xx", b"v")
        .assert_error(412, "precondition_failed");
    h.get("/v1/keys/new").assert_error(404, "not_found");
    assert_eq!(h.put("/v1/keys/new?nx=1&ttl=50", b"v").status, 201);
    assert_eq!(h.put("/v1/keys/new?xx", b"v").status, 204);
    assert_eq!(c.cmd(&["GET", "t"]), b"$2\r\nv2\r\n");
}

#[test]
fn etags_and_conditional_requests() {
    let h = Http::start(&[]);
    let r = h.put("/v1/keys/k", b"one");
    assert_eq!(r.status, 201);
    let e1 = r.header("etag").unwrap().to_owned();
    let r = h.put("/v1/keys/k", b"two");
    assert_eq!(r.status, 204);
    let e2 = r.header("etag").unwrap().to_owned();
    assert_ne!(e1, e2);

    // CAS write: stale tag fails, current tag wins, weak tags never match
    h.req("PUT", "/v1/keys/k", &[("If-Match", &e1)], b"x")
        .assert_error(412, "precondition_failed");
    h.req(
        "PUT",
        "/v1/keys/k",
        &[("If-Match", &format!("W/{e2}"))],
        b"x",
    )
    .assert_error(412, "precondition_failed");
    let r = h.req(
        "PUT",
        "/v1/keys/k",
        &[("If-Match", &format!("\"0\", {e2}"))],
        b"three",
    );
    assert_eq!(r.status, 204);
    let e3 = r.header("etag").unwrap().to_owned();
    // the losing writer of a race: same tag again fails
    h.req("PUT", "/v1/keys/k", &[("If-Match", &e2)], b"x")
        .assert_error(412, "precondition_failed");
    assert_eq!(h.get("/v1/keys/k").body, b"three");
    assert_eq!(
        h.req("PUT", "/v1/keys/k", &[("If-Match", "*")], b"four")
            .status,
        204
    );
    h.req("PUT", "/v1/keys/absent", &[("If-Match", "*")], b"x")
        .assert_error(412, "precondition_failed");
    h.req("PUT", "/v1/keys/absent", &[("If-Match", "\"1\"")], b"x")
        .assert_error(412, "precondition_failed");
    h.req("PUT", "/v1/keys/k", &[("If-Match", "1")], b"x")
        .assert_error(400, "bad_precondition");

    // create-only
    h.req("PUT", "/v1/keys/k", &[("If-None-Match", "*")], b"x")
        .assert_error(412, "precondition_failed");
    assert_eq!(
        h.req("PUT", "/v1/keys/fresh", &[("If-None-Match", "*")], b"x")
            .status,
        201
    );

    // conditional GET
    let cur = h.get("/v1/keys/k");
    let etag = cur.header("etag").unwrap().to_owned();
    assert_ne!(etag, e3);
    let nm = h.req("GET", "/v1/keys/k", &[("If-None-Match", &etag)], b"");
    assert_eq!(nm.status, 304);
    assert!(nm.body.is_empty());
    assert_eq!(nm.header("etag"), Some(etag.as_str()));
    let weak = h.req(
        "GET",
        "/v1/keys/k",
        &[("If-None-Match", &format!("W/{etag}"))],
        b"",
    );
    assert_eq!(weak.status, 304, "If-None-Match uses weak comparison");
    assert_eq!(
        h.req("GET", "/v1/keys/k", &[("If-None-Match", &e1)], b"")
            .status,
        200
    );
    assert_eq!(
        h.req("HEAD", "/v1/keys/k", &[("If-None-Match", &etag)], b"")
            .status,
        304
    );

    // conditional DELETE
    h.req("DELETE", "/v1/keys/k", &[("If-Match", &e1)], b"")
        .assert_error(412, "precondition_failed");
    assert_eq!(h.get("/v1/keys/k").status, 200);
    assert_eq!(
        h.req("DELETE", "/v1/keys/k", &[("If-Match", &etag)], b"")
            .status,
        204
    );
    h.req("DELETE", "/v1/keys/k", &[], b"")
        .assert_error(404, "not_found");
    h.req("DELETE", "/v1/keys/k", &[("If-Match", "*")], b"")
        .assert_error(412, "precondition_failed");
}

#[test]
fn cas_writes_are_atomic_under_contention() {
    // 4 threads x 25 read-modify-write rounds, each retried on 412: the final
    // count proves no update was lost between the check and the write
    let h = Http::start(&[]);
    assert_eq!(h.put("/v1/keys/counter", b"0").status, 201);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut done = 0;
                let mut tries = 0;
                while done < 25 {
                    tries += 1;
                    assert!(tries < 10_000, "CAS loop did not converge");
                    let g = h.get("/v1/keys/counter");
                    let n: u64 = std::str::from_utf8(&g.body).unwrap().parse().unwrap();
                    let tag = g.header("etag").unwrap().to_owned();
                    let r = h.req(
                        "PUT",
                        "/v1/keys/counter",
                        &[("If-Match", &tag)],
                        (n + 1).to_string().as_bytes(),
                    );
                    match r.status {
                        204 => done += 1,
                        412 => {}
                        s => panic!("unexpected {s}"),
                    }
                }
            });
        }
    });
    assert_eq!(h.get("/v1/keys/counter").body, b"100");
}

#[test]
fn incr() {
    let h = Http::start(&[]);
    let incr = |key: &str, body: &str| {
        h.req(
            "POST",
            &format!("/v1/keys/{key}/incr"),
            &[],
            body.as_bytes(),
        )
    };
    let r = incr("n", r#"{"by": 5}"#);
    assert_eq!((r.status, r.json()["value"].as_i64()), (200, Some(5)));
    assert!(r.header("etag").is_some());
    assert_eq!(incr("n", r#"{"by": -7}"#).json()["value"], -2);
    assert_eq!(incr("n", "").json()["value"], -1);
    assert_eq!(incr("n", "{}").json()["value"], 0);
    let mut c = h.resp();
    assert_eq!(c.cmd(&["GET", "n"]), b"$1\r\n0\r\n");
    // keys with odd bytes work here too
    assert_eq!(incr("a%2Fb%00", "").json()["value"], 1);
    c.send_cmd(&[b"GET", b"a/b\0"]);
    assert_eq!(c.read_reply(), b"$1\r\n1\r\n");

    // TTL is kept, as INCRBY keeps it
    h.put("/v1/keys/ttl?ttl=100", b"10");
    assert_eq!(incr("ttl", r#"{"by":1}"#).json()["value"], 11);
    let ttl: u64 = h
        .get("/v1/keys/ttl")
        .header("x-ttl-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    assert_eq!(c.cmd(&["GET", "ttl"]), b"$2\r\n11\r\n");

    c.cmd(&["SET", "text", "abc"]);
    incr("text", "").assert_error(409, "not_integer");
    c.cmd(&["SET", "spaced", " 1"]);
    incr("spaced", "").assert_error(409, "not_integer");
    c.cmd(&["SET", "max", "9223372036854775807"]);
    incr("max", "").assert_error(409, "overflow");
    assert_eq!(c.cmd(&["GET", "max"]), b"$19\r\n9223372036854775807\r\n");
    c.cmd(&["SET", "min", "-9223372036854775808"]);
    incr("min", r#"{"by":-1}"#).assert_error(409, "overflow");
    assert_eq!(
        incr("min", r#"{"by":9223372036854775807}"#).json()["value"],
        -1
    );

    for bad in [
        "{",
        "[]",
        "5",
        r#"{"by": 1.5}"#,
        r#"{"by": "1"}"#,
        r#"{"by": 1, "x": 2}"#,
        r#"{"by": 9223372036854775808}"#,
        "null",
    ] {
        incr("n", bad).assert_error(400, "bad_json");
    }
    assert_eq!(
        c.cmd(&["GET", "n"]),
        b"$1\r\n0\r\n",
        "bad requests change nothing"
    );
    let big = format!(r#"{{"by": 1{}}}"#, " ".repeat(5000));
    incr("n", &big).assert_error(413, "too_large");
    h.get("/v1/keys/n/incr")
        .assert_error(405, "method_not_allowed");
}

#[test]
fn list_scans_with_match_and_cursor() {
    let h = Http::start(&[]);
    let mut c = h.resp();
    for i in 0..40 {
        c.cmd(&["SET", &format!("user:{i}"), "x"]);
    }
    for i in 0..7 {
        c.cmd(&["SET", &format!("order:{i}"), "x"]);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_owned();
    for step in 0.. {
        assert!(step < 1000, "scan did not finish");
        let r = h.get(&format!("/v1/keys?match=user:*&count=5&cursor={cursor}"));
        assert_eq!(r.status, 200);
        let j = r.json();
        assert_eq!(j["encoding"], "utf8");
        for k in j["keys"].as_array().unwrap() {
            let k = k.as_str().unwrap();
            assert!(k.starts_with("user:"), "{k}");
            seen.insert(k.to_owned());
        }
        cursor = j["cursor"].as_str().unwrap().to_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 40);

    // one big step gets everything; glob classes work
    let j = h.get("/v1/keys?count=1000").json();
    assert_eq!(j["keys"].as_array().unwrap().len(), 47);
    assert_eq!(j["cursor"], "0");
    let j = h.get("/v1/keys?match=order%3A%5B0-2%5D&count=1000").json();
    let mut keys: Vec<&str> = j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["order:0", "order:1", "order:2"]);

    // a non-UTF-8 key switches the step to base64
    c.send_cmd(&[b"SET", b"bin\xff", b"x"]);
    c.read_reply();
    let j = h.get("/v1/keys?match=bin*&count=1000").json();
    assert_eq!(j["encoding"], "base64");
    assert_eq!(
        j["keys"][0],
        base64::engine::general_purpose::STANDARD.encode(b"bin\xff")
    );
    let j = h
        .get("/v1/keys?match=order:0&count=1000&encoding=base64")
        .json();
    assert_eq!(
        j["keys"][0],
        base64::engine::general_purpose::STANDARD.encode(b"order:0")
    );

    h.get("/v1/keys?cursor=abc").assert_error(400, "bad_cursor");
    h.get("/v1/keys?cursor=-1").assert_error(400, "bad_cursor");
    h.get("/v1/keys?count=0").assert_error(400, "bad_count");
    h.get("/v1/keys?count=x").assert_error(400, "bad_count");
    h.get("/v1/keys?encoding=hex")
        .assert_error(400, "bad_query");
    h.get("/v1/keys?limit=1").assert_error(400, "bad_query");
    h.req("DELETE", "/v1/keys", &[], b"")
        .assert_error(405, "method_not_allowed");
}

#[test]
fn size_limits_give_413_and_414() {
    let h = Http::start(&["--proto-max-bulk-len", "16", "--http-max-key-len", "8"]);
    assert_eq!(h.put("/v1/keys/k", &[b'x'; 16]).status, 201);
    h.put("/v1/keys/k", &[b'x'; 17])
        .assert_error(413, "too_large");
    assert_eq!(
        h.get("/v1/keys/k").body.len(),
        16,
        "a refused PUT changes nothing"
    );

    // a chunked body (no Content-Length) is cut off while reading
    let mut s = TcpStream::connect(("127.0.0.1", h.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"PUT /v1/keys/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"error\":\"too_large\""), "{reply}");
    h.get("/v1/keys/chunked").assert_error(404, "not_found");

    assert_eq!(h.put("/v1/keys/12345678", b"v").status, 201);
    h.put("/v1/keys/123456789", b"v")
        .assert_error(414, "key_too_long");
    h.get("/v1/keys/123456789")
        .assert_error(414, "key_too_long");
    h.req("DELETE", "/v1/keys/123456789", &[], b"")
        .assert_error(414, "key_too_long");
    h.req("POST", "/v1/keys/123456789/incr", &[], b"")
        .assert_error(414, "key_too_long");
    // the limit is on decoded bytes: 8 encoded bytes are fine, 9 are not
    assert_eq!(h.put("/v1/keys/%00%01%02%03%04%05%06%07", b"v").status, 201);
    h.put("/v1/keys/%00%01%02%03%04%05%06%07%08", b"v")
        .assert_error(414, "key_too_long");
    h.put(&format!("/v1/keys/{}", "%41".repeat(1000)), b"v")
        .assert_error(414, "key_too_long");
}

#[test]
fn methods_not_allowed_list_allow() {
    let h = Http::start(&[]);
    for (method, path, allow) in [
        ("PATCH", "/v1/keys/k", "GET,HEAD,PUT,DELETE"),
        ("POST", "/v1/keys/k", "GET,HEAD,PUT,DELETE"),
        ("PUT", "/v1/keys", "GET,HEAD"),
        ("DELETE", "/healthz", "GET,HEAD"),
        ("PUT", "/v1/keys/k/incr", "POST"),
        ("POST", "/metrics", "GET,HEAD"),
    ] {
        let r = h.req(method, path, &[], b"");
        r.assert_error(405, "method_not_allowed");
        let mut got: Vec<&str> = r.header("allow").unwrap().split(',').collect();
        let mut want: Vec<&str> = allow.split(',').collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
    }
}

#[test]
fn stats_metrics_and_probes() {
    let h = Http::start(&[]);
    let mut c = h.resp();
    for i in 0..3 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    h.put("/v1/keys/e?ttl=100", b"v");
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "other", "v"]);
    let s0 = h.get("/v1/stats").json();
    h.get("/v1/keys/k0");
    h.get("/v1/keys/k1");
    h.get("/v1/keys/nope");
    let s = h.get("/v1/stats").json();
    assert_eq!(s["keyspace"]["db0"]["keys"], 4);
    assert_eq!(s["keyspace"]["db0"]["expires"], 1);
    assert_eq!(s["keyspace"]["db3"]["keys"], 1);
    assert!(s["keyspace"].get("db1").is_none());
    let delta =
        |name: &str| s["counters"][name].as_u64().unwrap() - s0["counters"][name].as_u64().unwrap();
    assert_eq!(delta("keyspace_hits"), 2);
    assert_eq!(delta("keyspace_misses"), 1);
    assert!(s["http_responses"]["2xx"].as_u64().unwrap() >= 3);
    assert!(s["http_responses"]["4xx"].as_u64().unwrap() >= 1);
    assert!(s["memory"]["entries_bytes"].as_u64().unwrap() > 0);

    let m = h.get("/metrics");
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(m.body.clone()).unwrap();
    let metrics = parse_prometheus(&text);
    let get = |name: &str, labels: &str| {
        *metrics
            .get(&(name.to_owned(), labels.to_owned()))
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
    };
    assert_eq!(get("magpie_keys", "db=\"0\""), 4.0);
    assert_eq!(get("magpie_keys", "db=\"3\""), 1.0);
    assert_eq!(get("magpie_keys_with_expiry", "db=\"0\""), 1.0);
    assert!(get("magpie_commands_processed_total", "") >= 0.0);
    assert_eq!(
        get("magpie_keyspace_hits_total", ""),
        s["counters"]["keyspace_hits"].as_f64().unwrap()
    );
    assert_eq!(
        get("magpie_keyspace_misses_total", ""),
        s["counters"]["keyspace_misses"].as_f64().unwrap()
    );
    assert!(
        get("magpie_connected_clients", "") >= 1.0,
        "our RESP client"
    );
    assert!(get("magpie_memory_bytes", "kind=\"entries\"") > 0.0);
    assert!(get("magpie_memory_bytes", "kind=\"allocated\"") > 0.0);
    assert!(get("magpie_http_responses_total", "class=\"2xx\"") >= 3.0);

    let r = h.get("/healthz");
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"status": "ok"}))
    );
    let r = h.get("/readyz");
    assert_eq!(
        (r.status, r.json()),
        (200, serde_json::json!({"status": "ready"}))
    );
}

#[test]
fn a_refusal_before_the_body_is_read_closes_the_connection_and_says_so() {
    let h = Http::start(&[]);
    let mut s = TcpStream::connect(("127.0.0.1", h.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // a stored body: the connection stays open for the next request
    s.write_all(b"PUT /v1/keys/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(reply.starts_with("http/1.1 201"), "{reply}");
    assert!(!reply.contains("connection: close"), "{reply}");
    // refused on its query before the body is read: the reply says close
    s.write_all(b"PUT /v1/keys/a?bogus=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nw")
        .unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).to_ascii_lowercase();
    assert!(reply.starts_with("http/1.1 400"), "{reply}");
    assert!(reply.contains("connection: close"), "{reply}");
    assert_eq!(h.get("/v1/keys/a").body, b"v");
    // a bodiless refusal keeps the connection
    let r = h.get("/v1/keys/a?x=1");
    r.assert_error(400, "bad_query");
    assert_eq!(r.header("connection"), None);
}

/// Parses the Prometheus text format strictly enough to catch mistakes:
/// every sample belongs to a family declared by HELP and TYPE lines, names
/// and label sets are well formed and values are numbers.
fn parse_prometheus(text: &str) -> std::collections::HashMap<(String, String), f64> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut typed = std::collections::HashMap::new();
    let mut helped = std::collections::HashSet::new();
    let mut out = std::collections::HashMap::new();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(name_ok(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_owned()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_owned(), kind.to_owned()).is_none());
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').unwrap();
                for pair in l.split(',') {
                    let (k, v) = pair.split_once('=').unwrap();
                    assert!(
                        name_ok(k) && v.starts_with('"') && v.ends_with('"'),
                        "{line}"
                    );
                }
                (n, l)
            }
            None => (series, ""),
        };
        assert!(name_ok(name), "{line}");
        // a histogram's samples are <family>_bucket (with le), _sum, _count
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (typed.get(base).map(String::as_str) == Some("histogram")).then_some(base)
            })
            .unwrap_or(name);
        let kind = typed
            .get(family)
            .unwrap_or_else(|| panic!("no TYPE for {line}"));
        assert!(helped.contains(family));
        if kind == "histogram" && name.ends_with("_bucket") {
            assert!(labels.contains("le=\""), "{line}");
        }
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{line}");
            assert!(value >= 0.0);
        }
        assert!(
            out.insert((name.to_owned(), labels.to_owned()), value)
                .is_none(),
            "duplicate series {line}"
        );
    }
    out
}

#[test]
fn request_ids_are_kept_when_sane_and_made_otherwise() {
    let h = Http::start(&[]);
    let r = h.req("GET", "/healthz", &[("X-Request-Id", "abc-123_XYZ")], b"");
    assert_eq!(r.header("x-request-id"), Some("abc-123_XYZ"));
    let r = h.req("GET", "/v1/keys/none", &[("X-Request-Id", "trace-77")], b"");
    r.assert_error(404, "not_found");
    assert_eq!(r.json()["request_id"], "trace-77");
    let long = "x".repeat(129);
    let ok128 = "y".repeat(128);
    assert_eq!(
        h.req("GET", "/healthz", &[("X-Request-Id", &ok128)], b"")
            .header("x-request-id"),
        Some(ok128.as_str())
    );
    let mut made = Vec::new();
    for bad in [long.as_str(), "has space", ""] {
        let r = h.req("GET", "/healthz", &[("X-Request-Id", bad)], b"");
        let id = r.header("x-request-id").unwrap().to_owned();
        assert_eq!(id.len(), 32, "{bad:?} -> {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        made.push(id);
    }
    made.push(h.get("/healthz").header("x-request-id").unwrap().to_owned());
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 4, "fresh ids are distinct");
}

/// Parses one logfmt line into (key, value) pairs, undoing quoting.
fn parse_logfmt(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            assert!(c > ' ' && c != '"', "bad key char in {line:?}");
            key.push(c);
            chars.next();
        }
        assert_eq!(chars.next(), Some('='), "key without value in {line:?}");
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars
                    .next()
                    .unwrap_or_else(|| panic!("unterminated quote in {line:?}"))
                {
                    '"' => break,
                    '\\' => match chars.next().unwrap() {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        'u' => {
                            let hex: String = chars.by_ref().take(4).collect();
                            value.push(
                                char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap(),
                            );
                        }
                        c => value.push(c),
                    },
                    c => value.push(c),
                }
            }
            assert!(
                matches!(chars.peek(), None | Some(' ')),
                "junk after quote in {line:?}"
            );
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                assert!(c != '"' && c != '=', "unquoted special char in {line:?}");
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

#[test]
fn one_canonical_logfmt_line_per_request() {
    let (rport, hport) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "serve",
            "--port",
            &rport.to_string(),
            "--http-port",
            &hport.to_string(),
            "--memcache-port",
            "0",
            "--ephemeral",
        ])
        .env_remove("MAGPIE_LOG")
        .env_remove("MAGPIE_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_http(hport);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!("http://127.0.0.1:{hport}");
    let sent = [
        ("PUT", "/v1/keys/log%20key", "id-put", &b"hello"[..], 201u16),
        ("GET", "/v1/keys/log%20key", "id-get", b"", 200),
        ("GET", "/v1/keys/missing", "id\"quoted\"", b"", 404),
        ("PATCH", "/v1/keys/x", "id=eq", b"", 405),
        ("HEAD", "/v1/keys/log%20key", "id-head", b"", 200),
    ];
    for (method, path, id, body, status) in sent {
        let req = Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("X-Request-Id", id);
        let r = if method == "PUT" {
            agent.run(req.body(body.to_vec()).unwrap())
        } else {
            agent.run(req.body(()).unwrap())
        }
        .unwrap();
        assert_eq!(r.status().as_u16(), status);
    }
    // one request whose id the server makes up
    let r = agent.get(format!("{base}/healthz")).call().unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap().to_owned();

    // the lines are written before the responses, so they are all there now
    let _ = child.kill();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = child.wait();

    let mut http_lines = Vec::new();
    for line in stderr.lines() {
        let kv = parse_logfmt(line);
        assert_eq!(kv[0].0, "time", "{line}");
        assert_eq!(kv[1].0, "level", "{line}");
        if kv.iter().any(|(k, v)| k == "target" && v == "magpie::http") {
            http_lines.push(kv);
        }
    }
    assert_eq!(
        http_lines.len(),
        sent.len() + 1,
        "one line per request:\n{stderr}"
    );
    for (method, path, id, body, status) in sent {
        let hits: Vec<_> = http_lines
            .iter()
            .filter(|kv| kv.iter().any(|(k, v)| k == "req_id" && v == id))
            .collect();
        assert_eq!(hits.len(), 1, "{id}:\n{stderr}");
        let field = |name: &str| {
            hits[0]
                .iter()
                .find(|(k, _)| k == name)
                .unwrap_or_else(|| panic!("no {name} in {:?}", hits[0]))
                .1
                .clone()
        };
        assert_eq!(field("level"), "info");
        assert_eq!(field("method"), method);
        assert_eq!(field("path"), path);
        assert_eq!(field("status"), status.to_string());
        assert_eq!(field("bytes_in"), body.len().to_string());
        let out: u64 = field("bytes_out").parse().unwrap();
        match method {
            "GET" if status == 200 => assert_eq!(out, 5),
            "HEAD" | "PUT" => assert_eq!(out, 0),
            _ => assert!(out > 0, "error bodies are counted"),
        }
        let _: u64 = field("duration_us").parse().unwrap();
        assert!(field("peer").starts_with("127.0.0.1:"));
        let error = hits[0]
            .iter()
            .find(|(k, _)| k == "error")
            .map(|(_, v)| v.as_str());
        match status {
            404 => assert_eq!(error, Some("not_found")),
            405 => assert_eq!(error, Some("method_not_allowed")),
            _ => assert_eq!(error, None),
        }
        let t = field("time");
        assert!(
            t.len() == 27 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }
    assert!(http_lines
        .iter()
        .any(|kv| kv.iter().any(|(k, v)| k == "req_id" && *v == made)));
}

#[test]
fn json_log_format() {
    let (rport, hport) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "serve",
            "--port",
            &rport.to_string(),
            "--http-port",
            &hport.to_string(),
            "--memcache-port",
            "0",
            "--ephemeral",
        ])
        .args(["--log-format", "json"])
        .env_remove("MAGPIE_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_http(hport);
    let mut s = TcpStream::connect(("127.0.0.1", hport)).unwrap();
    s.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: json-1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"));
    let _ = child.kill();
    let mut found = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["req_id"] == "json-1" {
            assert_eq!(
                (v["status"].as_u64(), v["path"].as_str()),
                (Some(200), Some("/healthz"))
            );
            found += 1;
        }
    }
    let _ = child.wait();
    assert_eq!(found, 1);
}

#[test]
fn http_port_zero_disables_the_listener_and_flags_are_validated() {
    let out = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "serve",
            "--port",
            "0",
            "--http-port",
            "0",
            "--http-max-key-len",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http-max-key-len"));
    let out = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args(["serve", "--port", "0", "--log-format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn openapi_document_matches_the_server() {
    let h = Http::start(&[]);
    let r = h.get("/openapi.json");
    assert_eq!(r.json(), h.doc, "served document is docs/openapi.json");
    h.put("/v1/keys/probe", b"1");
    // every documented path answers every method either as documented or 405
    let paths: Vec<String> = h.doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for template in paths {
        let path = template.replace("{key}", "probe");
        for method in ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"] {
            let has = |m: &str| h.doc["paths"][&template].get(m).is_some();
            let documented = has(&method.to_ascii_lowercase()) || (method == "HEAD" && has("get"));
            let r = h.req(method, &path, &[], b"");
            if documented {
                assert_ne!(
                    r.status, 405,
                    "{method} {template} is documented but not routed"
                );
            } else {
                assert_eq!(
                    r.status, 405,
                    "{method} {template} is routed but not documented"
                );
            }
            if method == "DELETE" || method == "PUT" {
                h.put("/v1/keys/probe", b"1");
            }
        }
    }
    // every status the document lists is produced by a test in this file
    // (503 by the unit tests of http/mod.rs, 507 by
    // over_the_memory_limit_writes_get_507_and_deletes_and_reads_go_on,
    // 401 and 403 by credentials_are_required_once_a_password_is_set):
    // listed so a new one needs a test
    let statuses: std::collections::BTreeSet<String> = h.doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .flat_map(|op| op["responses"].as_object().unwrap().keys().cloned())
        .collect();
    let tested = [
        "200", "201", "204", "304", "400", "401", "403", "404", "409", "412", "413", "414", "503",
        "507",
    ];
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), tested);
}

#[test]
fn curl_examples_in_docs_answer_as_documented() {
    if Command::new("curl").arg("--version").output().is_err() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("curl is not installed but CI=true");
        }
        eprintln!("\n*** SKIPPED curl examples test: curl is not installed ***\n");
        return;
    }
    let h = Http::start(&[]);
    let docs = HTTP_MD
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sh block of curl examples in docs/http.md");
    let readme = README
        .split("<!-- curl-examples")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README's curl examples block");
    let mut ran = 0;
    for line in docs
        .lines()
        .chain(readme.lines())
        .filter(|l| !l.trim().is_empty())
    {
        let (cmd, want) = line
            .rsplit_once(" # ")
            .expect("each example ends with # <status>");
        assert!(cmd.starts_with("curl "), "{line}");
        let cmd = cmd.replace("localhost:8080", &format!("127.0.0.1:{}", h.port));
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{cmd} -s -o /dev/null -w '%{{http_code}}' --max-time 10"
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want.trim(),
            "{line}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} examples");
}

/// Over the memory limit under `noeviction`, PUT and incr get 507
/// `out_of_memory` (documented in the OpenAPI document, which `req` checks
/// against); DELETE and reads go on.
#[test]
fn over_the_memory_limit_writes_get_507_and_deletes_and_reads_go_on() {
    let h = Http::start(&["--maxmemory", "1"]);
    // an empty keyspace is under any limit: the first write goes in
    assert_eq!(h.req("PUT", "/v1/keys/a", &[], b"v").status, 201);
    h.req("PUT", "/v1/keys/b", &[], b"v")
        .assert_error(507, "out_of_memory");
    h.req("POST", "/v1/keys/n/incr", &[], b"")
        .assert_error(507, "out_of_memory");
    assert_eq!(h.req("GET", "/v1/keys/a", &[], b"").status, 200);
    assert_eq!(h.req("DELETE", "/v1/keys/a", &[], b"").status, 204);
    let stats = h.req("GET", "/v1/stats", &[], b"").json();
    assert_eq!(stats["memory"]["maxmemory_bytes"], 1);
    assert_eq!(stats["memory"]["maxmemory_policy"], "noeviction");
    assert_eq!(stats["counters"]["evicted_keys"], 0);
}

/// The dashboard's page and script are served as documented, load nothing
/// from elsewhere, and the script's own functions, run under node against
/// this server's live /v1/stats, read the figures right.
#[test]
fn the_dashboard_serves_its_page_and_script_and_reads_live_stats() {
    let h = Http::start(&[]);
    let page = h.req("GET", "/dashboard", &[], b"");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let html = String::from_utf8(page.body.clone()).unwrap();
    assert!(html.contains(r#"<script type="module" src="/dashboard.js"></script>"#));
    assert!(
        !html.contains("http:") && !html.contains("https:"),
        "loads from elsewhere"
    );
    let script = h.req("GET", "/dashboard.js", &[], b"");
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(script.body, include_bytes!("../src/http/dashboard.mjs"));
    for i in 0..7 {
        let path = format!("/v1/keys/k{i}?tag=shelf{}", i % 2);
        assert_eq!(h.put(&path, b"v").status, 201);
    }
    if Command::new("node").arg("--version").output().is_err() {
        assert!(
            !in_ci(),
            "node is not installed but CI=true: .ci/run must install it"
        );
        eprintln!("\n*** SKIPPED the dashboard script check: node is not installed (apt-get install nodejs) ***\n");
        return;
    }
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/dashboard_check.mjs"
        ))
        .args([h.port.to_string(), h.server.port.to_string(), "7".into()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tags_over_http_surrogate_keys_both_ways_invalidate_and_list() {
    let h = Http::start(&["--max-tags-per-key", "4"]);
    for i in 0..30 {
        let path = format!("/v1/keys/get_items_in_cart::13:10:{i}?tag=cart:13");
        assert_eq!(h.put(&path, b"[1,2]").status, 201);
        let r = h.req(
            "PUT",
            &format!("/v1/keys/get_items_in_cart::14:10:{i}"),
            &[("Surrogate-Key", "cart:14 all")],
            b"[3]",
        );
        assert_eq!(r.status, 201);
    }
    // tags come back in the Surrogate-Key header
    let r = h.get("/v1/keys/get_items_in_cart::14:10:0");
    assert_eq!(r.header("surrogate-key"), Some("all cart:14"));
    assert_eq!(
        h.get("/v1/keys/get_items_in_cart::13:10:0")
            .header("surrogate-key"),
        Some("cart:13")
    );
    // and a RESP client sees the same tags
    let mut resp = h.resp();
    assert_eq!(resp.cmd(&["TAG", "CARD", "all"]), b":30\r\n");
    // listing, with values
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let r = h.get(&format!(
            "/v1/tags/cart:14/keys?cursor={cursor}&count=7&values=true"
        ));
        assert_eq!(r.status, 200);
        let j = r.json();
        let keys = j["keys"].as_array().unwrap();
        let values = j["values"].as_array().unwrap();
        assert_eq!(keys.len(), values.len());
        for (k, v) in keys.iter().zip(values) {
            assert_eq!(v, "[3]");
            seen.insert(k.as_str().unwrap().to_string());
        }
        cursor = j["cursor"].as_str().unwrap().to_string();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 30);
    // one call invalidates the tag
    let r = h.req("POST", "/v1/tags/cart:13/invalidate", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["invalidated"], 30);
    h.get("/v1/keys/get_items_in_cart::13:10:5")
        .assert_error(404, "not_found");
    assert_eq!(h.get("/v1/keys/get_items_in_cart::14:10:5").status, 200);
    let r = h.get("/v1/tags/cart:13/keys");
    assert_eq!(r.json()["keys"], serde_json::json!([]));
    // prefixes
    let r = h.req(
        "POST",
        "/v1/invalidate?prefix=get_items_in_cart::14:",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["prefixes"], 1);
    h.get("/v1/keys/get_items_in_cart::14:10:5")
        .assert_error(404, "not_found");
    h.req("POST", "/v1/invalidate", &[], b"")
        .assert_error(400, "bad_query");
    // limits and bad input
    h.req(
        "PUT",
        "/v1/keys/k?tag=a&tag=b&tag=c",
        &[("Surrogate-Key", "d e")],
        b"v",
    )
    .assert_error(400, "bad_tags");
    h.req("PUT", "/v1/keys/k", &[("Surrogate-Key", "bad%zz")], b"v")
        .assert_error(400, "bad_tags");
    h.get("/v1/keys/k").assert_error(404, "not_found");
    h.get("/v1/tags/t/keys?cursor=x")
        .assert_error(400, "bad_cursor");
    h.get("/v1/tags/t/keys?count=0")
        .assert_error(400, "bad_count");
    // a tag written over RESP is listed over HTTP
    assert_eq!(
        resp.cmd(&["SET", "r", "v", "TAGS", "from resp"]),
        b"+OK\r\n"
    );
    let r = h.get("/v1/tags/from%20resp/keys");
    assert_eq!(r.json()["keys"], serde_json::json!(["r"]));
    assert_eq!(
        h.get("/v1/keys/r").header("surrogate-key"),
        Some("from%20resp")
    );
}

/// `Authorization: Basic` for `user:pass`.
fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[test]
fn credentials_are_required_once_a_password_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("users.acl");
    std::fs::write(
        &acl,
        "user default on >pw ~* &* +@all\n\
         user ro on >ro ~* -@all +@read\n\
         user cart on >c ~cart:* +@all\n",
    )
    .unwrap();
    let h = Http::start(&["--aclfile", acl.to_str().unwrap()]);
    // no credentials, wrong ones, malformed ones: 401 with the challenges
    for auth in [
        None,
        Some(basic("default", "nope")),
        Some(basic("nosuch", "pw")),
        Some("Bearer nope".into()),
        Some("Basic %%%".into()),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        for (method, path) in [
            ("GET", "/v1/keys/k"),
            ("PUT", "/v1/keys/k"),
            ("GET", "/v1/keys"),
            ("GET", "/v1/stats"),
        ] {
            let r = h.req(method, path, &headers, b"v");
            r.assert_error(401, "unauthorized");
            let challenges: Vec<_> = r
                .headers
                .get_all("www-authenticate")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(
                challenges,
                [
                    "Basic realm=\"magpie\", charset=\"UTF-8\"",
                    "Bearer realm=\"magpie\""
                ]
            );
        }
    }
    // the probes and the document stay open
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(h.get(path).status, 200, "{path}");
    }
    // /metrics and /dashboard are open on loopback (the default rule)
    assert_eq!(h.get("/metrics").status, 200);
    assert_eq!(h.get("/dashboard").status, 200);
    // Bearer is the default user's password; Basic any user's
    let bearer = [("authorization", "Bearer pw")];
    assert_eq!(h.req("PUT", "/v1/keys/cart:1", &bearer, b"v").status, 201);
    let admin = basic("default", "pw");
    assert_eq!(
        h.req("GET", "/v1/keys/cart:1", &[("authorization", &admin)], b"")
            .body,
        b"v"
    );
    // a read-only user reads but may not write: 403
    let ro = basic("ro", "ro");
    let ro = [("authorization", ro.as_str())];
    assert_eq!(h.req("GET", "/v1/keys/cart:1", &ro, b"").status, 200);
    h.req("PUT", "/v1/keys/cart:1", &ro, b"w")
        .assert_error(403, "forbidden");
    h.req("DELETE", "/v1/keys/cart:1", &ro, b"")
        .assert_error(403, "forbidden");
    h.req("POST", "/v1/keys/n/incr", &ro, b"")
        .assert_error(403, "forbidden");
    // key patterns
    let cart = basic("cart", "c");
    let cart = [("authorization", cart.as_str())];
    assert_eq!(h.req("PUT", "/v1/keys/cart%3A2", &cart, b"x").status, 201);
    h.req("GET", "/v1/keys/other", &cart, b"")
        .assert_error(403, "forbidden");
    h.req("PUT", "/v1/keys/other", &cart, b"x")
        .assert_error(403, "forbidden");
    // the refusals and the failed logins are in the ACL LOG, no password
    let mut c = h.server.client();
    assert_eq!(c.cmd(&["AUTH", "pw"]), b"+OK\r\n");
    let log = c.cmd_str(&["ACL", "LOG"]);
    assert!(
        log.contains("\r\nother\r\n") && log.contains("\r\ncart\r\n"),
        "{log}"
    );
    assert!(
        log.contains("door=http") && log.contains("\r\nnosuch\r\n"),
        "{log}"
    );
    assert!(!log.contains("nope"), "{log}");
    // with --http-metrics-access protected, /metrics wants credentials too
    let p = Http::start(&["--requirepass", "pw", "--http-metrics-access", "protected"]);
    p.get("/metrics").assert_error(401, "unauthorized");
    assert_eq!(
        p.req("GET", "/metrics", &[("authorization", "Bearer pw")], b"")
            .status,
        200
    );
}
