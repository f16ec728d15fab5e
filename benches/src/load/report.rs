//! The results of a run: a table on stdout, `load.json` and a latency plot `latency.svg`.
//!
//! Every figure may carry the same figure measured against the baseline echo/relay; the
//! "x base" column is host ÷ baseline, so for latencies above 1 means slower than the
//! machine's floor and for rates below 1 means fewer per second.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

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
        for s in &self.skipped {
            let _ = writeln!(out, "{:<22} skipped: {}", s.scenario, s.reason);
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }

    /// Writes `load.json` and `latency.svg` into `dir`.
    ///
    /// # Errors
    /// File-system failures.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("load.json"), serde_json::to_string_pretty(self)?)?;
        std::fs::write(dir.join("latency.svg"), svg(&self.series))?;
        std::fs::write(dir.join("load.txt"), self.table())?;
        Ok(())
    }
}

fn fmt_num(v: f64) -> String {
    match v.abs() {
        a if a < 1e-12 => "0".to_owned(),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

/// A latency-by-percentile plot with a logarithmic time axis, written by hand so that it
/// needs no plotting dependency.
pub fn svg(series: &[Series]) -> String {
    const W: f64 = 900.0;
    const H: f64 = 520.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 250.0;
    const TOP: f64 = 30.0;
    const BOTTOM: f64 = 50.0;
    const COLOURS: [&str; 8] = [
        "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];
    let all = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let lo = all.clone().fold(f64::INFINITY, f64::min).max(1e-4);
    let hi = all.fold(0.0, f64::max).max(lo * 10.0);
    let (lo_exp, hi_exp) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let span = f64::from((hi_exp - lo_exp).max(1));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    // Percentiles are spread on a "nines" scale so that the tail is readable.
    let x_of = |p: f64| {
        let nines = -(1.0 - p.min(99.9) / 100.0).log10();
        LEFT + plot_w * nines / 3.0
    };
    let y_of = |ms: f64| TOP + plot_h * (1.0 - (ms.max(1e-4).log10() - f64::from(lo_exp)) / span);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"14\">MRCI load: latency by percentile \
         (log scale)</text>\n"
    );
    for exp in lo_exp..=hi_exp {
        let y = y_of(10f64.powi(exp));
        let label = if exp >= 0 {
            format!("{} ms", 10f64.powi(exp))
        } else {
            format!(
                "{:.*} ms",
                usize::try_from(-exp).unwrap_or(0),
                10f64.powi(exp)
            )
        };
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for p in [0.0, 50.0, 90.0, 99.0, 99.9] {
        let x = x_of(p);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">p{p}</text>",
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(p, ms)| format!("{:.1},{:.1}", x_of(p), y_of(ms)))
            .collect();
        let ly = TOP + 16.0 * i as f64 + 10.0;
        let lx = W - RIGHT + 15.0;
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <line x1=\"{lx}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" \
             stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            points.join(" "),
            lx + 20.0,
            lx + 25.0,
            ly + 4.0,
            xml_escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
        assert!(
            serde_json::to_string(&r)
                .unwrap()
                .contains("\"baseline\":0.025")
        );
    }
}
