//! The markdown section and SVG plots of a run, appended to `docs/benchmarks.md`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::Value;

use crate::failover::FailoverResult;
use crate::load::{op_name, LoadResult};
use crate::{OpKind, System};

/// Appends `result` to the results file at `path` as one JSON line (the file the
/// report reads).
pub fn append_result(path: &Path, result: &impl serde::Serialize) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{}", serde_json::to_string(result)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

const SYSTEMS: [System; 2] = [System::Etcd, System::Flashlog];

/// Everything read from the result files.
#[derive(Default)]
struct Run {
    loads: Vec<LoadResult>,
    failovers: Vec<FailoverResult>,
}

impl Run {
    fn read(paths: &[PathBuf]) -> Result<Run> {
        let mut run = Run::default();
        for path in paths {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
            };
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let at = || format!("{}:{}", path.display(), n + 1);
                let json: Value = serde_json::from_str(line).with_context(at)?;
                match json.get("kind").and_then(Value::as_str) {
                    Some("load") => run
                        .loads
                        .push(serde_json::from_value(json).with_context(at)?),
                    Some("failover") => run
                        .failovers
                        .push(serde_json::from_value(json).with_context(at)?),
                    _ => anyhow::bail!("{}: neither a load nor a failover result", at()),
                }
            }
        }
        Ok(run)
    }

    /// The latest result of `system`, `op`, `clients`.
    fn load(&self, system: System, op: OpKind, clients: usize) -> Option<&LoadResult> {
        self.loads
            .iter()
            .rev()
            .find(|r| r.system == system && r.op == op && r.clients == clients)
    }

    fn clients(&self, op: OpKind) -> Vec<usize> {
        let set: BTreeSet<usize> = self
            .loads
            .iter()
            .filter(|r| r.op == op)
            .map(|r| r.clients)
            .collect();
        set.into_iter().collect()
    }

    fn failover(&self, system: System) -> Option<&FailoverResult> {
        self.failovers.iter().rev().find(|r| r.system == system)
    }
}

/// Appends the section for `results` to `markdown` and writes its plots to `plots`.
pub fn write(results: &[PathBuf], markdown: &Path, plots: &Path, note: &str) -> Result<()> {
    let run = Run::read(results)?;
    std::fs::create_dir_all(plots).with_context(|| format!("creating {}", plots.display()))?;
    let mut images = Vec::new();
    for (op, title) in [
        (OpKind::Write, "Durable writes"),
        (OpKind::Read, "Linearizable reads"),
    ] {
        if run.clients(op).is_empty() {
            continue;
        }
        let name = format!("cluster-{}s.svg", op_name(op));
        plot(&plots.join(&name), &run, op, title)
            .map_err(|e| anyhow::anyhow!("plotting {name}: {e}"))?;
        images.push((title, name));
    }
    let link_dir = relative(markdown.parent().unwrap_or(Path::new(".")), plots);
    let section = section(&run, note, &images, &link_dir);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(markdown)
        .with_context(|| format!("opening {}", markdown.display()))?;
    file.write_all(section.as_bytes())
        .with_context(|| format!("writing {}", markdown.display()))?;
    println!("appended the cluster comparison to {}", markdown.display());
    Ok(())
}

/// `to` as seen from `from` (both relative to the same directory, or absolute).
fn relative(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let (from, to) = (abs(from), abs(to));
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

fn num(x: f64) -> String {
    let rounded = x.round() as i64;
    let digits = rounded.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.0}")
    }
}

fn section(run: &Run, note: &str, images: &[(&str, String)], link_dir: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## Three nodes on one machine: flashlog against etcd (issue 18)\n"
    );
    if !note.is_empty() {
        let _ = writeln!(s, "{note}\n");
    }
    let _ = writeln!(
        s,
        "Each system ran as 3 nodes on 127.0.0.1, their data directories side by side in one \
         temporary directory on the same disk, one system after the other in the same run, \
         driven by the same load generator (`bench/cluster`, `./run.sh`) on the same 2 cores: \
         closed-loop clients, each sending its next request when the last returned, 256-byte \
         values, a warm-up and then the measured seconds per row. etcd 3.4 with its defaults \
         (fsync before acknowledging), through gRPC (`etcd-client`, endpoints of all three \
         members, followers forward to the leader); reads are linearizable range requests \
         (`serializable = false`, etcd's default). flashlog through its HTTP API (`reqwest`, \
         keep-alive pool, requests sent to the leader), writes durable (`SyncPolicy::Always`), \
         reads linearizable (`GET /kv/{{key}}`, the default). Latencies are per request, \
         milliseconds.\n"
    );
    for (op, title, unit) in [
        (OpKind::Write, "Durable writes", "writes/s"),
        (OpKind::Read, "Linearizable reads", "reads/s"),
    ] {
        let clients = run.clients(op);
        if clients.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### {title}\n");
        let _ = writeln!(
            s,
            "| clients | etcd {unit} | etcd p50 / p99 | flashlog {unit} | flashlog p50 / p99 | flashlog ÷ etcd ({unit}) | flashlog p99 ÷ etcd p99 |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for n in clients {
            let cell = |system| match run.load(system, op, n) {
                Some(r) => (
                    format!(
                        "{}{}",
                        num(r.ops_per_s),
                        if r.errors > 0 {
                            format!(" ({} errors)", r.errors)
                        } else {
                            String::new()
                        }
                    ),
                    format!("{} / {}", ms(r.p50_ms), ms(r.p99_ms)),
                ),
                None => ("—".into(), "—".into()),
            };
            let (e_ops, e_lat) = cell(System::Etcd);
            let (f_ops, f_lat) = cell(System::Flashlog);
            let (ratio, p99_ratio) = match (
                run.load(System::Etcd, op, n),
                run.load(System::Flashlog, op, n),
            ) {
                (Some(e), Some(f)) => (
                    format!("{:.2}×", f.ops_per_s / e.ops_per_s),
                    format!("{:.2}", f.p99_ms / e.p99_ms),
                ),
                _ => ("—".into(), "—".into()),
            };
            let _ = writeln!(
                s,
                "| {n} | {e_ops} | {e_lat} | {f_ops} | {f_lat} | {ratio} | {p99_ratio} |"
            );
        }
        if let Some((_, name)) = images.iter().find(|(t, _)| *t == title) {
            let _ = writeln!(
                s,
                "\n![{title}: operations/s against clients]({link_dir}/{name})"
            );
        }
        let _ = writeln!(s);
    }
    if !run.failovers.is_empty() {
        let _ = writeln!(s, "### Leader failover\n");
        let _ = writeln!(
            s,
            "SIGKILL of the leader, then writes through the two survivors every 5 ms (each \
             attempt bounded at 500 ms) until one is acknowledged: the time from the kill to \
             that acknowledgement. The killed node is restarted and the cluster settles \
             between kills.\n"
        );
        let _ = writeln!(s, "| system | median ms | each kill, ms |");
        let _ = writeln!(s, "|---|---|---|");
        for system in SYSTEMS {
            match run.failover(system) {
                Some(f) => {
                    let each: Vec<String> = f.samples_ms.iter().map(|x| num(*x)).collect();
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} |",
                        system.name(),
                        num(f.median_ms),
                        each.join(", ")
                    );
                }
                None => {
                    let _ = writeln!(s, "| {} | — | not measured |", system.name());
                }
            }
        }
        let _ = writeln!(s);
    }
    s
}

fn color(system: System) -> RGBColor {
    match system {
        System::Flashlog => RGBColor(214, 39, 40),
        System::Etcd => RGBColor(31, 119, 180),
    }
}

fn plot(path: &Path, run: &Run, op: OpKind, title: &str) -> Result<(), Box<dyn std::error::Error>> {
    let clients = run.clients(op);
    let max_x = clients.iter().copied().max().unwrap_or(2).max(2) as f64;
    let max_y = run
        .loads
        .iter()
        .filter(|r| r.op == op)
        .map(|r| r.ops_per_s)
        .fold(1.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}, 3 nodes on one machine, 256-byte values"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..max_x * 1.2).log_scale(), 0f64..max_y)?;
    chart
        .configure_mesh()
        .max_light_lines(2)
        .x_desc("concurrent clients")
        .y_desc(format!("{}s/s", op_name(op)))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for system in SYSTEMS {
        let points: Vec<(f64, f64)> = clients
            .iter()
            .filter_map(|&n| run.load(system, op, n).map(|r| (n as f64, r.ops_per_s)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let c = color(system);
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
            .label(system.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_and_paths() {
        assert_eq!(num(2950.4), "2,950");
        assert_eq!(num(390.0), "390");
        assert_eq!(num(1_234_567.0), "1,234,567");
        assert_eq!(
            relative(Path::new("/r/docs"), Path::new("/r/results/cluster")),
            "../results/cluster"
        );
    }

    #[test]
    fn a_section_with_one_system_marks_the_other_missing() {
        let line = r#"{"kind":"load","system":"etcd","op":"write","clients":16,"conns":1,"value_size":256,"seconds":10.0,"ops":10000,"errors":0,"ops_per_s":1000.0,"p50_ms":15.0,"p99_ms":66.0,"max_ms":90.0,"mean_ms":16.0}"#;
        let fail = r#"{"kind":"failover","system":"etcd","samples_ms":[1200.0,1500.0,1300.0],"median_ms":1300.0}"#;
        let dir = std::env::temp_dir().join(format!("cluster-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let results = dir.join("r.jsonl");
        std::fs::write(&results, format!("{line}\n{fail}\n")).unwrap();
        let md = dir.join("b.md");
        write(&[results], &md, &dir.join("plots"), "note").unwrap();
        let text = std::fs::read_to_string(&md).unwrap();
        assert!(
            text.contains("| 16 | 1,000 | 15 / 66 | — | — | — | — |"),
            "{text}"
        );
        assert!(
            text.contains("| etcd | 1,300 | 1,200, 1,500, 1,300 |"),
            "{text}"
        );
        assert!(text.contains("| flashlog | — | not measured |"), "{text}");
        assert!(dir.join("plots/cluster-writes.svg").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
