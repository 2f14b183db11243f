//! Encoding: OpenMetrics text through `prometheus-client`, and the older Prometheus
//! text format (0.0.4) derived from it for clients that do not ask for OpenMetrics,
//! node_exporter's textfile collector among them.
//!
//! The two differ, for the metrics exported here, only in the counter's family name
//! (OpenMetrics names the family without `_total` and its samples with it; 0.0.4
//! names both with it) and in the `# UNIT` and `# EOF` lines, which 0.0.4 lacks.
//! Help texts are plain words: no quotes, backslashes or line breaks, which the two
//! formats would escape differently (a unit test checks every help text).

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::fmt;

/// Which text format a response or the textfile is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The Prometheus text format, version 0.0.4.
    Text,
}

impl Format {
    /// OpenMetrics when the client's `Accept` header names it (Prometheus does), else
    /// the older text format.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The registry's metrics in `format`. An encoding error (a collector's) ends the
/// text where it happened and is logged.
pub fn render(registry: &Registry, format: Format) -> String {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::warn!("cannot encode the metrics: {e}");
    }
    match format {
        Format::OpenMetrics => text,
        Format::Text => openmetrics_to_text(&text),
    }
}

/// Converts the OpenMetrics text `prometheus-client` writes into the 0.0.4 text
/// format: counter families named with `_total`, `# UNIT` and `# EOF` dropped.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut help: Option<&str> = None;
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some(h) = help.replace(rest) {
                push_line(&mut out, &["# HELP ", h]);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.rsplit_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                push_line(&mut out, &["# HELP ", &name, " ", text]);
            }
            push_line(&mut out, &["# TYPE ", &name, " ", kind]);
            continue;
        }
        if let Some(h) = help.take() {
            push_line(&mut out, &["# HELP ", h]);
        }
        push_line(&mut out, &[line]);
    }
    out
}

fn push_line(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
    out.push('\n');
}

/// Encodes one gauge without labels.
pub fn gauge<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: V,
) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(enc.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

/// Encodes one counter without labels (`name` without `_total`).
pub fn counter<V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: V,
) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(enc.encode_descriptor(name, help, unit, MetricType::Counter)?)
}

/// Encodes a gauge family, one sample per label set (none: the family alone).
pub fn gauge_family<L: EncodeLabelSet, V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes a counter family, one sample per label set.
pub fn counter_family<L: EncodeLabelSet, V: EncodeCounterValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::collector::Collector;

    #[derive(Debug)]
    struct Sample;

    impl Collector for Sample {
        fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
            counter(&mut enc, "events", "Events seen", None, 7u64)?;
            gauge(&mut enc, "size", "Size now", Some(&Unit::Bytes), 12u64)?;
            counter_family(
                &mut enc,
                "alerts",
                "Alerts raised",
                [([("kind", "zero-hole")], 2u64)],
            )?;
            gauge_family::<[(&str, &str); 1], u64>(&mut enc, "empty", "No samples", None, [])
        }
    }

    #[test]
    fn text_format_names_counter_families_with_total_and_drops_unit_and_eof() {
        let mut registry = Registry::with_prefix("x");
        registry.register_collector(Box::new(Sample));
        let om = render(&registry, Format::OpenMetrics);
        assert!(
            om.contains("# TYPE x_events counter\nx_events_total 7\n"),
            "{om}"
        );
        assert!(om.contains("# UNIT x_size_bytes bytes\n"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
        let text = render(&registry, Format::Text);
        assert_eq!(
            text,
            "# HELP x_events_total Events seen\n\
             # TYPE x_events_total counter\n\
             x_events_total 7\n\
             # HELP x_size_bytes Size now\n\
             # TYPE x_size_bytes gauge\n\
             x_size_bytes 12\n\
             # HELP x_alerts_total Alerts raised\n\
             # TYPE x_alerts_total counter\n\
             x_alerts_total{kind=\"zero-hole\"} 2\n\
             # HELP x_empty No samples\n\
             # TYPE x_empty gauge\n"
        );
    }

    #[test]
    fn negotiation_follows_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
    }
}
