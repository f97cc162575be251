//! SVG plots (plotters' SVG backend: text is written as SVG `<text>`, so no font
//! files or fontconfig are needed): throughput against threads per entry size, and
//! latency percentiles of the 256-byte durable rows.

use std::path::Path;

use plotters::prelude::*;

use crate::results::{Results, Row};
use crate::system::{BenchResult, System};

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn color(system: System) -> RGBColor {
    match system {
        System::Flashlog => RGBColor(214, 39, 40),
        System::Okaywal => RGBColor(31, 119, 180),
        System::RaftEngine => RGBColor(44, 160, 44),
        System::PlainLoop => RGBColor(127, 127, 127),
        System::PlainPrealloc => RGBColor(23, 190, 207),
        System::IdealGroupCommit => RGBColor(0, 0, 0),
        System::SyncerGroupCommit => RGBColor(148, 103, 189),
    }
}

fn durable_rows(results: &Results, system: System, entry_bytes: usize) -> Vec<&Row> {
    let mut rows: Vec<&Row> = results
        .rows
        .iter()
        .filter(|r| {
            r.section == "durable" && r.system == system && r.workload.entry_bytes == entry_bytes
        })
        .collect();
    rows.sort_by_key(|r| r.workload.threads);
    rows
}

fn throughput(path: &Path, results: &Results, entry_bytes: usize) -> PlotResult {
    let all: Vec<&Row> = System::ALL
        .iter()
        .flat_map(|&s| durable_rows(results, s, entry_bytes))
        .collect();
    let max_threads = all.iter().map(|r| r.workload.threads).max().unwrap_or(1) as f64;
    let max_y = all.iter().map(|r| r.entries_per_sec()).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Durable appends of {entry_bytes}-byte entries"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..max_threads.max(2.0)).log_scale(), 0f64..max_y)?;
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_desc("threads")
        .y_desc("entries/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for system in System::ALL {
        let points: Vec<(f64, f64)> = durable_rows(results, system, entry_bytes)
            .iter()
            .map(|r| (r.workload.threads as f64, r.entries_per_sec()))
            .collect();
        if points.is_empty() {
            continue;
        }
        let c = color(system);
        let width = if system == System::Flashlog { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(width)))?
            .label(system.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn latency(path: &Path, results: &Results, entry_bytes: usize, threads: usize) -> PlotResult {
    let rows: Vec<&Row> = System::ALL
        .iter()
        .filter_map(|&s| results.find("durable", s, entry_bytes, threads))
        .collect();
    let points = rows.first().map(|r| r.quantiles.len()).unwrap_or(0);
    let labels: Vec<f64> = rows
        .first()
        .map(|r| r.quantiles.iter().map(|q| q.0).collect())
        .unwrap_or_default();
    let ys = rows.iter().flat_map(|r| r.quantiles.iter().map(|q| q.1));
    let min_y = ys.clone().fold(f64::INFINITY, f64::min).max(1.0) * 0.8;
    let max_y = ys.fold(1.0, f64::max) * 1.25;
    let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Latency per durable append, {entry_bytes} B, {threads} thread(s)"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0f64..(points.max(2) - 1) as f64,
            (min_y..max_y.max(min_y * 2.0)).log_scale(),
        )?;
    let label = move |x: &f64| {
        let i = x.round() as usize;
        if (x - i as f64).abs() > 0.01 {
            return String::new();
        }
        labels.get(i).map(|q| format!("p{q}")).unwrap_or_default()
    };
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_desc("percentile")
        .y_desc("µs")
        .x_labels(points.max(2))
        .x_label_formatter(&label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for row in rows {
        let c = color(row.system);
        let width = if row.system == System::Flashlog { 3 } else { 1 };
        let series: Vec<(f64, f64)> = row
            .quantiles
            .iter()
            .enumerate()
            .map(|(i, q)| (i as f64, q.1.max(min_y)))
            .collect();
        chart
            .draw_series(LineSeries::new(series, c.stroke_width(width)))?
            .label(row.system.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn latency_configs(results: &Results) -> Vec<(usize, usize)> {
    let mut threads: Vec<usize> = results
        .rows
        .iter()
        .filter(|r| r.section == "durable" && r.workload.entry_bytes == 256)
        .map(|r| r.workload.threads)
        .collect();
    threads.sort_unstable();
    threads.dedup();
    match (threads.first(), threads.last()) {
        (Some(&lo), Some(&hi)) if lo != hi => vec![(256, lo), (256, hi)],
        (Some(&lo), _) => vec![(256, lo)],
        _ => Vec::new(),
    }
}

/// File names of the latency plots `write_all` makes for `results`.
pub fn latency_plot_names(results: &Results) -> Vec<String> {
    latency_configs(results)
        .into_iter()
        .map(|(b, t)| format!("latency-{b}-{t}t.svg"))
        .collect()
}

/// Writes every plot into `out`.
pub fn write_all(out: &Path, results: &Results) -> BenchResult<()> {
    let sizes = results.durable_sizes();
    for size in sizes {
        throughput(&out.join(format!("throughput-{size}.svg")), results, size)
            .map_err(|e| format!("plot throughput-{size}: {e}"))?;
    }
    for (bytes, threads) in latency_configs(results) {
        latency(
            &out.join(format!("latency-{bytes}-{threads}t.svg")),
            results,
            bytes,
            threads,
        )
        .map_err(|e| format!("plot latency: {e}"))?;
    }
    Ok(())
}
