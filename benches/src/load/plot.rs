//! Line charts as SVG, written by hand so that the generator needs no plotting dependency:
//! the latency-by-percentile plot (`latency.svg`), host memory against sessions and memory
//! and descriptors against time. A file holds one or more charts stacked vertically.
//!
//! Invariant: the output depends only on the charts given (no clock, no randomness), and
//! every text from a caller is XML-escaped.

use std::fmt::Write as _;

use serde::Serialize;

use super::report::Series;

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scale {
    /// Evenly spaced, starting at zero when every value is positive.
    Linear,
    /// Decades, for values that span orders of magnitude (latencies).
    Log,
    /// Percentiles 0–99.9 spread by their "nines", so the tail is readable.
    Nines,
}

/// One axis: what it shows and how.
#[derive(Clone, Debug, Serialize)]
pub struct Axis {
    /// Label, with the unit.
    pub label: String,
    /// The mapping.
    pub scale: Scale,
}

impl Axis {
    /// An axis labelled `label` with `scale`.
    pub fn new(label: &str, scale: Scale) -> Self {
        Self {
            label: label.to_owned(),
            scale,
        }
    }
}

/// One chart: a title, two axes and the lines drawn on them.
#[derive(Clone, Debug, Serialize)]
pub struct Chart {
    /// Title above the plot area.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// The lines, each `(x, y)` points in order.
    pub series: Vec<Series>,
}

const W: f64 = 900.0;
const H: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 56.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The charts, stacked, as one SVG document.
pub fn svg(charts: &[Chart]) -> String {
    let height = H * charts.len().max(1) as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{height}\" fill=\"white\"/>\n"
    );
    for (i, chart) in charts.iter().enumerate() {
        draw(&mut out, chart, H * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

/// A mapping from data values to pixels along one axis, with its tick marks.
struct Mapping {
    scale: Scale,
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
}

impl Mapping {
    fn new(scale: Scale, values: impl Iterator<Item = f64> + Clone) -> Self {
        match scale {
            Scale::Nines => Self {
                scale,
                lo: 0.0,
                hi: 3.0,
                ticks: [0.0, 50.0, 90.0, 99.0, 99.9]
                    .iter()
                    .map(|&p| (p, format!("p{p}")))
                    .collect(),
            },
            Scale::Log => {
                let lo = values.clone().fold(f64::INFINITY, f64::min).max(1e-4);
                let hi = values.fold(0.0, f64::max).max(lo * 10.0);
                let (lo_exp, hi_exp) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
                let ticks = (lo_exp..=hi_exp)
                    .map(|e| {
                        let v = 10f64.powi(e);
                        let decimals = usize::try_from(-e).unwrap_or(0);
                        (v, format!("{v:.decimals$}"))
                    })
                    .collect();
                Self {
                    scale,
                    lo: f64::from(lo_exp),
                    hi: f64::from(hi_exp.max(lo_exp + 1)),
                    ticks,
                }
            }
            Scale::Linear => {
                let min = values.clone().fold(f64::INFINITY, f64::min);
                let max = values.fold(f64::NEG_INFINITY, f64::max);
                let (min, max) = if min.is_finite() {
                    (min, max)
                } else {
                    (0.0, 1.0)
                };
                let lo = if min >= 0.0 { 0.0 } else { min };
                let step = nice_step((max - lo).max(1e-9) / 6.0);
                let hi = (max / step).ceil().max(1.0) * step;
                let lo = (lo / step).floor() * step;
                let n = ((hi - lo) / step).round() as usize;
                let ticks = (0..=n)
                    .map(|k| {
                        let v = lo + step * k as f64;
                        (v, tick_label(v, step))
                    })
                    .collect();
                Self {
                    scale,
                    lo,
                    hi,
                    ticks,
                }
            }
        }
    }

    /// Where `v` falls, from 0 (start of the axis) to 1 (end).
    fn fraction(&self, v: f64) -> f64 {
        let t = match self.scale {
            Scale::Linear => v,
            Scale::Log => v.max(1e-4).log10(),
            Scale::Nines => -(1.0 - v.min(99.9) / 100.0).log10(),
        };
        (t - self.lo) / (self.hi - self.lo).max(1e-12)
    }
}

/// The step among 1, 2 and 5 times a power of ten nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let m = raw / base;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * base
}

/// A tick label: thousands as `k`, millions as `M`, with the decimals the step needs.
fn tick_label(v: f64, step: f64) -> String {
    if v.abs() < step * 1e-9 {
        return "0".to_owned();
    }
    let (value, suffix, step) = if step >= 1e6 {
        (v / 1e6, "M", step / 1e6)
    } else if step >= 1e3 {
        (v / 1e3, "k", step / 1e3)
    } else {
        (v, "", step)
    };
    let decimals = if step >= 1.0 {
        0
    } else {
        usize::try_from(-(step.log10().floor() as i32)).unwrap_or(0)
    };
    format!("{value:.decimals$}{suffix}")
}

fn draw(out: &mut String, chart: &Chart, y0: f64) {
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let xm = Mapping::new(chart.x.scale, points().map(|p| p.0));
    let ym = Mapping::new(chart.y.scale, points().map(|p| p.1));
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x_of = |v: f64| LEFT + plot_w * xm.fraction(v);
    let y_of = |v: f64| y0 + TOP + plot_h * (1.0 - ym.fraction(v));
    let bottom = y0 + TOP + plot_h;
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"14\">{}</text>",
        y0 + 20.0,
        xml_escape(&chart.title)
    );
    for (v, label) in &ym.ticks {
        let y = y_of(*v);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            xml_escape(label)
        );
    }
    for (v, label) in &xm.ticks {
        let x = x_of(*v);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y0 + TOP,
            bottom + 18.0,
            xml_escape(label)
        );
    }
    let mid_y = y0 + TOP + plot_h / 2.0;
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text x=\"16\" y=\"{mid_y:.1}\" text-anchor=\"middle\" \
         transform=\"rotate(-90 16 {mid_y:.1})\">{}</text>",
        LEFT + plot_w / 2.0,
        bottom + 40.0,
        xml_escape(&chart.x.label),
        xml_escape(&chart.y.label)
    );
    for (i, s) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let line: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", x_of(x), y_of(y)))
            .collect();
        let ly = y0 + TOP + 16.0 * i as f64 + 10.0;
        let lx = W - RIGHT + 15.0;
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <line x1=\"{lx}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" \
             stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            line.join(" "),
            lx + 20.0,
            lx + 25.0,
            ly + 4.0,
            xml_escape(&s.name)
        );
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_owned(),
            points,
        }
    }

    #[test]
    fn linear_axes_get_round_ticks_from_zero() {
        let m = Mapping::new(Scale::Linear, [0.0, 100_000.0].into_iter());
        let labels: Vec<&str> = m.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "20k", "40k", "60k", "80k", "100k"]);
        assert!((m.fraction(50_000.0) - 0.5).abs() < 1e-9);
        let m = Mapping::new(Scale::Linear, [25.0, 31.5].into_iter());
        assert_eq!(m.ticks.first().map(|t| t.1.as_str()), Some("0"));
        assert!(m.hi >= 31.5);
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(tick_label(0.5, 0.1), "0.5");
    }

    #[test]
    fn log_and_nines_axes() {
        let m = Mapping::new(Scale::Log, [0.05, 2.0].into_iter());
        let labels: Vec<&str> = m.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0.01", "0.1", "1", "10"]);
        let m = Mapping::new(Scale::Nines, std::iter::empty());
        assert!((m.fraction(99.9) - 1.0).abs() < 1e-9 && m.fraction(0.0).abs() < 1e-9);
    }

    #[test]
    fn charts_stack_and_escape() {
        let chart = |title: &str| Chart {
            title: title.to_owned(),
            x: Axis::new("sessions", Scale::Linear),
            y: Axis::new("MiB", Scale::Linear),
            series: vec![series("host <rss>", vec![(0.0, 20.0), (1000.0, 80.0)])],
        };
        let out = svg(&[chart("a & b"), chart("c")]);
        assert!(out.starts_with("<svg") && out.contains("height=\"1040\""));
        assert!(out.contains("a &amp; b") && out.contains("host &lt;rss&gt;"));
        assert_eq!(out.matches("<polyline").count(), 2);
        assert!(svg(&[]).ends_with("</svg>\n"));
    }
}
