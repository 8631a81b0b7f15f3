//! Prometheus text exposition of a prometheus-client [`Registry`]: OpenMetrics for scrapers
//! that ask for it, Prometheus text format 0.0.4 for the others (what `promtool check metrics`
//! and older scrapers expect).

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `Content-Type` of the OpenMetrics text exposition.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the Prometheus text exposition (format 0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The OpenMetrics text exposition of a registry.
pub fn encode_openmetrics(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The Prometheus text exposition (format 0.0.4) of a registry: the OpenMetrics text with
/// counter families named by their `_total` samples and without the `# EOF` marker.
pub fn encode(registry: &Registry) -> String {
    to_prometheus_text(&encode_openmetrics(registry))
}

/// Converts OpenMetrics text (as prometheus-client writes it) to Prometheus text format 0.0.4:
/// `# HELP` and `# TYPE` of counters name the `_total` samples, `# UNIT` and `# EOF` are
/// dropped.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Registers `name` (`<daemon>_build_info`): a gauge that is always 1, labelled with the
/// daemon's `version` (pass `env!("CARGO_PKG_VERSION")`).
pub fn register_build_info(registry: &mut Registry, name: &str, help: &str, version: &'static str) {
    let build: Family<Vec<(&'static str, &'static str)>, Gauge> = Family::default();
    build.get_or_create(&vec![("version", version)]).set(1);
    registry.register(name, help, build);
}

/// A `/metrics` response body and its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposition {
    /// [`OPENMETRICS_CONTENT_TYPE`] or [`PROMETHEUS_CONTENT_TYPE`].
    pub content_type: &'static str,
    /// The text.
    pub body: String,
}

/// The exposition a `/metrics` request with these headers asks for: OpenMetrics when its
/// `Accept` names `application/openmetrics-text`, Prometheus text format 0.0.4 otherwise.
pub fn exposition(registry: &Registry, request_headers: &http::HeaderMap) -> Exposition {
    let openmetrics = request_headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        Exposition {
            content_type: OPENMETRICS_CONTENT_TYPE,
            body: encode_openmetrics(registry),
        }
    } else {
        Exposition {
            content_type: PROMETHEUS_CONTENT_TYPE,
            body: encode(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    fn registry() -> Registry {
        let mut registry = Registry::default();
        let requests = Counter::<u64>::default();
        requests.inc();
        registry.register("x_requests", "Requests served", requests);
        let open = Gauge::<i64>::default();
        open.set(3);
        registry.register_with_unit(
            "x_open",
            "Open things",
            prometheus_client::registry::Unit::Bytes,
            open,
        );
        register_build_info(
            &mut registry,
            "x_build_info",
            "X version (always 1)",
            "1.2.3",
        );
        registry
    }

    #[test]
    fn prometheus_text_names_counters_by_their_samples() {
        let registry = registry();
        let openmetrics = encode_openmetrics(&registry);
        assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
        assert!(openmetrics.contains("# TYPE x_requests counter\n"));
        assert!(openmetrics.contains("# UNIT "));
        let text = encode(&registry);
        assert!(
            text.contains("# HELP x_requests_total Requests served.\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE x_requests_total counter\n"), "{text}");
        assert!(text.contains("\nx_requests_total 1\n"), "{text}");
        assert!(text.contains("# TYPE x_open_bytes gauge\n"), "{text}");
        assert!(text.contains("\nx_open_bytes 3\n"), "{text}");
        assert!(text.contains("# TYPE x_build_info gauge\n"), "{text}");
        assert!(
            text.contains("\nx_build_info{version=\"1.2.3\"} 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT "),
            "{text}"
        );
    }

    #[test]
    fn exposition_follows_accept() {
        let registry = registry();
        let mut headers = http::HeaderMap::new();
        let e = exposition(&registry, &headers);
        assert_eq!(e.content_type, PROMETHEUS_CONTENT_TYPE);
        assert_eq!(e.body, encode(&registry));
        headers.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/openmetrics-text;version=1.0.0,*/*;q=0.1"),
        );
        let e = exposition(&registry, &headers);
        assert_eq!(e.content_type, OPENMETRICS_CONTENT_TYPE);
        assert_eq!(e.body, encode_openmetrics(&registry));
    }
}
