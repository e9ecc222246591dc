//! Percentiles of a set of durations (nearest rank, so every value reported was seen).

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of_micros(mut us: Vec<u64>) -> Self {
        if us.is_empty() {
            return Percentiles::default();
        }
        us.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
            us[i] as f64 / 1000.0
        };
        Percentiles {
            samples: us.len(),
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: rank(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of_micros((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!(
            (p.samples, p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        let one = Percentiles::of_micros(vec![1500]);
        assert_eq!((one.p50_ms, one.max_ms), (1.5, 1.5));
        assert_eq!(Percentiles::of_micros(vec![]).samples, 0);
    }
}
