//! `GET /openapi.json`: the OpenAPI 3.0 document of the HTTP front door,
//! kept as the static file docs/openapi.json (so it is reviewed as a
//! document) and compiled into the binary.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};

/// The OpenAPI document, as served.
pub const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// `GET /openapi.json`.
pub async fn document() -> Response<Body> {
    let mut res = Response::new(Body::from(DOCUMENT));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The (path, method) pairs registered in `router()`, read from its
    /// source so the document cannot drift from the code.
    fn router_routes() -> BTreeSet<(String, String)> {
        let src = include_str!("mod.rs");
        let start = src.find("pub fn router(").expect("router() in mod.rs");
        let body = &src[start..start + src[start..].find("\n}\n").unwrap()];
        let method = regex::Regex::new(r"\b(get|put|post|delete|patch)\(").unwrap();
        let mut out = BTreeSet::new();
        for (at, _) in body.match_indices(".route(") {
            // the call's text up to its matching closing parenthesis
            let args = &body[at + ".route(".len()..];
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .expect("balanced .route(...)")
                .0;
            let args = &args[..end];
            let path = args.split('"').nth(1).expect("route path literal");
            for m in method.captures_iter(args) {
                out.insert((path.to_owned(), m[1].to_owned()));
                if &m[1] == "get" {
                    // axum answers HEAD on every GET route
                    out.insert((path.to_owned(), "head".to_owned()));
                }
            }
        }
        out
    }

    #[test]
    fn document_routes_equal_router_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.0."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((path.clone(), method.clone()));
            }
        }
        let routes = router_routes();
        assert!(routes.len() >= 11, "parsed router routes: {routes:?}");
        // HEAD of non-key GET routes is not worth documenting separately
        let routes: BTreeSet<_> = routes
            .into_iter()
            .filter(|(p, m)| m != "head" || p == "/v1/keys/{key}")
            .collect();
        assert_eq!(documented, routes);
    }

    #[test]
    fn every_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        fn walk(v: &serde_json::Value, doc: &serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        let ptr = r.strip_prefix('#').expect("local reference");
                        assert!(doc.pointer(ptr).is_some(), "dangling {r}");
                    }
                    m.values().for_each(|x| walk(x, doc));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
    }
}
