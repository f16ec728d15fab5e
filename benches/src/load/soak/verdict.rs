//! The soak's judgement and its report: figures, the outcome counts by kind, the samples,
//! the plot (`soak.svg`: memory and descriptors against time) and one PASS/FAIL line per
//! criterion (see the module above for the criteria).
//!
//! Invariant: the judgement reads only what [`Run`] measured; a criterion whose reading is
//! missing (a host that died) is a FAIL, never a PASS.

use std::collections::BTreeMap;

use super::{Run, Sample, SoakPlan, Verdict, tally::Class};
use crate::load::{
    plot::{Axis, Chart, Scale},
    report::{Report, Series},
};

const SCENARIO: &str = "soak";
const MIB: f64 = 1024.0 * 1024.0;
/// How much the host's memory may grow from the end of the warm-up to the end of the load.
const RSS_GROWTH: f64 = 0.10;

fn pass(ok: bool) -> String {
    if ok { "PASS" } else { "FAIL" }.to_owned()
}

fn kinds(k: &BTreeMap<&'static str, usize>) -> String {
    k.iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Delivery faults summed over the receivers: lost, duplicated, out of order, corrupt.
fn faults(run: &Run) -> [u64; 4] {
    let sent = &run.seen.sent;
    run.seen.receivers.iter().fold([0; 4], |acc, r| {
        [
            acc[0] + r.lost(sent),
            acc[1] + r.duplicates,
            acc[2] + r.out_of_order,
            acc[3] + r.corrupt,
        ]
    })
}

/// Adds the soak's figures, tables and plot to `report` and returns the verdict.
pub fn record(report: &mut Report, plan: &SoakPlan, run: &Run) -> Verdict {
    let [lost, dup, ooo, corrupt] = faults(run);
    let delivery_faults = lost + dup + ooo + corrupt;
    let delivered: u64 = run.seen.receivers.iter().map(|r| r.delivered).sum();
    let sent: u64 = run.seen.sent.iter().sum();
    let unexpected: u64 = run
        .seen
        .tally
        .iter()
        .filter(|t| t.0 == Class::Unexpected)
        .map(|t| t.2)
        .sum();
    let mut criteria = vec![
        memory(report, plan, run),
        descriptors(run),
        vec![
            "casts: none lost, duplicated, out of order or corrupt".into(),
            format!(
                "{sent} sent, {delivered} delivered to {} receivers; lost {lost}, duplicated \
                 {dup}, out of order {ooo}, corrupt {corrupt}",
                run.seen.receivers.len()
            ),
            pass(delivery_faults == 0 && sent > 0),
        ],
        vec![
            "no unexpected errors".into(),
            format!("{unexpected} unexpected"),
            pass(unexpected == 0),
        ],
    ];
    if let Some(why) = &run.host_died {
        criteria.push(vec![
            "host alive to the end".into(),
            why.clone(),
            pass(false),
        ]);
    }
    figures(report, plan, run, [sent, delivered, delivery_faults]);
    tables(report, run);
    report.table_of(
        "soak verdict",
        &["criterion", "measured", "result"],
        criteria,
        0,
    );
    plot(report, &run.samples);
    Verdict {
        delivery_faults,
        host_died: run.host_died.clone(),
    }
}

/// The memory criterion (and its two figures): growth from the first reading after the
/// warm-up to the last reading under load.
fn memory(report: &mut Report, plan: &SoakPlan, run: &Run) -> Vec<String> {
    const NAME: &str = "host RSS at the end within 10 % of after the warm-up";
    let warm = plan.warm_up.as_secs_f64();
    let reference = run.samples.iter().find(|s| s.secs >= warm);
    let (Some(r), Some(e)) = (reference, run.samples.last()) else {
        return vec![
            NAME.into(),
            "no readings after the warm-up".into(),
            pass(false),
        ];
    };
    let growth = e.host_rss as f64 / r.host_rss.max(1) as f64 - 1.0;
    report.figure(
        SCENARIO,
        "host RSS after the warm-up",
        mib(r.host_rss),
        "MiB",
    );
    let target = Some("within 10 % of the warm-up");
    let end = mib(e.host_rss);
    report.row(
        SCENARIO,
        "host RSS at the end of the load",
        end,
        "MiB",
        None,
        target,
    );
    vec![
        NAME.into(),
        format!(
            "{:.1} MiB at {:.0} s -> {:.1} MiB at {:.0} s ({:+.1} %)",
            mib(r.host_rss),
            r.secs,
            end,
            e.secs,
            growth * 100.0
        ),
        pass(growth <= RSS_GROWTH && e.secs > r.secs),
    ]
}

/// The descriptor criterion: back to the start, and no module process left.
fn descriptors(run: &Run) -> Vec<String> {
    const NAME: &str = "host fds back to the start once the clients left";
    let Some(a) = &run.after else {
        return vec![NAME.into(), "the host was gone".into(), pass(false)];
    };
    vec![
        NAME.into(),
        format!(
            "{} before ({}), {} after {:.1} s ({}); {} module processes left",
            run.before_fds,
            kinds(&run.before_kinds),
            a.fds,
            a.within.as_secs_f64(),
            kinds(&a.kinds),
            a.children
        ),
        pass(a.fds <= run.before_fds && a.children == 0),
    ]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// The figures; `casts` is sent, delivered and faulty.
fn figures(report: &mut Report, plan: &SoakPlan, run: &Run, casts: [u64; 3]) {
    let mut figure = |metric: &str, value: f64, unit: &str| {
        report.figure(SCENARIO, metric, value, unit);
    };
    figure("duration", plan.duration.as_secs_f64(), "s");
    if let Some(a) = &run.after {
        figure("host RSS after the clients left", mib(a.rss), "MiB");
        figure("host fds before the load", run.before_fds as f64, "fds");
        figure("host fds after the clients left", a.fds as f64, "fds");
    }
    if let Some(s) = run.samples.iter().max_by_key(|s| s.host_fds) {
        figure("host fds, most during the load", s.host_fds as f64, "fds");
    }
    if let Some(s) = run.samples.last() {
        figure("generator RSS at the end", mib(s.own_rss), "MiB");
    }
    figure("casts sent", casts[0] as f64, "casts");
    figure("cast deliveries checked", casts[1] as f64, "casts");
    figure("lost/dup/out of order/corrupt", casts[2] as f64, "count");
    let (secs, warm) = (plan.duration.as_secs_f64(), plan.warm_up.as_secs_f64());
    for (label, from, to) in [
        ("after the warm-up", warm, secs),
        ("last tenth", secs * 0.9, secs),
    ] {
        let mut w = run.seen.canary.window(from, to);
        if let (Some(p50), Some(p99)) = (w.median_ms(), w.p99_ms()) {
            figure(&format!("canary my_info p50, {label}"), p50, "ms");
            figure(&format!("canary my_info p99, {label}"), p99, "ms");
        }
    }
}

fn tables(report: &mut Report, run: &Run) {
    let outcomes = run
        .seen
        .tally
        .iter()
        .map(|(class, kind, n)| vec![kind.clone(), class.label().to_owned(), n.to_string()])
        .collect();
    report.table_of(
        "soak outcomes by kind",
        &["outcome", "class", "count"],
        outcomes,
        0,
    );
    let samples = run
        .samples
        .iter()
        .map(|s| {
            vec![
                format!("{:.0}", s.secs),
                format!("{:.1}", mib(s.host_rss)),
                s.host_fds.to_string(),
                s.children.to_string(),
                format!("{:.1}", mib(s.own_rss)),
            ]
        })
        .collect();
    report.table_of(
        "soak samples",
        &[
            "secs",
            "host RSS MiB",
            "host fds",
            "module procs",
            "generator RSS MiB",
        ],
        samples,
        13,
    );
}

fn plot(report: &mut Report, samples: &[Sample]) {
    let line = |name: &str, f: fn(&Sample) -> f64| Series {
        name: name.to_owned(),
        points: samples.iter().map(|s| (s.secs, f(s))).collect(),
    };
    report.plot(
        "soak.svg",
        vec![
            Chart {
                title: "Soak: resident memory".into(),
                x: Axis::new("seconds", Scale::Linear),
                y: Axis::new("RSS, MiB", Scale::Linear),
                series: vec![
                    line("host", |s| s.host_rss as f64 / MIB),
                    line("load generator", |s| s.own_rss as f64 / MIB),
                ],
            },
            Chart {
                title: "Soak: host descriptors and module processes".into(),
                x: Axis::new("seconds", Scale::Linear),
                y: Axis::new("count", Scale::Linear),
                series: vec![
                    line("host fds", |s| s.host_fds as f64),
                    line("module processes", |s| s.children as f64),
                ],
            },
        ],
    );
}
