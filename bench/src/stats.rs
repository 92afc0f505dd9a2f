//! Percentiles and markdown tables.

use std::time::Duration;

/// Summary of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
    pub max: f64,
}

/// Nearest-rank percentile of an ascending sample.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub fn summarize_ms(values: &[f64]) -> Summary {
    if values.is_empty() {
        return Summary::default();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Summary {
        n: v.len(),
        p50: pct(&v, 50.0),
        p99: pct(&v, 99.0),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        max: v[v.len() - 1],
    }
}

pub fn summarize(values: &[Duration]) -> Summary {
    summarize_ms(&values.iter().map(|d| ms(*d)).collect::<Vec<_>>())
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A distribution-free ~95 % confidence interval for the median: the
/// order statistics x(k) and x(n+1-k), with the largest k such that
/// P(Binomial(n, ½) < k) ≤ 2.5 %. `None` when n is too small (n < 6).
pub fn median_ci95(values: &[f64]) -> Option<(f64, f64)> {
    let n = values.len();
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    // ln C(n, i) - n ln 2, accumulated.
    let mut ln_p = -(n as f64) * std::f64::consts::LN_2;
    let mut cdf = 0.0;
    let mut k = 0;
    for i in 0..n {
        cdf += ln_p.exp();
        if cdf > 0.025 {
            break;
        }
        k = i + 1;
        ln_p += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
    }
    (k >= 1).then(|| (v[k - 1], v[n - k]))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A number of milliseconds as the tables print it.
pub fn f3(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.3}")
    }
}

pub struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.head.len(), "table row width");
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let w: Vec<usize> = (0..self.head.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.head[i].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (i, c) in cells.iter().enumerate() {
                let pad = w[i] - c.chars().count();
                // Text columns left, numbers right.
                if i == 0 {
                    s += &format!(" {c}{} |", " ".repeat(pad));
                } else {
                    s += &format!(" {}{c} |", " ".repeat(pad));
                }
            }
            s + "\n"
        };
        let mut out = line(&self.head);
        out += "|";
        for (i, n) in w.iter().enumerate() {
            out += &if i == 0 {
                format!("{}|", "-".repeat(n + 2))
            } else {
                format!("{}:|", "-".repeat(n + 1))
            };
        }
        out += "\n";
        for r in &self.rows {
            out += &line(r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize_ms(&v);
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        // n = 30: P(Bin(30, ½) ≤ 9) ≈ 0.021, P(≤ 10) ≈ 0.049 → x(10), x(21).
        let v: Vec<f64> = (1..=30).map(f64::from).collect();
        assert_eq!(median_ci95(&v), Some((10.0, 21.0)));
        assert_eq!(median_ci95(&[1.0, 2.0, 3.0]), None);
    }
}
