//! The Prometheus text exposition format (version 0.0.4), written by hand:
//! every figure is read from its owner at scrape time, so there is no
//! registry of live metric objects to keep in step, only a writer that keeps
//! each family's samples together under its `# HELP` and `# TYPE`.

use std::fmt::Write;

/// The media type of the body.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets, `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes families one after another into a string.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// An empty body with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            out: String::with_capacity(capacity),
        }
    }

    /// Starts family `name`: its HELP and TYPE lines. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            escape_help(help),
            kind.as_str()
        );
    }

    /// One sample of a counter or gauge.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// One histogram: `cumulative` holds (upper bound, observations at or below it) in
    /// increasing order; `+Inf` is added with `count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        cumulative: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        let mut le = String::new();
        for (bound, n) in cumulative {
            le.clear();
            push_value(&mut le, *bound);
            self.out.push_str(name);
            self.out.push_str("_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {n}");
        }
        self.out.push_str(name);
        self.out.push_str("_bucket");
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {count}");
        self.out.push_str(name);
        self.out.push_str("_sum");
        self.labels(labels, None);
        self.out.push(' ');
        push_value(&mut self.out, sum);
        self.out.push('\n');
        self.out.push_str(name);
        self.out.push_str("_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {count}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
        for (k, v) in all {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label_into(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The body.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A value as the format spells it: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Label values escape `\`, `"` and line feeds.
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes `\` and line feeds.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_has_help_type_and_its_samples() {
        let mut w = Writer::default();
        w.family(
            "x_total",
            Kind::Counter,
            "Things, with a \\ and\na newline.",
        );
        w.sample("x_total", &[("service", "api"), ("code", "2xx")], 3.0);
        w.sample("x_total", &[], 0.5);
        assert_eq!(
            w.finish(),
            "# HELP x_total Things, with a \\\\ and\\na newline.\n# TYPE x_total counter\n\
             x_total{service=\"api\",code=\"2xx\"} 3\nx_total 0.5\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut w = Writer::default();
        w.sample("g", &[("route", "a\"b\\c\nd")], 1.0);
        assert_eq!(w.finish(), "g{route=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn values_are_spelled_as_the_format_wants() {
        let mut s = String::new();
        for v in [
            0.0,
            -2.0,
            0.005,
            7.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e20,
        ] {
            push_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 -2 0.005 7.5 NaN +Inf -Inf 100000000000000000000 ");
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_inf_sum_and_count() {
        let mut w = Writer::default();
        w.family("d_seconds", Kind::Histogram, "Durations.");
        w.histogram("d_seconds", &[("r", "1")], &[(0.1, 2), (1.0, 5)], 2.25, 6);
        assert_eq!(
            w.finish(),
            "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{r=\"1\",le=\"0.1\"} 2\nd_seconds_bucket{r=\"1\",le=\"1\"} 5\n\
             d_seconds_bucket{r=\"1\",le=\"+Inf\"} 6\nd_seconds_sum{r=\"1\"} 2.25\n\
             d_seconds_count{r=\"1\"} 6\n"
        );
        let mut w = Writer::default();
        w.histogram("h", &[], &[], 0.0, 0);
        assert_eq!(w.finish(), "h_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
    }
}
