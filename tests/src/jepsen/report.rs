//! A run's results folder: `history.txt` (every operation, invoke order, and every watcher's
//! events), `nemesis.txt` (the fault timeline), `verdict.txt` (pass or fail, the violations,
//! counts and unavailability windows), `latency.png` and the members' logs.

use std::fmt::Write as _;

use keel_sim::history::{Call, Op, Outcome as OpOutcome, Return};

use super::nemesis::Window;
use super::{plot, Options, Outcome};

/// How long writes stalled after a fault hit the leader: from the moment it took hold to the
/// first successful write invoked after that (`None`: none succeeded before the run ended).
fn write_stall_ms(window: &Window, ops: &[Op]) -> Option<u64> {
    ops.iter()
        .filter(|op| {
            matches!(op.call, Call::Put { .. } | Call::Cas { .. })
                && matches!(op.outcome, OpOutcome::Ok(Return::Written { .. }))
        })
        .filter(|op| op.invoke_ms >= window.effect_ms)
        .map(|op| op.complete_ms - window.effect_ms)
        .min()
}

/// The faults that hit the leader of the moment, with how long writes stalled after each.
fn stalls(outcome: &Outcome) -> Vec<(&Window, Option<u64>)> {
    outcome.timeline.iter().filter(|w| w.hit_leader).map(|w| (w, write_stall_ms(w, &outcome.history.ops))).collect()
}

/// The verdict as text: what ran, what was checked, what broke.
pub fn verdict(options: &Options, outcome: &Outcome) -> String {
    let ops = &outcome.history.ops;
    let count = |f: fn(&OpOutcome) -> bool| ops.iter().filter(|op| f(&op.outcome)).count();
    let mut v = String::new();
    let status = if outcome.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        v,
        "{status}: scenario {} seed {} ({} s of faults, {} members)",
        options.scenario.name(),
        options.seed,
        options.seconds,
        options.members
    );
    let _ = writeln!(
        v,
        "operations: {} ({} ok, {} failed, {} unknown); watch events seen: {}",
        ops.len(),
        count(|o| matches!(o, OpOutcome::Ok(_))),
        count(|o| matches!(o, OpOutcome::Failed(_))),
        count(|o| matches!(o, OpOutcome::Unknown(_))),
        outcome.history.watches.iter().map(|w| w.events.len()).sum::<usize>()
    );
    let _ = writeln!(v, "faults injected: {}", outcome.timeline.len());
    let _ = writeln!(v, "checked: linearizability (v2 and v3 registers together), revisions in real-time order, watches, locks (v2 and v3, v3 elections), leases, queue, list appends, convergence of every member's (revision, hash)");
    for (w, stall) in stalls(outcome) {
        let stall = stall.map_or("no write succeeded afterwards".to_string(), |ms| format!("{ms} ms"));
        let _ = writeln!(v, "writes stalled {stall} after {w}");
    }
    for violation in &outcome.violations {
        let _ = writeln!(v, "\n{violation}");
    }
    let _ = writeln!(v, "\n{}", plot::LEGEND);
    v
}

/// Write the results folder.
pub fn write(options: &Options, outcome: &Outcome) -> Result<(), String> {
    let mut ops: Vec<&Op> = outcome.history.ops.iter().collect();
    ops.sort_by_key(|op| (op.invoke_ms, op.client));
    let mut history = String::new();
    for op in ops {
        let _ = writeln!(history, "{op}");
    }
    for w in &outcome.history.watches {
        let _ = writeln!(
            history,
            "watcher {} on {} from index {}: {} events",
            w.watcher,
            w.prefix,
            w.start_index,
            w.events.len()
        );
        for e in &w.events {
            let _ = writeln!(history, "  {:>7} ms  index {} {} = {:?}", e.at_ms, e.index, e.key, e.value);
        }
    }
    let timeline: String = outcome.timeline.iter().map(|w| format!("{w}\n")).collect();
    let files = [("history.txt", history), ("nemesis.txt", timeline), ("verdict.txt", verdict(options, outcome))];
    for (name, text) in files {
        std::fs::write(outcome.dir.join(name), text).map_err(|e| format!("{name}: {e}"))?;
    }
    plot::draw(&outcome.dir.join("latency.png"), &outcome.history.ops, &outcome.timeline, outcome.span_ms)
}
