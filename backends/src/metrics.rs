//! What a backend reports for `/metrics`: samples by name, read at each
//! scrape. The server renders them (Prometheus text format) without knowing
//! which backend or which of its types they come from.

/// Whether a sample only ever grows (since the process started) or is a
/// value as it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleKind {
    Counter,
    Gauge,
}

/// One value of one metric (`name` without the `switchyard_` prefix; a
/// counter's without `_total`).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: SampleKind,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Sample {
        Sample {
            name,
            help,
            kind: SampleKind::Gauge,
            labels: Vec::new(),
            value,
        }
    }

    pub fn counter(name: &'static str, help: &'static str, value: f64) -> Sample {
        Sample {
            kind: SampleKind::Counter,
            ..Sample::gauge(name, help, value)
        }
    }

    pub fn label(mut self, key: &'static str, value: impl Into<String>) -> Sample {
        self.labels.push((key, value.into()));
        self
    }
}
