//! The results of a run: a table on stdout, `load.json` and a latency plot `latency.svg`,
//! plus the tables and charts a scenario adds (the connect stages, memory against sessions).
//!
//! Every figure may carry the same figure measured against the baseline echo/relay; the
//! "x base" column is host ÷ baseline, so for latencies above 1 means slower than the
//! machine's floor and for rates below 1 means fewer per second.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

use super::plot::{self, Axis, Chart, Scale};

/// One measured figure.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The scenario, e.g. "round trip".
    pub scenario: String,
    /// What was measured, e.g. "median".
    pub metric: String,
    /// The host's figure.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The same figure through the baseline, when there is one.
    pub baseline: Option<f64>,
    /// The target, for reading the table.
    pub target: Option<String>,
}

/// A scenario that could not run, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skip {
    /// The scenario.
    pub scenario: String,
    /// The reason, printed as "skipped: …".
    pub reason: String,
}

/// A latency curve for the plot: `(percentile, milliseconds)` points.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// A table of its own, for figures that do not fit the one-figure-per-row layout (the
/// connect stages side by side, samples taken as sessions grow).
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// Heading printed above it.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// The cells, one `Vec` per row.
    pub rows: Vec<Vec<String>>,
    /// At most this many rows are printed (evenly spread, first and last kept); `load.json`
    /// has them all. Zero prints every row.
    #[serde(skip)]
    pub printed_rows: usize,
}

/// An SVG file of charts the run writes besides `latency.svg`.
#[derive(Clone, Debug, Serialize)]
pub struct Plot {
    /// File name inside the output directory.
    pub file: String,
    /// The charts, stacked.
    pub charts: Vec<Chart>,
}

/// Everything a run produced.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Whether this was the `--quick` run.
    pub quick: bool,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// Facts about the setup worth keeping with the figures.
    pub notes: Vec<String>,
    /// The figures.
    pub rows: Vec<Row>,
    /// Scenarios that did not run.
    pub skipped: Vec<Skip>,
    /// Latency curves.
    pub series: Vec<Series>,
    /// Tables of their own.
    pub tables: Vec<Table>,
    /// Further SVG files.
    #[serde(skip)]
    pub plots: Vec<Plot>,
}

impl Report {
    /// Adds a figure.
    pub fn row(
        &mut self,
        scenario: &str,
        metric: &str,
        value: f64,
        unit: &str,
        baseline: Option<f64>,
        target: Option<&str>,
    ) {
        self.rows.push(Row {
            scenario: scenario.to_owned(),
            metric: metric.to_owned(),
            value,
            unit: unit.to_owned(),
            baseline,
            target: target.map(str::to_owned),
        });
    }

    /// Adds a figure with neither a baseline nor a target.
    pub fn figure(&mut self, scenario: &str, metric: &str, value: f64, unit: &str) {
        self.row(scenario, metric, value, unit, None, None);
    }

    /// Records a scenario that did not run.
    pub fn skip(&mut self, scenario: &str, reason: &str) {
        println!("{scenario}: skipped: {reason}");
        self.skipped.push(Skip {
            scenario: scenario.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// Adds a latency curve.
    pub fn series(&mut self, name: &str, points: Vec<(f64, f64)>) {
        if !points.is_empty() {
            self.series.push(Series {
                name: name.to_owned(),
                points,
            });
        }
    }

    /// Adds a table of its own; rows beyond `printed_rows` (0: none) go to `load.json` only.
    pub fn table_of(
        &mut self,
        title: &str,
        columns: &[&str],
        rows: Vec<Vec<String>>,
        printed_rows: usize,
    ) {
        self.tables.push(Table {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows,
            printed_rows,
        });
    }

    /// Adds an SVG file of charts.
    pub fn plot(&mut self, file: &str, charts: Vec<Chart>) {
        self.plots.push(Plot {
            file: file.to_owned(),
            charts,
        });
    }

    /// The table as text.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<22} {:<42} {:>10} {:<7} {:>10} {:>7}  target",
            "scenario", "metric", "value", "unit", "baseline", "x base"
        );
        for r in &self.rows {
            let base = r.baseline.map_or_else(|| "-".to_owned(), fmt_num);
            let ratio = match r.baseline {
                Some(b) if b > 0.0 => format!("{:.2}", r.value / b),
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:<22} {:<42} {:>10} {:<7} {:>10} {:>7}  {}",
                r.scenario,
                r.metric,
                fmt_num(r.value),
                r.unit,
                base,
                ratio,
                r.target.as_deref().unwrap_or("")
            );
        }
        for t in &self.tables {
            out.push('\n');
            t.write_text(&mut out);
        }
        if !self.tables.is_empty() {
            out.push('\n');
        }
        for s in &self.skipped {
            let _ = writeln!(out, "{:<22} skipped: {}", s.scenario, s.reason);
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }

    /// Writes `load.json`, `load.txt`, `latency.svg` and the further plots into `dir`.
    ///
    /// # Errors
    /// File-system failures.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        self.write_as(dir, "load")
    }

    /// Writes `STEM.json` and `STEM.txt`, `latency.svg` when there are latency curves, and
    /// the further plots into `dir`.
    ///
    /// # Errors
    /// File-system failures.
    pub fn write_as(&self, dir: &Path, stem: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{stem}.json")),
            serde_json::to_string_pretty(self)?,
        )?;
        if !self.series.is_empty() {
            std::fs::write(dir.join("latency.svg"), svg(&self.series))?;
        }
        for p in &self.plots {
            std::fs::write(dir.join(&p.file), plot::svg(&p.charts))?;
        }
        std::fs::write(dir.join(format!("{stem}.txt")), self.table())?;
        Ok(())
    }
}

impl Table {
    /// Appends the table as aligned text.
    fn write_text(&self, out: &mut String) {
        let _ = writeln!(out, "{}", self.title);
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        // Columns of figures are right-aligned, columns of words left-aligned.
        let numeric: Vec<bool> = (0..widths.len())
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .all(|c| c == "-" || c.replace(',', "").parse::<f64>().is_ok())
            })
            .collect();
        let line = |cells: &[String], out: &mut String| {
            let mut text = String::new();
            for ((cell, w), right) in cells.iter().zip(&widths).zip(&numeric) {
                let _ = if *right {
                    write!(text, "{cell:>w$}  ")
                } else {
                    write!(text, "{cell:<w$}  ")
                };
            }
            let _ = writeln!(out, "  {}", text.trim_end());
        };
        line(&self.columns, out);
        let picked = pick_rows(self.rows.len(), self.printed_rows);
        for &i in &picked {
            line(&self.rows[i], out);
        }
        if picked.len() < self.rows.len() {
            let _ = writeln!(
                out,
                "  ({} of {} rows shown; all of them are in the JSON file)",
                picked.len(),
                self.rows.len()
            );
        }
    }
}

/// Indices of at most `max` of `n` rows, evenly spread, first and last included (`max` 0:
/// all of them).
fn pick_rows(n: usize, max: usize) -> Vec<usize> {
    if max == 0 || n <= max {
        return (0..n).collect();
    }
    if max == 1 {
        return vec![n - 1];
    }
    let mut picked: Vec<usize> = (0..max).map(|k| k * (n - 1) / (max - 1)).collect();
    picked.dedup();
    picked
}

fn fmt_num(v: f64) -> String {
    match v.abs() {
        a if a < 1e-12 => "0".to_owned(),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

/// The latency-by-percentile plot: percentiles on a "nines" axis, milliseconds on a
/// logarithmic one.
pub fn svg(series: &[Series]) -> String {
    plot::svg(&[Chart {
        title: "MRCI load: latency by percentile (log scale)".to_owned(),
        x: Axis::new("percentile", Scale::Nines),
        y: Axis::new("ms", Scale::Log),
        series: series.to_vec(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_json_and_svg() {
        let mut r = Report::default();
        r.row(
            "round trip",
            "median",
            0.05,
            "ms",
            Some(0.025),
            Some("<= 1.5x base"),
        );
        r.skipped.push(Skip {
            scenario: "modules".into(),
            reason: "modules not yet available".into(),
        });
        r.series("rtt <host>", vec![(0.0, 0.01), (50.0, 0.05), (99.9, 2.0)]);
        let table = r.table();
        assert!(table.contains("2.00"), "{table}");
        assert!(table.contains("skipped: modules not yet available"));
        let svg = svg(&r.series);
        assert!(svg.starts_with("<svg") && svg.contains("rtt &lt;host&gt;"));
        r.table_of(
            "stages",
            &["stage", "host p50"],
            (0..10)
                .map(|i| vec![format!("s{i}"), i.to_string()])
                .collect(),
            3,
        );
        let table = r.table();
        assert!(table.contains("  s0") && table.contains("  s9") && !table.contains("  s1 "));
        assert!(table.contains("(3 of 10 rows shown"));
        assert_eq!(pick_rows(10, 3), [0, 4, 9]);
        assert_eq!(pick_rows(2, 5), [0, 1]);
        assert!(
            serde_json::to_string(&r)
                .unwrap()
                .contains("\"baseline\":0.025")
        );
    }
}
