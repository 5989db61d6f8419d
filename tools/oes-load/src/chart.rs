//! The latency-over-time chart next to the report: each student route's p50 (top) and p99
//! (bottom) second by second through the exam day, on a log scale, as an SVG.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::stats::Second;

/// One colour per route, in route order (then round again).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A tick of the log axis: `100`, `2.5`, `0.25`.
fn axis_label(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// Draws `series` (route → its seconds) to `path`, titled `title`.
pub fn draw(
    path: &Path,
    title: &str,
    series: &BTreeMap<&'static str, Vec<Second>>,
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let seconds = series
        .values()
        .flatten()
        .map(|s| s.second)
        .max()
        .unwrap_or(0)
        + 1;
    let highest = series
        .values()
        .flatten()
        .map(|s| s.p99_ms)
        .fold(1.0_f64, f64::max);
    let lowest = series
        .values()
        .flatten()
        .map(|s| s.p50_ms)
        .fold(highest, f64::min)
        .max(0.01);
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| fail(&e))?;
    let panels = root.split_evenly((2, 1));
    for (panel, (name, pick)) in panels.iter().zip([
        ("p50", (|s: &Second| s.p50_ms) as fn(&Second) -> f64),
        ("p99", |s: &Second| s.p99_ms),
    ]) {
        let mut chart = ChartBuilder::on(panel)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .caption(
                format!("{name} latency per second (ms, log scale)"),
                ("sans-serif", 16),
            )
            .build_cartesian_2d(0u64..seconds, (lowest * 0.8..highest * 1.25).log_scale())
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first student arrived")
            .y_desc("ms")
            .y_label_formatter(&|v| axis_label(*v))
            .draw()
            .map_err(|e| fail(&e))?;
        for (i, (route, seconds)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    seconds.iter().map(|s| (s.second, pick(s).max(lowest))),
                    color.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?
                .label(*route)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_a_line_and_a_legend_per_route() {
        let dir = std::env::temp_dir().join(format!("oes-load-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("latency.svg");
        let second = |second, p50_ms, p99_ms| Second {
            second,
            requests: 3,
            p50_ms,
            p99_ms,
        };
        let mut series = BTreeMap::new();
        series.insert(
            "POST /auth/login",
            vec![second(0, 40.0, 90.0), second(1, 45.0, 120.0)],
        );
        series.insert("GET /attempts/{id}", vec![second(1, 0.4, 1.5)]);
        draw(&path, "test run", &series).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("POST /auth/login") && svg.contains("GET /attempts/{id}"));
        assert!(svg.contains("p99 latency per second"));
        assert!(
            svg.matches("<polyline").count() >= 4,
            "a line per route and panel"
        );
    }
}
