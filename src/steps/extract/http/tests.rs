//! `extract.http` against a real HTTP server on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use serde_json::json;

#[path = "../../../../tests/support/api_server.rs"]
mod server;

use self::server::{Request, Response, Server};
use super::KIND;
use crate::steps::testing::{Harness, Outcome};

/// The token: the value of a variable the test environment always sets, so
/// that no test has to change the process environment.
const TOKEN_VAR: &str = "NIGHTJAR_TEST_PG";

fn token() -> String {
    crate::testenv::postgres_url()
}

/// Ten customers, nested; `authorized` checks the bearer token.
fn customer(i: u64) -> serde_json::Value {
    json!({"id": i, "name": format!("c{i}"), "customer": {"address": {"city": if i.is_multiple_of(2) { "Leeds" } else { "York" }}},
           "tags": ["a", i]})
}

fn authorized(r: &Request) -> bool {
    r.headers.get("authorization") == Some(&format!("Bearer {}", token()))
}

fn api() -> server::Handler {
    let flaky = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    Arc::new(move |r: &Request| {
        if !authorized(r) {
            return Response::raw(401, "{\"error\": \"no token\"}");
        }
        let q = |k: &str| r.query.get(k).and_then(|v| v.parse::<u64>().ok());
        let slice = |from: u64, n: u64| (from..(from + n).min(10)).map(customer).collect::<Vec<_>>();
        match r.path.as_str() {
            "/page" => {
                let (p, size) = (q("page").unwrap(), q("per_page").unwrap());
                Response::json(json!({"data": {"items": slice((p - 1) * size, size)}}))
            }
            "/offset" => Response::json(json!({"items": slice(q("offset").unwrap(), q("limit").unwrap())})),
            "/cursor" => {
                let at = r
                    .query
                    .get("cursor")
                    .map_or(0, |c| c.trim_start_matches("c").parse().unwrap());
                let next = if at + 4 < 10 {
                    json!(format!("c{}", at + 4))
                } else {
                    json!(null)
                };
                Response::json(json!({"data": {"items": slice(at, 4)}, "meta": {"next": next}}))
            }
            "/link" => {
                let p = q("p").unwrap_or(0);
                let mut resp = Response::json(json!(slice(p * 3, 3)));
                if (p + 1) * 3 < 10 {
                    resp = resp.header(
                        "Link",
                        &format!("</link?p={}>; rel=\"next\", </link?p=0>; rel=\"first\"", p + 1),
                    );
                }
                resp
            }
            "/limited" => {
                if limited.fetch_add(1, Ordering::SeqCst) == 0 {
                    Response::raw(429, "slow down").header("Retry-After", "1")
                } else {
                    Response::json(json!([customer(1)]))
                }
            }
            "/flaky" => {
                if flaky.fetch_add(1, Ordering::SeqCst) == 0 {
                    Response::raw(500, "oops")
                } else {
                    Response::json(json!([customer(2)]))
                }
            }
            "/down" => Response::raw(503, "maintenance"),
            "/broken" => match q("page").unwrap() {
                1 => Response::json(json!({"items": slice(0, 2)})),
                _ => Response::raw(200, "{\"items\": [{\"id\": 3,"),
            },
            "/search" if r.method == "POST" => {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                Response::json(json!({"results": [{"q": body["q"], "n": body["limit"]}]}))
            }
            _ => Response::raw(404, "no such endpoint"),
        }
    })
}

fn harness() -> Harness {
    let mut h = Harness::new("api");
    h.pii_values = vec![token()];
    h
}

fn ids(out: &Outcome) -> Vec<i64> {
    out.datasets["default"]
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

fn job(base: &str, path: &str, extra: &str) -> String {
    format!("url = \"{base}{path}\"\nauth = {{ bearer_env = \"{TOKEN_VAR}\" }}\nretries = 2\n{extra}")
}

#[tokio::test]
async fn every_pagination_style_reads_all_rows_flattened() {
    let s = Server::start(api()).await;
    let h = harness();
    let styles = [
        (
            "/page",
            "records = \"$.data.items\"\npagination = { style = \"page\", param = \"page\", size_param = \"per_page\", size = 3 }\n",
            4,
        ),
        (
            "/offset",
            "records = \"$.items\"\npagination = { style = \"offset\", limit = 4 }\n",
            3,
        ),
        (
            "/cursor",
            "records = \"$.data.items\"\npagination = { style = \"cursor\", param = \"cursor\", next = \"$.meta.next\" }\n",
            3,
        ),
        ("/link", "pagination = { style = \"link\" }\n", 4),
    ];
    for (path, extra, pages) in styles {
        let out = h.run(&KIND, &job(&s.base, path, extra)).await.unwrap();
        assert_eq!(ids(&out), (0..10).collect::<Vec<i64>>(), "{path}");
        assert_eq!(out.output.metrics.extra["pages"], pages, "{path}");
        let b = &out.datasets["default"][0];
        assert_eq!(
            b.column_by_name("customer.address.city")
                .unwrap()
                .as_string::<i32>()
                .value(0),
            "Leeds",
            "{path}"
        );
        assert_eq!(
            b.column_by_name("tags").unwrap().as_string::<i32>().value(1),
            "[\"a\",1]",
            "{path}"
        );
    }
    // A page of no records ends page-number pagination without `size`.
    let out = h
        .run(
            &KIND,
            &job(
                &s.base,
                "/page",
                "records = \"$.data.items\"\nquery = { per_page = 4 }\npagination = { style = \"page\" }\n",
            ),
        )
        .await
        .unwrap();
    assert_eq!(ids(&out).len(), 10);
    assert_eq!(out.output.metrics.extra["pages"], 4, "3 with rows, 1 empty");
}

#[tokio::test]
async fn retries_honour_retry_after_and_recover_from_500() {
    let s = Server::start(api()).await;
    let h = harness();
    let t = Instant::now();
    let out = h.run(&KIND, &job(&s.base, "/limited", "")).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited for Retry-After: {:?}",
        t.elapsed()
    );
    assert_eq!(ids(&out), [1]);
    assert_eq!(out.output.metrics.extra["requests"], 2);
    assert!(
        out.log.contains("HTTP 429 Too Many Requests; retry 1 of 2 in 1s"),
        "{}",
        out.log
    );
    let out = h.run(&KIND, &job(&s.base, "/flaky", "")).await.unwrap();
    assert_eq!(ids(&out), [2]);
    assert!(out.log.contains("HTTP 500"), "{}", out.log);
    let err = h
        .run(
            &KIND,
            &job(&s.base, "/down", "retries = 1\n").replace("retries = 2\n", ""),
        )
        .await
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("HTTP 503 Service Unavailable, still after 1 retries"),
        "{msg}"
    );
    assert!(msg.contains("/down"), "{msg}");
}

#[tokio::test]
async fn errors_name_the_page_and_never_the_token() {
    let s = Server::start(api()).await;
    let h = harness();
    let err = h
        .run(
            &KIND,
            &job(
                &s.base,
                "/broken",
                "records = \"$.items\"\npagination = { style = \"page\", size_param = \"n\", size = 2 }\n",
            ),
        )
        .await
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("page 2 ({}/broken?page=2&n=2)", s.base)), "{msg}");
    assert!(!msg.contains(&token()), "{msg}");
    // Without the token: 401, with the server's answer.
    let err = h
        .run(
            &KIND,
            &format!("url = \"{}/page\"\nquery = {{ page = 1, per_page = 1 }}\n", s.base),
        )
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("HTTP 401 Unauthorized: {\"error\": \"no token\"}"),
        "{err:#}"
    );
    let err = h
        .run(
            &KIND,
            &format!(
                "url = \"{}/page\"\nauth = {{ bearer_env = \"NIGHTJAR_SURELY_UNSET_TOKEN\" }}\n",
                s.base
            ),
        )
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("`NIGHTJAR_SURELY_UNSET_TOKEN` (bearer token) is not set"),
        "{err:#}"
    );
}

#[tokio::test]
async fn post_json_body_and_rate_limit() {
    let s = Server::start(api()).await;
    let h = harness();
    let out = h
        .run(
            &KIND,
            &job(
                &s.base,
                "/search",
                "method = \"POST\"\nrecords = \"$.results\"\nbody = { q = \"tea\", limit = 5 }\n",
            ),
        )
        .await
        .unwrap();
    let b = &out.datasets["default"][0];
    assert_eq!(b.column_by_name("q").unwrap().as_string::<i32>().value(0), "tea");
    // 4 requests at 5/s take at least 0.6 s.
    let t = Instant::now();
    let out = h
        .run(&KIND, &job(&s.base, "/cursor", "records = \"$.data.items\"\nrate_limit = 5\npagination = { style = \"cursor\", param = \"cursor\", next = \"$.meta.next\" }\n"))
        .await
        .unwrap();
    assert_eq!(out.output.metrics.extra["requests"], 3);
    assert!(t.elapsed() >= Duration::from_millis(390), "{:?}", t.elapsed());
}

#[test]
fn config_checks() {
    use crate::steps::StepConfig;
    let c: super::HttpExtract =
        toml::from_str("url = \"ftp://x\"\nbody = { a = 1 }\nheaders = { Authorization = \"Bearer abc\" }\nauth = { header = \"X-Key\" }\n").unwrap();
    let p: Vec<String> = c
        .check()
        .into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect();
    assert!(p.iter().any(|p| p.starts_with("url")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("needs `method = \"POST\"`")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("credentials do not belong")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("`header` goes with `value_env`")), "{p:?}");
}
