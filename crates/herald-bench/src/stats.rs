//! Percentiles (sorted vector, nearest rank) and the result table.

use std::time::Duration;

use serde_json::{Value, json};

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
    /// SPEC §4's bar for this figure, or "-" where SPEC sets none.
    pub target: &'static str,
}

impl Row {
    pub fn new(
        scenario: &str,
        metric: &str,
        value: f64,
        unit: &'static str,
        target: &'static str,
    ) -> Row {
        Row {
            scenario: scenario.to_string(),
            metric: metric.to_string(),
            value,
            unit,
            target,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "spec_target": self.target,
        })
    }
}

/// The `p`-th percentile (0–100, nearest rank) of `samples` in milliseconds; 0 when empty.
pub fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    let index = rank.clamp(1, samples.len()) - 1;
    samples[index].as_secs_f64() * 1000.0
}

pub fn print_table(rows: &[Row]) {
    let width = |column: fn(&Row) -> usize, header: &str| {
        rows.iter().map(column).max().unwrap_or(0).max(header.len())
    };
    let metric = width(|r| r.metric.chars().count(), "metric");
    let scenario = width(|r| r.scenario.len(), "scenario");
    println!(
        "{:<scenario$} {:<metric$} {:>14} {:<10} SPEC §4 target",
        "scenario", "metric", "value", "unit"
    );
    for row in rows {
        println!(
            "{:<scenario$} {:<metric$} {:>14.2} {:<10} {}",
            row.scenario, row.metric, row.value, row.unit, row.target
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&mut samples, 50.0), 50.0);
        assert_eq!(percentile_ms(&mut samples, 99.0), 99.0);
        assert_eq!(percentile_ms(&mut [], 99.0), 0.0);
    }
}
