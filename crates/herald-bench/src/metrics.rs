//! Reading Herald's `/metrics` (Prometheus text format).

/// The whole exposition from `url` (Herald's `/metrics`).
pub async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The value of the sample whose name and labels are exactly `series`; 0 when absent.
pub fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The sum of the samples of `name` whose labels contain `label`.
pub fn sum(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_exact_series_or_summed_by_label() {
        let metrics = "\
# TYPE herald_live_sessions gauge
herald_live_sessions 19000
herald_deliveries_total{channel=\"apns\",outcome=\"retry\"} 2
herald_deliveries_total{channel=\"fcm\",outcome=\"retry\"} 3
herald_deliveries_total{channel=\"fcm\",outcome=\"delivered\"} 40
";
        assert_eq!(value(metrics, "herald_live_sessions"), 19000.0);
        assert_eq!(value(metrics, "herald_live"), 0.0);
        assert_eq!(
            sum(metrics, "herald_deliveries_total", "outcome=\"retry\""),
            5.0
        );
    }
}
