//! Charts drawn with plotters, each written as PNG and SVG: tok/s against generated tokens
//! (one line per window), RSS against time, and TTFT/ITL histograms.
//!
//! Text is drawn with the bundled DejaVu Sans (`assets/fonts`, Bitstream Vera license), so
//! no system font library is needed.

use super::long::{mb, window_label};
use super::{BenchError, ModelResults};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 600;
const FONT: &str = "sans-serif";
const BINS: usize = 20;

/// A chart file written beside the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// File name inside the output folder.
    pub file: String,
    pub title: String,
    pub width: u32,
    pub height: u32,
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FONT, style, bytes).is_err() {
                tracing::warn!("the bundled font did not load; charts have no text");
            }
        }
    });
}

type Series = (String, Vec<(f64, f64)>);

/// Something drawable on any plotters backend.
trait Draw {
    fn title(&self) -> &str;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

struct Lines {
    title: String,
    x_desc: String,
    y_desc: String,
    series: Vec<Series>,
}

fn span(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let lo = if from_zero || !lo.is_finite() {
        0.0
    } else {
        lo
    };
    let hi = if hi.is_finite() && hi > lo {
        hi
    } else {
        lo + 1.0
    };
    (lo, hi + (hi - lo) * 0.05)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The series' names in a box at the top right.
fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut Chart2d<'a, DB>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

impl Draw for Lines {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let pts = || self.series.iter().flat_map(|(_, p)| p.iter());
        let (x0, x1) = span(pts().map(|p| p.0), true);
        let (y0, y1) = span(pts().map(|p| p.1), true);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .label_style((FONT, 14))
            .draw()
            .map_err(err)?;
        for (i, (name, points)) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        legend(&mut chart)
    }
}

/// Histograms side by side, one panel per metric, one colour per model.
struct Histograms {
    title: String,
    panels: Vec<(String, Vec<Series>)>,
}

/// `(bin start, bin end, count)` for `BINS` equal bins over `lo..hi`.
fn bins(values: &[f64], lo: f64, hi: f64) -> Vec<(f64, f64, f64)> {
    let w = (hi - lo) / BINS as f64;
    let mut counts = [0usize; BINS];
    for &v in values {
        let i = (((v - lo) / w) as usize).min(BINS - 1);
        counts[i] += 1;
    }
    (0..BINS)
        .map(|i| (lo + w * i as f64, lo + w * (i + 1) as f64, counts[i] as f64))
        .collect()
}

impl Draw for Histograms {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&self.title, (FONT, 24)).map_err(err)?;
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        for (area, (metric, per_model)) in areas.iter().zip(&self.panels) {
            let all = || per_model.iter().flat_map(|(_, v)| v.iter().map(|p| p.0));
            let (lo, hi) = span(all(), false);
            let binned: Vec<_> = per_model
                .iter()
                .map(|(name, v)| {
                    let xs: Vec<f64> = v.iter().map(|p| p.0).collect();
                    (name, bins(&xs, lo, hi))
                })
                .collect();
            let top = binned
                .iter()
                .flat_map(|(_, b)| b.iter().map(|x| x.2))
                .fold(1.0, f64::max);
            let mut chart = ChartBuilder::on(area)
                .margin(16)
                .x_label_area_size(48)
                .y_label_area_size(56)
                .build_cartesian_2d(lo..hi, 0.0..top * 1.1)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(format!("{metric} (ms)"))
                .y_desc("count")
                .label_style((FONT, 14))
                .draw()
                .map_err(err)?;
            for (i, (name, b)) in binned.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(b.iter().map(|&(x0, x1, n)| {
                        Rectangle::new([(x0, 0.0), (x1, n)], color.mix(0.6).filled())
                    }))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                    });
            }
            legend(&mut chart)?;
        }
        Ok(())
    }
}

/// Write `stem.png` and `stem.svg`.
fn save(dir: &Path, stem: &str, chart: &impl Draw) -> Result<Vec<Chart>, BenchError> {
    register_font();
    let size = (WIDTH, HEIGHT);
    let fail = |file: &str, why: String| BenchError::Plot {
        path: dir.join(file).display().to_string(),
        why,
    };
    let png = format!("{stem}.png");
    {
        let path = dir.join(&png);
        let root = BitMapBackend::new(&path, size).into_drawing_area();
        chart.draw(&root).map_err(|e| fail(&png, e))?;
        root.present().map_err(|e| fail(&png, e.to_string()))?;
    }
    let svg = format!("{stem}.svg");
    {
        let path = dir.join(&svg);
        let root = SVGBackend::new(&path, size).into_drawing_area();
        chart.draw(&root).map_err(|e| fail(&svg, e))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    Ok([png, svg]
        .into_iter()
        .map(|file| Chart {
            file,
            title: chart.title().to_string(),
            width: WIDTH,
            height: HEIGHT,
        })
        .collect())
}

/// Draw every chart the results have data for; returns the files written.
pub fn draw_all(dir: &Path, models: &[ModelResults]) -> Result<Vec<Chart>, BenchError> {
    let many = models.len() > 1;
    let name = |m: &ModelResults, w: Option<usize>| {
        let w = format!("max-kv-size {}", window_label(w));
        if many {
            format!("{} {w}", m.model.name)
        } else {
            w
        }
    };
    let mut out = Vec::new();
    let runs = || {
        models
            .iter()
            .flat_map(|m| m.long.iter().map(move |l| (m, l)))
    };
    if runs().next().is_some() {
        let tok_s = Lines {
            title: "Decode tok/s per block vs generated tokens".into(),
            x_desc: "generated tokens".into(),
            y_desc: "tok/s".into(),
            series: runs()
                .map(|(m, l)| {
                    let pts = l.blocks.iter().map(|b| (b.end as f64, b.tok_s)).collect();
                    (name(m, l.window), pts)
                })
                .collect(),
        };
        out.extend(save(dir, "tok_s", &tok_s)?);
        let rss = Lines {
            title: "Process RSS vs time (long runs)".into(),
            x_desc: "seconds since the run started".into(),
            y_desc: "RSS (MB)".into(),
            series: runs()
                .map(|(m, l)| {
                    let start = (0.0, mb(l.rss_start_bytes));
                    let pts = std::iter::once(start)
                        .chain(l.blocks.iter().map(|b| (b.t_ms / 1000.0, mb(b.rss_bytes))))
                        .collect();
                    (name(m, l.window), pts)
                })
                .collect(),
        };
        out.extend(save(dir, "rss", &rss)?);
    }
    let lat: Vec<_> = models
        .iter()
        .filter_map(|m| m.latency.as_ref().map(|l| (m.model.name.clone(), l)))
        .collect();
    if !lat.is_empty() {
        let pts = |v: Vec<f64>| v.into_iter().map(|x| (x, 0.0)).collect::<Vec<_>>();
        let ttft = lat
            .iter()
            .map(|(n, l)| {
                (
                    n.clone(),
                    pts(l.samples.iter().map(|s| s.ttft_ms).collect()),
                )
            })
            .collect();
        let itl = lat
            .iter()
            .map(|(n, l)| {
                let v = l
                    .samples
                    .iter()
                    .flat_map(|s| s.itl_ms.iter().copied())
                    .collect();
                (n.clone(), pts(v))
            })
            .collect();
        let hist = Histograms {
            title: "Latency histograms".into(),
            panels: vec![("TTFT".into(), ttft), ("ITL".into(), itl)],
        };
        out.extend(save(dir, "latency_hist", &hist)?);
    }
    Ok(out)
}
