//! The figures of one backend at one size, and how they are printed: one
//! JSON object `{"<backend>": {"<size>": {"<key>": value, …}, …}, …}` or a
//! table with one column per backend and size.

use serde::{Deserialize, Serialize};

/// What one size of one backend measured. Latencies are medians in
/// microseconds; the field names are the JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    /// `WorkSpec::work_unit`: a lookup by name.
    pub work_unit: f64,
    /// `WorkUnit::status` on a held handle.
    pub status: f64,
    /// `WorkSpec::count_work_unit_status`.
    pub count_work_unit_status: f64,
    /// `WorkSpec::meta(true)`: the meta with its counts.
    pub meta_counted: f64,
    /// `Namespace::summarize`.
    pub summarize: f64,
    /// `WorkSpec::work_units` of pending units, limit 100.
    pub work_units_pending_100: f64,
    /// `WorkSpec::delete_work_units` of 1,000 names, after 100 executions.
    pub delete_1000_names: f64,
    /// `Worker::request_attempts` of 10 units.
    pub request_attempts_10: f64,
    /// `Attempt::finish` of an attempt just handed out.
    pub finish: f64,
    /// Units stored per second of `WorkSpec::add_work_units` calls.
    pub bulk_add_units_per_sec: f64,
    /// Memory: resident memory per unit; PostgreSQL: table and index bytes per unit.
    pub bytes_per_unit: f64,
}

impl Figures {
    /// The rows of the table: label and value, in the order of the fields.
    fn rows(&self) -> [(&'static str, f64); 11] {
        [
            ("work_unit (µs)", self.work_unit),
            ("status (µs)", self.status),
            ("count_work_unit_status (µs)", self.count_work_unit_status),
            ("meta(true) (µs)", self.meta_counted),
            ("summarize namespace (µs)", self.summarize),
            (
                "work_units pending, limit 100 (µs)",
                self.work_units_pending_100,
            ),
            ("delete 1,000 names (µs)", self.delete_1000_names),
            ("request_attempts of 10 (µs)", self.request_attempts_10),
            ("finish (µs)", self.finish),
            ("bulk add (units/s)", self.bulk_add_units_per_sec),
            ("bytes per unit", self.bytes_per_unit),
        ]
    }
}

/// The figures of one backend at one size.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `memory` or `postgres`.
    pub backend: &'static str,
    /// Units loaded.
    pub size: usize,
    /// What was measured.
    pub figures: Figures,
}

/// Every run as one JSON object, backend → size (decimal string) → figures.
pub fn json(runs: &[Run]) -> serde_json::Value {
    let mut backends = serde_json::Map::new();
    for run in runs {
        let sizes = backends
            .entry(run.backend)
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let serde_json::Value::Object(sizes) = sizes {
            sizes.insert(run.size.to_string(), serde_json::json!(run.figures));
        }
    }
    serde_json::Value::Object(backends)
}

/// The figures of one backend at one size, from the JSON [`json`] prints.
pub fn parse_one(text: &str, backend: &'static str, size: usize) -> Result<Run, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("unreadable figures: {e}"))?;
    let figures = value
        .get(backend)
        .and_then(|sizes| sizes.get(size.to_string()))
        .ok_or_else(|| format!("no figures for {backend} at {size} units"))?;
    let figures = serde_json::from_value(figures.clone())
        .map_err(|e| format!("unreadable figures for {backend} at {size} units: {e}"))?;
    Ok(Run {
        backend,
        size,
        figures,
    })
}

/// Every run as a table: one row per figure, one column per run.
pub fn table(runs: &[Run]) -> String {
    const LABEL: usize = 36;
    const COLUMN: usize = 18;
    let mut out = format!("{:LABEL$}", "");
    for run in runs {
        out.push_str(&format!(
            "{:>COLUMN$}",
            format!("{} {}", run.backend, run.size)
        ));
    }
    out.push('\n');
    let rows: Vec<_> = runs.iter().map(|run| run.figures.rows()).collect();
    for (i, (label, _)) in Figures::rows(&runs[0].figures).iter().enumerate() {
        out.push_str(&format!("{label:LABEL$}"));
        for row in &rows {
            out.push_str(&format!("{:>COLUMN$}", readable(row[i].1)));
        }
        out.push('\n');
    }
    out
}

/// A figure with as many decimals as its size deserves.
fn readable(value: f64) -> String {
    if value >= 1_000.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(base: f64) -> Figures {
        Figures {
            work_unit: base,
            status: base + 1.0,
            count_work_unit_status: base + 2.0,
            meta_counted: base + 3.0,
            summarize: base + 4.0,
            work_units_pending_100: base + 5.0,
            delete_1000_names: base + 6.0,
            request_attempts_10: base + 7.0,
            finish: base + 8.0,
            bulk_add_units_per_sec: 1_234_567.0,
            bytes_per_unit: 480.5,
        }
    }

    #[test]
    fn json_nests_backend_then_size_and_parses_back() {
        let runs = [
            Run {
                backend: "memory",
                size: 10_000,
                figures: figures(1.0),
            },
            Run {
                backend: "memory",
                size: 1_000_000,
                figures: figures(2.0),
            },
        ];
        let text = json(&runs).to_string();
        assert_eq!(parse_one(&text, "memory", 1_000_000), Ok(runs[1].clone()));
        assert_eq!(parse_one(&text, "memory", 10_000), Ok(runs[0].clone()));
        assert!(parse_one(&text, "postgres", 10_000).is_err());
    }

    #[test]
    fn unknown_or_missing_keys_are_refused() {
        let mut value = serde_json::json!(figures(1.0));
        value["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Figures>(value.clone()).is_err());
        let map = value.as_object_mut().expect("an object");
        map.remove("extra");
        map.remove("finish");
        assert!(serde_json::from_value::<Figures>(value).is_err());
    }

    #[test]
    fn table_has_a_column_per_run_and_a_row_per_figure() {
        let runs = [Run {
            backend: "postgres",
            size: 100_000,
            figures: figures(12.345),
        }];
        let table = table(&runs);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 12);
        assert!(lines[0].ends_with("postgres 100000"));
        assert!(lines[1].starts_with("work_unit (µs)") && lines[1].ends_with("12.3"));
        assert!(lines[10].ends_with("1234567"));
        assert!(lines[11].ends_with("480.5"));
    }
}
