//! The per-request decision endpoint in the external-authorisation style: a proxy forwards the
//! request's method, URI, client address and headers; the answer is 200 (go on) or 403.
//!
//! Where each proxy puts the original request (all are read; the first present wins):
//! - method: `X-Original-Method` (nginx `auth_request` with `proxy_set_header`),
//!   `X-Forwarded-Method` (Traefik ForwardAuth, Caddy `forward_auth`), else the check request's
//!   own method (Envoy `ext_authz` HTTP service keeps it);
//! - URI: `X-Original-URI`, `X-Forwarded-Uri`, else the check request's path after
//!   `/v1/authz` (Envoy appends the original path to its `path_prefix`);
//! - client: `X-Real-IP`, else the first `X-Forwarded-For` address, else
//!   `X-Envoy-External-Address`.
//!
//! The agent authenticates with `X-Tapline-Key` (or `?key=` on the URL for proxies that cannot
//! add a header); `X-Api-Key` is left to the original request, where it is the client's key.

use hyper::HeaderMap;
use std::net::IpAddr;
use tapline_enforce::Request;

/// Where the endpoint lives.
pub const PREFIX: &str = "/v1/authz";
/// The header an agent sends its key in.
pub const KEY_HEADER: &str = "x-tapline-key";

/// Headers that describe the check request, not the original one.
const OWN: [&str; 10] = [
    KEY_HEADER,
    "x-original-method",
    "x-original-uri",
    "x-forwarded-method",
    "x-forwarded-uri",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "content-length",
    "connection",
];

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The original request's client address, as the proxy reports it.
pub fn client(h: &HeaderMap) -> Option<IpAddr> {
    let parse = |s: &str| {
        let s = s.trim().trim_start_matches('[');
        s.parse::<IpAddr>()
            .ok()
            .or_else(|| s.split(']').next().and_then(|a| a.parse().ok()))
            .or_else(|| s.rsplit_once(':').and_then(|(a, _)| a.parse().ok()))
    };
    header(h, "x-real-ip")
        .and_then(parse)
        .or_else(|| {
            header(h, "x-forwarded-for")
                .and_then(|v| v.split(',').next())
                .and_then(parse)
        })
        .or_else(|| header(h, "x-envoy-external-address").and_then(parse))
}

/// The original request described by a check request.
pub fn original<'a>(method: &'a str, path: &'a str, h: &'a HeaderMap) -> Request<'a> {
    let method = header(h, "x-original-method")
        .or_else(|| header(h, "x-forwarded-method"))
        .unwrap_or(method);
    let path = header(h, "x-original-uri")
        .or_else(|| header(h, "x-forwarded-uri"))
        .unwrap_or_else(|| match path.strip_prefix(PREFIX) {
            Some("") | None => "/",
            Some(rest) => rest,
        });
    let headers = h
        .iter()
        .filter(|(n, _)| !OWN.contains(&n.as_str()))
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    Request {
        client: client(h),
        method,
        path,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn each_proxy_convention_is_read() {
        let nginx = headers(&[
            ("x-original-method", "DELETE"),
            ("x-original-uri", "/admin/users/3?x=1"),
            ("x-real-ip", "203.0.113.7"),
            ("x-api-key", "client-key"),
            ("x-tapline-key", "agent-key"),
        ]);
        let r = original("GET", "/v1/authz", &nginx);
        assert_eq!((r.method, r.path), ("DELETE", "/admin/users/3?x=1"));
        assert_eq!(r.client, "203.0.113.7".parse().ok());
        assert_eq!(
            r.headers,
            vec![("x-api-key", "client-key")],
            "the agent's key is not the client's"
        );

        let traefik = headers(&[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/login"),
            ("x-forwarded-for", "2001:db8::7, 10.0.0.1"),
        ]);
        let r = original("GET", "/v1/authz", &traefik);
        assert_eq!((r.method, r.path), ("POST", "/login"));
        assert_eq!(r.client, "2001:db8::7".parse().ok());

        let envoy = headers(&[("x-forwarded-for", "198.51.100.4:5123")]);
        let r = original("PUT", "/v1/authz/api/orders/9", &envoy);
        assert_eq!((r.method, r.path), ("PUT", "/api/orders/9"));
        assert_eq!(r.client, "198.51.100.4".parse().ok());
        assert_eq!(original("GET", "/v1/authz", &HeaderMap::new()).path, "/");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a proxy (or an attacker in front of it) puts in the headers, reading the
        /// original request never panics, and the path is never empty.
        #[test]
        fn any_headers_read_without_panicking(
            pairs in proptest::collection::vec(("[a-z-]{1,20}", "[ -~]{0,60}"), 0..12),
            path in "[ -~]{0,40}",
        ) {
            let mut h = HeaderMap::new();
            for (n, v) in &pairs {
                if let (Ok(n), Ok(v)) = (hyper::header::HeaderName::try_from(n.as_str()), v.parse()) {
                    h.append(n, v);
                }
            }
            let r = original("GET", &path, &h);
            prop_assert!(!r.path.is_empty());
            let _ = client(&h);
        }
    }
}
