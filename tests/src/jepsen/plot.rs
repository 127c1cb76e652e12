//! The run at a glance: every operation's latency over time, fault windows shaded. A PNG drawn
//! with plotters' bitmap backend and no text (fonts would need system libraries); the verdict
//! file carries the legend.

use std::path::Path;

use plotters::prelude::*;

use keel_sim::fault::FaultKind;

use super::nemesis::Window;
use keel_sim::history::{Op, Outcome};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 500;
/// Latencies are drawn on a log scale from 1 ms up to this.
const MAX_LATENCY_MS: f64 = 10_000.0;

/// The shade of each kind of fault.
fn shade(kind: FaultKind) -> RGBColor {
    match kind {
        FaultKind::Split => RGBColor(255, 205, 150),
        FaultKind::IsolateLeader => RGBColor(255, 170, 170),
        FaultKind::Bridge => RGBColor(255, 235, 150),
        FaultKind::OneWay => RGBColor(210, 190, 255),
        FaultKind::Crash => RGBColor(200, 200, 200),
        FaultKind::Pause => RGBColor(170, 210, 255),
        FaultKind::ClockOffset => RGBColor(190, 240, 190),
        FaultKind::Rejoin => RGBColor(240, 180, 240),
        // Faults only the simulator carries out.
        _ => RGBColor(220, 220, 220),
    }
}

/// What the legend says about colours.
pub const LEGEND: &str = "latency.png: x is time (a grey line every 10 s), y is latency on a log scale (grey lines at 1 ms, 10 ms, 100 ms, 1 s, 10 s). \
Dots: green ok, red failed, blue unknown (timed out). Shading: orange partition halves, red isolated leader, yellow bridge, \
purple one-way loss, grey kill -9, light blue SIGSTOP, light green clock offset, pink membership change.";

/// Draw `ops` and `windows` over `span_ms` into `path`.
pub fn draw(path: &Path, ops: &[Op], windows: &[Window], span_ms: u64) -> Result<(), String> {
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| format!("plot: {e:?}");
    root.fill(&WHITE).map_err(e)?;
    let span = span_ms.max(1) as f64;
    let x = |ms: u64| (ms as f64 / span * f64::from(WIDTH - 1)) as i32;
    let y = |latency_ms: u64| {
        let scaled = ((latency_ms.max(1) as f64).log10() / MAX_LATENCY_MS.log10()).min(1.0);
        (f64::from(HEIGHT - 1) * (1.0 - scaled)) as i32
    };
    for w in windows {
        root.draw(&Rectangle::new(
            [(x(w.start_ms), 0), (x(w.end_ms).max(x(w.start_ms) + 1), HEIGHT as i32)],
            shade(w.fault.kind()).filled(),
        ))
        .map_err(e)?;
    }
    let grid = RGBColor(215, 215, 215);
    for decade in [1, 10, 100, 1000, 10_000] {
        root.draw(&PathElement::new(vec![(0, y(decade)), (WIDTH as i32, y(decade))], grid)).map_err(e)?;
    }
    for t in (0..span_ms).step_by(10_000) {
        root.draw(&PathElement::new(vec![(x(t), 0), (x(t), HEIGHT as i32)], grid)).map_err(e)?;
    }
    for op in ops {
        let colour = match op.outcome {
            Outcome::Ok(_) => RGBColor(30, 150, 30),
            Outcome::Failed(_) => RGBColor(210, 30, 30),
            Outcome::Unknown(_) => RGBColor(30, 60, 220),
        };
        root.draw(&Circle::new((x(op.invoke_ms), y(op.complete_ms.saturating_sub(op.invoke_ms))), 2, colour.filled()))
            .map_err(e)?;
    }
    root.present().map_err(|e| format!("plot: {e:?}"))
}
