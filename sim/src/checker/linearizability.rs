//! Linearizability checking: does a concurrent history of operations have a single sequential
//! order, consistent with real time, in which a sequential specification ([`Model`]) explains
//! every result?
//!
//! # Algorithm
//!
//! Wing & Gong's depth-first search with Lowe's memoization, run separately on each partition
//! (for a key-value store: each key), because operations in different partitions cannot
//! constrain one another and checking them together would multiply the search space.
//!
//! Each partition's operations become an *entry list*: call and return events sorted by time,
//! doubly linked so that linearizing an operation (lifting its call and return out of the list)
//! and backtracking (splicing them back) are O(1). The candidates to linearize next are the
//! calls before the first remaining return; reaching that return means the operation it
//! belongs to had to be linearized already, so the search backtracks. A cache of
//! (set of linearized operations, model state) pairs prunes configurations already explored:
//! their futures depend on nothing else.
//!
//! # Real time
//!
//! Operation A must precede operation B only if A completed *strictly* before B was invoked
//! (`A.complete < B.invoke`). Equal timestamps count as concurrent (calls sort before returns
//! at the same instant), the permissive reading for clocks too coarse to order them. An
//! operation whose `complete` is before its `invoke` (a broken clock) is treated as completing
//! at its invoke time rather than rejected: it is a harness error, not a store error, and
//! clamping keeps the check total.
//!
//! # Indeterminate operations
//!
//! An operation whose `output` is `None` (timed out, connection lost) may or may not have taken
//! effect, so it may be linearized (with `output` `None` passed to [`Model::step`]) or left
//! out. If its `complete` is `Some(t)`, it can only have taken effect before `t`: it stays in
//! the entry list, and when its return is reached unlinearized the search *drops* it (decides
//! it never happened) instead of backtracking. An operation with `complete` `None` may take
//! effect at any time after its invoke, i.e. it completes at +infinity; such *floating*
//! operations get no return event at all, and the search succeeds once every determinate
//! operation is linearized, whatever floating ones remain.
//!
//! Floating operations need care: the plain search would try every subset of the pending
//! ones in every order before giving up on a prefix, exponential in their number, which only
//! grows over a long history. Instead:
//!
//! - they are applied only as a *chain* immediately before a timed operation, and only once
//!   every successor without a chain has failed;
//! - the chains tried are the minimal ones: per resulting state, none whose operations are a
//!   superset of another's. They depend only on the state and the floating operations
//!   available, so they are memoized on those;
//! - a chain is skipped before an operation if the result equals the operation's result
//!   without it, or the result of the operation followed by the chain (the successor without
//!   the chain can then apply it at its own next step);
//! - a configuration is pruned when one with the same linearized timed operations and state,
//!   but a subset of the consumed floating operations, was explored: a floating operation
//!   still available can only help.
//!
//! All of these are exact, so the check stays sound and complete. What remains is a cost per
//! distinct (state, available floating operations) of about (chains x available floating
//! operations) steps, so thousands of never-completed operations on one hot key are slow.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A sequential specification: what one partition of the system may do, one operation at a
/// time. The checker asks whether some sequential order of a history satisfies it.
pub trait Model {
    /// The partition's state; hashed and compared to memoize the search.
    type State: Clone + Eq + Hash + fmt::Debug;
    /// What a client asked for.
    type Input: Clone + fmt::Debug;
    /// What a client was told.
    type Output: Clone + fmt::Debug;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// Apply `input` to `state`; Some(new state) if the op could have returned `output` (None = impossible).
    /// `output` is None for an indeterminate op (timed out / connection lost: it may or may not have taken effect,
    /// and its result is unknown) — then the step must accept whatever the input could do.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;
    /// The partition (e.g. the key) an input belongs to; operations in different partitions are independent.
    fn partition(&self, input: &Self::Input) -> String;
}

/// One client call as the client saw it: when it was made, what it asked, and (if it finished)
/// when and with what result. Times may use any monotonic unit shared by all clients.
#[derive(Clone, Debug)]
pub struct Operation<I, O> {
    /// The client that made the call (for reports only).
    pub client: u64,
    /// What the client asked for.
    pub input: I,
    /// When the call was made.
    pub invoke: u64,
    /// The result, or `None` if unknown: the operation may or may not have taken effect.
    pub output: Option<O>,
    /// When the result arrived, or `None` if never: the operation may take effect at any time
    /// after `invoke`, or not at all.
    pub complete: Option<u64>,
}

/// The outcome of a check.
#[derive(Clone, Debug)]
pub enum Verdict<I, O> {
    /// Some real-time-consistent sequential order explains every result.
    Ok,
    /// No order does; the counterexample shows where the best attempt got stuck.
    Illegal(Counterexample<I, O>),
    /// The search ran out of its time budget before deciding.
    Timeout,
}

/// Why a partition is not linearizable: the longest linearizable prefix the search found, and
/// the operations none of which could come next.
#[derive(Clone, Debug)]
pub struct Counterexample<I, O> {
    /// The partition (e.g. key) whose history is not linearizable.
    pub partition: String,
    /// The longest prefix found that linearizes, in linearization order (including any
    /// indeterminate operations the search chose to apply).
    pub linearized: Vec<Operation<I, O>>,
    /// The timed operations that could be next after that prefix, none of which fits
    /// (even after applying pending indeterminate operations first).
    pub stuck: Vec<Operation<I, O>>,
    /// Indeterminate never-completed operations that were also available at that point;
    /// the search tried applying them before the stuck operations.
    pub pending_indeterminate: Vec<Operation<I, O>>,
    /// The model state after the prefix, rendered with `Debug`.
    pub state: String,
}

/// How many operations of the linearized prefix the `Display` summary shows.
const SHOWN_PREFIX: usize = 8;

impl<I: fmt::Debug, O: fmt::Debug> fmt::Display for Counterexample<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "partition {:?} is not linearizable", self.partition)?;
        writeln!(f, "longest linearizable prefix: {} ops, leaving state {}", self.linearized.len(), self.state)?;
        let omitted = self.linearized.len().saturating_sub(SHOWN_PREFIX);
        if omitted > 0 {
            writeln!(f, "  ... {omitted} earlier ops")?;
        }
        for op in &self.linearized[omitted..] {
            writeln!(f, "  {}", OpLine(op))?;
        }
        write!(f, "none of these could be linearized next:")?;
        for op in &self.stuck {
            write!(f, "\n  {}", OpLine(op))?;
        }
        if !self.pending_indeterminate.is_empty() {
            write!(f, "\n(even after any of these indeterminate ops:)")?;
            for op in &self.pending_indeterminate {
                write!(f, "\n  {}", OpLine(op))?;
            }
        }
        Ok(())
    }
}

/// One operation on one line: interval, client, input and output.
struct OpLine<'a, I, O>(&'a Operation<I, O>);

impl<I: fmt::Debug, O: fmt::Debug> fmt::Display for OpLine<'_, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.0;
        write!(f, "[{}..", op.invoke)?;
        match op.complete {
            Some(complete) => write!(f, "{complete}]")?,
            None => write!(f, "never]")?,
        }
        write!(f, " client {}: {:?} -> ", op.client, op.input)?;
        match &op.output {
            Some(output) => write!(f, "{output:?}"),
            None => write!(f, "unknown"),
        }
    }
}

/// Check `history` against `model`, partition by partition, giving up with
/// [`Verdict::Timeout`] once `budget` has elapsed. Partitions are checked in name order and
/// the first illegal one is reported.
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    budget: Duration,
) -> Verdict<M::Input, M::Output> {
    let mut budget = Budget::new(budget);
    for (partition, ops) in partition_history(model, history) {
        let mut search = Search::new(model, &ops);
        match search.run(&mut budget) {
            Outcome::Linearizable => {}
            Outcome::Timeout => return Verdict::Timeout,
            Outcome::Violation => return Verdict::Illegal(search.counterexample(partition)),
        }
    }
    Verdict::Ok
}

/// A history operation of model `M`.
type Op<M> = Operation<<M as Model>::Input, <M as Model>::Output>;

/// The history's operations grouped by partition, in a deterministic order.
fn partition_history<'h, M: Model>(
    model: &M,
    history: &'h [Operation<M::Input, M::Output>],
) -> BTreeMap<String, Vec<&'h Op<M>>> {
    let mut partitions: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for op in history {
        partitions.entry(model.partition(&op.input)).or_default().push(op);
    }
    partitions
}

/// How many units of search work pass between looks at the clock (reading it is not free).
const STEPS_PER_CLOCK_CHECK: u64 = 4096;

/// The search's time budget, shared by all partitions.
struct Budget {
    /// `None` when the budget is too large to represent: never time out.
    deadline: Option<Instant>,
    steps: u64,
}

impl Budget {
    fn new(budget: Duration) -> Self {
        Budget { deadline: Instant::now().checked_add(budget), steps: 0 }
    }

    /// Count one unit of work; true once the deadline has passed.
    fn exhausted(&mut self) -> bool {
        self.steps = self.steps.wrapping_add(1);
        self.steps.is_multiple_of(STEPS_PER_CLOCK_CHECK) && self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// A fixed-size set of small integers (operation indices), hashable for the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(len: usize) -> Self {
        Bitset(vec![0; len.div_ceil(64)])
    }

    fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    fn insert(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn remove(&mut self, i: usize) {
        if let Some(word) = self.0.get_mut(i / 64) {
            *word &= !(1 << (i % 64));
        }
    }

    /// Whether every member of `self` is in `other` (both built with the same length).
    fn is_subset(&self, other: &Bitset) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }

    /// Whether every member of `self` is in `other` or is `extra`.
    fn is_subset_with(&self, other: &Bitset, extra: usize) -> bool {
        self.0.iter().zip(&other.0).enumerate().all(|(i, (a, b))| {
            let extra_bit = if extra / 64 == i { 1 << (extra % 64) } else { 0 };
            a & !(b | extra_bit) == 0
        })
    }
}

/// Record `set` as reached with `key` unless a subset of it already was (then `set` is
/// dominated: the earlier configuration had every option this one has). Supersets recorded
/// earlier are forgotten, since `set` now dominates them.
fn admit<K: Eq + Hash>(seen: &mut HashMap<K, Vec<Bitset>>, key: K, set: &Bitset) -> bool {
    let known = seen.entry(key).or_default();
    if known.iter().any(|k| k.is_subset(set)) {
        return false;
    }
    known.retain(|k| !set.is_subset(k));
    known.push(set.clone());
    true
}

/// The end of the entry list (and the head sentinel's `prev`).
const NIL: usize = usize::MAX;

/// A call or return event in the entry list.
struct Entry {
    /// The timed operation the event belongs to.
    op: usize,
    is_call: bool,
    time: u64,
    prev: usize,
    next: usize,
}

/// The call and return events of the timed operations, sorted by time, doubly linked so an
/// operation can be lifted out and spliced back in O(1) (dancing links). `entries[0]` is a
/// head sentinel, and index order is sorted order whatever is currently lifted.
struct EntryList {
    entries: Vec<Entry>,
    call_of: Vec<usize>,
    return_of: Vec<usize>,
}

impl EntryList {
    /// The list for operations with the given (invoke, complete) intervals.
    fn new(intervals: &[(u64, u64)]) -> Self {
        let mut events: Vec<(u64, bool, usize)> = intervals
            .iter()
            .enumerate()
            .flat_map(|(op, &(invoke, complete))| [(invoke, false, op), (complete, true, op)])
            .collect();
        // Calls (false) before returns (true) at equal times: equal times are concurrent.
        events.sort_unstable();
        let head = Entry { op: NIL, is_call: false, time: 0, prev: NIL, next: NIL };
        let mut list = EntryList {
            entries: vec![head],
            call_of: vec![NIL; intervals.len()],
            return_of: vec![NIL; intervals.len()],
        };
        for (time, is_return, op) in events {
            let index = list.entries.len();
            list.entries[index - 1].next = index;
            list.entries.push(Entry { op, is_call: !is_return, time, prev: index - 1, next: NIL });
            let slot = if is_return { &mut list.return_of } else { &mut list.call_of };
            slot[op] = index;
        }
        list
    }

    fn first(&self) -> usize {
        self.entries[0].next
    }

    /// The entry at `index`, or `None` past the end of the list.
    fn get(&self, index: usize) -> Option<&Entry> {
        self.entries.get(index).filter(|_| index != 0)
    }

    fn next(&self, index: usize) -> usize {
        self.get(index).map_or(NIL, |e| e.next)
    }

    /// The time of the first return still in the list (`None` if only calls remain).
    fn first_return_time(&self) -> Option<u64> {
        let mut index = self.first();
        while let Some(entry) = self.get(index) {
            if !entry.is_call {
                return Some(entry.time);
            }
            index = entry.next;
        }
        None
    }

    /// Take `op`'s call and return out of the list.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        self.unlink(self.return_of[op]);
    }

    /// Undo the matching `lift(op)`; lifts must be undone in reverse order.
    fn unlift(&mut self, op: usize) {
        self.relink(self.return_of[op]);
        self.relink(self.call_of[op]);
    }

    fn unlink(&mut self, index: usize) {
        let (prev, next) = (self.entries[index].prev, self.entries[index].next);
        self.entries[prev].next = next;
        if next != NIL {
            self.entries[next].prev = prev;
        }
    }

    fn relink(&mut self, index: usize) {
        let (prev, next) = (self.entries[index].prev, self.entries[index].next);
        self.entries[prev].next = index;
        if next != NIL {
            self.entries[next].prev = index;
        }
    }
}

/// How a partition's search ended.
enum Outcome {
    Linearizable,
    Violation,
    Timeout,
}

/// What one unit of search work led to.
enum Progress {
    Continue,
    /// The current configuration has no untried way forward.
    Exhausted,
    Timeout,
}

/// Which successors of a configuration are being tried.
#[derive(Clone, Copy)]
enum Phase {
    /// Timed operations straight from the configuration's state, and drops.
    Plain,
    /// Timed operations after a chain of floating operations from this closure.
    Chained(usize),
}

/// Where a configuration's exploration of its successors stands.
#[derive(Clone, Copy)]
enum Scan {
    /// Try (the next option for) the entry at this index.
    At(usize),
    /// The entry at this index is done; move on to the one after it (looked up only when
    /// needed, since the entry is lifted out while its subtree is explored).
    After(usize),
    /// This phase's entries are used up.
    NextPhase,
}

/// A chain of floating operations, and the state it leads to.
struct Chain<S> {
    state: S,
    /// Floating operation indices, in application order.
    ops: Vec<usize>,
    /// The same operations as a set.
    set: Bitset,
}

/// The minimal chains from a state over a set of available floating operations.
struct Closure<S> {
    state: S,
    chains: Vec<Chain<S>>,
}

/// A chain worth trying before a timed operation: (chain index, state after both).
type Choice<S> = (usize, S);

/// The chains worth trying before one timed operation, shared from the memo.
type Choices<S> = Rc<Vec<Choice<S>>>;

/// The successor taken from a configuration, to undo on backtracking.
struct Taken {
    /// The timed operation linearized (or dropped).
    op: usize,
    applied: bool,
    /// The chain applied before it, as (closure, chain index).
    chain: Option<(usize, usize)>,
}

/// One configuration on the search path: a state, plus how far the exploration of its
/// successors has got.
struct Level<S> {
    state: S,
    phase: Phase,
    scan: Scan,
    /// In the chained phase, how many of the current entry's chains have been tried.
    option: usize,
    taken: Option<Taken>,
}

impl<S> Level<S> {
    fn new(state: S, first: usize) -> Self {
        Level { state, phase: Phase::Plain, scan: Scan::At(first), option: 0, taken: None }
    }
}

/// The deepest configuration the search reached, kept for the counterexample.
struct Snapshot<'a, O, S> {
    depth: usize,
    linearized: Vec<&'a O>,
    decided: Bitset,
    consumed: Bitset,
    state: S,
}

/// The search over one partition.
struct Search<'a, M: Model> {
    model: &'a M,
    /// Operations with a completion time, indexed as in the entry list.
    timed: Vec<&'a Op<M>>,
    /// Operations that never completed, sorted by invoke time.
    floating: Vec<&'a Op<M>>,
    list: EntryList,
    /// Timed operations linearized or dropped on the current path.
    decided: Bitset,
    /// Floating operations applied on the current path.
    consumed: Bitset,
    /// Determinate timed operations not yet linearized; the search succeeds at zero.
    required_left: usize,
    levels: Vec<Level<M::State>>,
    /// Lowe's cache: for each (decided set, state) reached, the minimal consumed sets.
    seen: HashMap<(Bitset, M::State), Vec<Bitset>>,
    /// Closures computed so far, and their indices by (state, available floating operations):
    /// many configurations share them.
    closures: Vec<Closure<M::State>>,
    closure_index: HashMap<(M::State, Bitset), usize>,
    /// For (closure, timed operation), the chains worth trying before it.
    useful: HashMap<(usize, usize), Choices<M::State>>,
    best: Snapshot<'a, Op<M>, M::State>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &[&'a Op<M>]) -> Self {
        let (timed, mut floating): (Vec<&Op<M>>, Vec<&Op<M>>) =
            ops.iter().copied().partition(|op| op.complete.is_some());
        floating.sort_by_key(|op| op.invoke);
        let intervals: Vec<(u64, u64)> =
            timed.iter().map(|op| (op.invoke, op.complete.map_or(op.invoke, |c| c.max(op.invoke)))).collect();
        let list = EntryList::new(&intervals);
        let init = model.init();
        let best = Snapshot {
            depth: 0,
            linearized: Vec::new(),
            decided: Bitset::new(timed.len()),
            consumed: Bitset::new(floating.len()),
            state: init.clone(),
        };
        Search {
            model,
            required_left: timed.iter().filter(|op| op.output.is_some()).count(),
            decided: Bitset::new(timed.len()),
            consumed: Bitset::new(floating.len()),
            levels: vec![Level::new(init, list.first())],
            seen: HashMap::new(),
            closures: Vec::new(),
            closure_index: HashMap::new(),
            useful: HashMap::new(),
            timed,
            floating,
            list,
            best,
        }
    }

    fn step(&self, state: &M::State, op: &Op<M>) -> Option<M::State> {
        self.model.step(state, &op.input, op.output.as_ref())
    }

    fn run(&mut self, budget: &mut Budget) -> Outcome {
        loop {
            if self.required_left == 0 {
                return Outcome::Linearizable;
            }
            if budget.exhausted() {
                return Outcome::Timeout;
            }
            match self.advance(budget) {
                Progress::Continue => {}
                Progress::Timeout => return Outcome::Timeout,
                Progress::Exhausted => {
                    if !self.backtrack() {
                        return Outcome::Violation;
                    }
                }
            }
        }
    }

    /// Take one step of exploring the current configuration's successors.
    fn advance(&mut self, budget: &mut Budget) -> Progress {
        let Some(level) = self.levels.last_mut() else {
            return Progress::Exhausted;
        };
        match level.scan {
            Scan::After(index) => {
                level.scan = Scan::At(self.list.next(index));
                level.option = 0;
                Progress::Continue
            }
            Scan::At(index) => self.visit(index, budget),
            Scan::NextPhase => self.next_phase(budget),
        }
    }

    fn set_scan(&mut self, scan: Scan) {
        if let Some(level) = self.levels.last_mut() {
            level.scan = scan;
        }
    }

    /// Try the next successor the entry at `index` offers: linearizing a call's operation
    /// (after a chain, in the chained phase), or, at the first return in the plain phase,
    /// dropping an indeterminate operation.
    fn visit(&mut self, index: usize, budget: &mut Budget) -> Progress {
        let Some(entry) = self.list.get(index) else {
            self.set_scan(Scan::NextPhase);
            return Progress::Continue;
        };
        let (op, is_call) = (entry.op, entry.is_call);
        let Some(phase) = self.levels.last().map(|level| level.phase) else {
            return Progress::Exhausted;
        };
        match (phase, is_call) {
            (Phase::Plain, true) => {
                self.set_scan(Scan::After(index));
                self.try_apply(op);
            }
            (Phase::Chained(closure), true) => return self.try_chained(index, op, closure, budget),
            (phase, false) => {
                self.set_scan(Scan::NextPhase);
                if matches!(phase, Phase::Plain) && self.timed[op].output.is_none() {
                    self.try_drop(op);
                }
            }
        }
        Progress::Continue
    }

    fn try_apply(&mut self, op: usize) {
        let Some(level) = self.levels.last() else {
            return;
        };
        if let Some(after) = self.step(&level.state, self.timed[op]) {
            self.try_descend(op, true, after, None);
        }
    }

    /// Decide that the indeterminate `op` never took effect. Only done once its return is
    /// reached: dropping changes no state, so dropping any earlier gains nothing.
    fn try_drop(&mut self, op: usize) {
        let Some(level) = self.levels.last() else {
            return;
        };
        let state = level.state.clone();
        self.try_descend(op, false, state, None);
    }

    /// Try the next chain worth trying before `op` (the call at `index`), or move on.
    fn try_chained(&mut self, index: usize, op: usize, closure: usize, budget: &mut Budget) -> Progress {
        let Some(options) = self.useful(closure, op, budget) else {
            return Progress::Timeout;
        };
        let Some(level) = self.levels.last_mut() else {
            return Progress::Exhausted;
        };
        match options.get(level.option) {
            Some((chain, after)) => {
                level.option += 1;
                self.try_descend(op, true, after.clone(), Some((closure, *chain)));
            }
            None => level.scan = Scan::After(index),
        }
        Progress::Continue
    }

    /// Move to the configuration reached by `chain` and then `op`, unless it (or one
    /// dominating it) was explored before.
    fn try_descend(&mut self, op: usize, applied: bool, state: M::State, chain: Option<(usize, usize)>) {
        let chain_ops = chain_ops(&self.closures, chain);
        self.decided.insert(op);
        chain_ops.iter().for_each(|&x| self.consumed.insert(x));
        if !admit(&mut self.seen, (self.decided.clone(), state.clone()), &self.consumed) {
            self.decided.remove(op);
            chain_ops.iter().for_each(|&x| self.consumed.remove(x));
            return;
        }
        if let Some(level) = self.levels.last_mut() {
            level.taken = Some(Taken { op, applied, chain });
        }
        self.list.lift(op);
        if self.timed[op].output.is_some() {
            self.required_left -= 1;
        }
        self.levels.push(Level::new(state, self.list.first()));
    }

    /// Abandon the current configuration and undo the step that led to it; false if it was
    /// the initial one (the partition is not linearizable).
    fn backtrack(&mut self) -> bool {
        self.record_if_deepest();
        self.levels.pop();
        let Some(taken) = self.levels.last_mut().and_then(|parent| parent.taken.take()) else {
            return false;
        };
        chain_ops(&self.closures, taken.chain).iter().for_each(|&x| self.consumed.remove(x));
        self.decided.remove(taken.op);
        self.list.unlift(taken.op);
        if self.timed[taken.op].output.is_some() {
            self.required_left += 1;
        }
        true
    }

    /// Move from the plain phase to the chained one (if any chain exists), or give up on the
    /// configuration.
    fn next_phase(&mut self, budget: &mut Budget) -> Progress {
        if !matches!(self.levels.last().map(|level| level.phase), Some(Phase::Plain)) {
            return Progress::Exhausted;
        }
        let Some(closure) = self.closure(budget) else {
            return Progress::Timeout;
        };
        if self.closures[closure].chains.is_empty() {
            return Progress::Exhausted;
        }
        let first = self.list.first();
        if let Some(level) = self.levels.last_mut() {
            level.phase = Phase::Chained(closure);
            level.scan = Scan::At(first);
            level.option = 0;
        }
        Progress::Continue
    }

    /// The index of the closure of the current configuration: its state and the floating
    /// operations available to it. `None` on timeout.
    fn closure(&mut self, budget: &mut Budget) -> Option<usize> {
        let state = self.levels.last()?.state.clone();
        let mut available = Bitset::new(self.floating.len());
        for x in self.floating_candidates(self.list.first_return_time(), &self.consumed) {
            available.insert(x);
        }
        let key = (state, available);
        if let Some(&index) = self.closure_index.get(&key) {
            return Some(index);
        }
        let chains = self.chains(&key.0, &key.1, budget)?;
        self.closures.push(Closure { state: key.0.clone(), chains });
        let index = self.closures.len() - 1;
        self.closure_index.insert(key, index);
        Some(index)
    }

    /// The minimal non-empty chains of `available` floating operations from `state`, breadth
    /// first so that a chain is found before its supersets (which it dominates).
    fn chains(&self, state: &M::State, available: &Bitset, budget: &mut Budget) -> Option<Vec<Chain<M::State>>> {
        let candidates: Vec<usize> = (0..self.floating.len()).filter(|&x| available.contains(x)).collect();
        let empty = Bitset::new(self.floating.len());
        let mut minimal: HashMap<M::State, Vec<Bitset>> = HashMap::new();
        admit(&mut minimal, state.clone(), &empty);
        // The queue itself, starting from the empty chain (dropped at the end).
        let mut chains = vec![Chain { state: state.clone(), ops: Vec::new(), set: empty }];
        let mut next = 0;
        while let Some(chain) = chains.get(next) {
            let mut longer = Vec::new();
            for &x in candidates.iter().filter(|&&x| !chain.set.contains(x)) {
                if budget.exhausted() {
                    return None;
                }
                longer.extend(self.extend_chain(chain, x, &mut minimal));
            }
            chains.append(&mut longer);
            next += 1;
        }
        chains.remove(0);
        Some(chains)
    }

    /// `chain` followed by floating operation `x`, if `x` fits and the result is not dominated.
    fn extend_chain(
        &self,
        chain: &Chain<M::State>,
        x: usize,
        minimal: &mut HashMap<M::State, Vec<Bitset>>,
    ) -> Option<Chain<M::State>> {
        let state = self.step(&chain.state, self.floating[x])?;
        // Most extensions are dominated: find out before building anything.
        let known = minimal.get(&state).map_or(&[][..], Vec::as_slice);
        if known.iter().any(|k| k.is_subset_with(&chain.set, x)) {
            return None;
        }
        let mut set = chain.set.clone();
        set.insert(x);
        admit(minimal, state.clone(), &set);
        let mut ops = chain.ops.clone();
        ops.push(x);
        Some(Chain { state, ops, set })
    }

    /// The chains of `closure` worth trying before timed operation `op`, with the states they
    /// lead to (memoized). A chain is not worth it when the result is the state `op` reaches
    /// without it (that successor is tried first and dominates), or when applying `op` first
    /// and the chain after reaches the same state (the successor without the chain can apply
    /// the chain at its own next step). `None` on timeout.
    fn useful(&mut self, closure: usize, op: usize, budget: &mut Budget) -> Option<Choices<M::State>> {
        if let Some(options) = self.useful.get(&(closure, op)) {
            return Some(Rc::clone(options));
        }
        let timed = self.timed[op];
        let base = &self.closures[closure];
        let direct = self.step(&base.state, timed);
        let mut options = Vec::new();
        for (index, chain) in base.chains.iter().enumerate() {
            if budget.exhausted() {
                return None;
            }
            let Some(after) = self.step(&chain.state, timed) else {
                continue;
            };
            if direct.as_ref() != Some(&after) && self.replay(direct.clone(), &chain.ops).as_ref() != Some(&after) {
                options.push((index, after));
            }
        }
        let options = Rc::new(options);
        self.useful.insert((closure, op), Rc::clone(&options));
        Some(options)
    }

    /// The state floating operations `ops` lead to from `state`, if they all fit.
    fn replay(&self, state: Option<M::State>, ops: &[usize]) -> Option<M::State> {
        ops.iter().try_fold(state?, |state, &x| self.step(&state, self.floating[x]))
    }

    /// Floating operations not in `consumed` that may take effect before the return at
    /// `horizon` (all of them if there is none).
    fn floating_candidates(&self, horizon: Option<u64>, consumed: &Bitset) -> Vec<usize> {
        (0..self.floating.len())
            .take_while(|&x| horizon.is_none_or(|t| self.floating[x].invoke <= t))
            .filter(|&x| !consumed.contains(x))
            .collect()
    }

    /// Remember the current configuration if it is the deepest yet.
    fn record_if_deepest(&mut self) {
        let depth = self.levels.len().saturating_sub(1);
        if depth <= self.best.depth {
            return;
        }
        let mut linearized = Vec::new();
        for taken in self.levels[..depth].iter().filter_map(|level| level.taken.as_ref()) {
            linearized.extend(chain_ops(&self.closures, taken.chain).iter().map(|&x| self.floating[x]));
            if taken.applied {
                linearized.push(self.timed[taken.op]);
            }
        }
        let Some(level) = self.levels.last() else {
            return;
        };
        self.best = Snapshot {
            depth,
            linearized,
            decided: self.decided.clone(),
            consumed: self.consumed.clone(),
            state: level.state.clone(),
        };
    }

    /// The counterexample from the deepest configuration: its prefix, and the operations that
    /// could have come next (the calls before the first return still undecided).
    fn counterexample(&self, partition: String) -> Counterexample<M::Input, M::Output> {
        let best = &self.best;
        let mut stuck = Vec::new();
        let mut horizon = None;
        for entry in self.list.entries.iter().skip(1).filter(|e| !best.decided.contains(e.op)) {
            if !entry.is_call {
                horizon = Some(entry.time);
                break;
            }
            stuck.push(self.timed[entry.op].clone());
        }
        let pending = self.floating_candidates(horizon, &best.consumed);
        Counterexample {
            partition,
            linearized: best.linearized.iter().map(|&op| op.clone()).collect(),
            stuck,
            pending_indeterminate: pending.into_iter().map(|x| self.floating[x].clone()).collect(),
            state: format!("{:?}", best.state),
        }
    }
}

/// The floating operations of `chain` (a closure index and chain index), if any.
fn chain_ops<S>(closures: &[Closure<S>], chain: Option<(usize, usize)>) -> &[usize] {
    chain.and_then(|(closure, index)| closures.get(closure)?.chains.get(index)).map_or(&[], |chain| &chain.ops)
}

/// A key-value register workload: each key holds `Option<String>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Read the key.
    Get { key: String },
    /// Write `value` unconditionally.
    Put { key: String, value: String },
    /// write only if the current value equals `expected` (None = key absent)
    Cas { key: String, expected: Option<String>, value: String },
    /// Remove the key.
    Delete { key: String },
}

impl KvInput {
    /// The key the operation touches (its partition).
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Cas { key, .. } | KvInput::Delete { key } => key,
        }
    }
}

/// What a key-value operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// A Get's result (None = key absent).
    Value(Option<String>),
    /// A Put or Delete, or a Cas that succeeded.
    Written,
    /// A Cas whose expectation did not hold.
    CasFailed,
}

/// The sequential specification of one key of Keel's key-value store, for the register
/// workloads: each key is an independent register holding `Option<String>`.
pub struct KvModel;

impl Model for KvModel {
    type State = Option<String>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Option<String> {
        None
    }

    fn step(&self, state: &Option<String>, input: &KvInput, output: Option<&KvOutput>) -> Option<Option<String>> {
        let wrote = matches!(output, None | Some(KvOutput::Written));
        match input {
            KvInput::Get { .. } => match output {
                None => Some(state.clone()),
                Some(KvOutput::Value(seen)) if seen == state => Some(state.clone()),
                Some(_) => None,
            },
            KvInput::Put { value, .. } => wrote.then(|| Some(value.clone())),
            KvInput::Delete { .. } => wrote.then_some(None),
            KvInput::Cas { expected, value, .. } => {
                let holds = expected == state;
                match output {
                    // Unknown result: it succeeded if it could, otherwise it failed.
                    None if holds => Some(Some(value.clone())),
                    None => Some(state.clone()),
                    Some(KvOutput::Written) if holds => Some(Some(value.clone())),
                    Some(KvOutput::CasFailed) if !holds => Some(state.clone()),
                    Some(_) => None,
                }
            }
        }
    }

    fn partition(&self, input: &KvInput) -> String {
        input.key().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type KvOp = Operation<KvInput, KvOutput>;

    const BUDGET: Duration = Duration::from_secs(60);

    fn op(client: u64, input: KvInput, interval: (u64, u64), output: KvOutput) -> KvOp {
        Operation { client, input, invoke: interval.0, output: Some(output), complete: Some(interval.1) }
    }

    fn get(client: u64, key: &str, interval: (u64, u64), seen: Option<&str>) -> KvOp {
        let input = KvInput::Get { key: key.into() };
        op(client, input, interval, KvOutput::Value(seen.map(Into::into)))
    }

    fn put(client: u64, key: &str, value: &str, interval: (u64, u64)) -> KvOp {
        op(client, KvInput::Put { key: key.into(), value: value.into() }, interval, KvOutput::Written)
    }

    fn delete(client: u64, key: &str, interval: (u64, u64)) -> KvOp {
        op(client, KvInput::Delete { key: key.into() }, interval, KvOutput::Written)
    }

    fn cas(client: u64, key: &str, expected: Option<&str>, value: &str, interval: (u64, u64), ok: bool) -> KvOp {
        let input = KvInput::Cas { key: key.into(), expected: expected.map(Into::into), value: value.into() };
        op(client, input, interval, if ok { KvOutput::Written } else { KvOutput::CasFailed })
    }

    /// `op` with its result unknown and (if `complete` is None) no completion time.
    fn unknown(mut op: KvOp, complete: Option<u64>) -> KvOp {
        op.output = None;
        op.complete = complete;
        op
    }

    fn verdict(history: &[KvOp]) -> Verdict<KvInput, KvOutput> {
        check(&KvModel, history, BUDGET)
    }

    fn is_ok(history: &[KvOp]) -> bool {
        matches!(verdict(history), Verdict::Ok)
    }

    fn counterexample(history: &[KvOp]) -> Counterexample<KvInput, KvOutput> {
        match verdict(history) {
            Verdict::Illegal(c) => c,
            Verdict::Ok => panic!("expected a violation, got Ok"),
            Verdict::Timeout => panic!("expected a violation, got Timeout"),
        }
    }

    fn describe(verdict: &Verdict<KvInput, KvOutput>) -> String {
        match verdict {
            Verdict::Ok => "Ok".into(),
            Verdict::Illegal(c) => format!("Illegal:\n{c}"),
            Verdict::Timeout => "Timeout".into(),
        }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert!(is_ok(&[]));
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let history = [
            get(1, "k", (0, 1), None),
            put(1, "k", "a", (2, 3)),
            get(2, "k", (4, 5), Some("a")),
            cas(2, "k", Some("a"), "b", (6, 7), true),
            cas(1, "k", Some("a"), "c", (8, 9), false),
            delete(1, "k", (10, 11)),
            cas(2, "k", None, "d", (12, 13), true),
            get(1, "k", (14, 15), Some("d")),
        ];
        assert!(is_ok(&history));
    }

    #[test]
    fn concurrent_write_may_be_seen_either_way() {
        let before = [put(1, "k", "a", (0, 10)), get(2, "k", (1, 2), None)];
        let after = [put(1, "k", "a", (0, 10)), get(2, "k", (1, 2), Some("a"))];
        assert!(is_ok(&before));
        assert!(is_ok(&after));
    }

    #[test]
    fn equal_timestamps_are_concurrent() {
        // The read was invoked at the instant the write returned: it may precede it.
        assert!(is_ok(&[put(1, "k", "a", (0, 10)), get(2, "k", (10, 20), None)]));
        // One tick later it may not.
        let c = counterexample(&[put(1, "k", "a", (0, 10)), get(2, "k", (11, 20), None)]);
        assert_eq!(c.partition, "k");
    }

    #[test]
    fn stale_read_after_completed_write_is_illegal() {
        let history = [put(1, "k", "a", (0, 10)), put(1, "k", "b", (20, 30)), get(2, "k", (40, 50), Some("a"))];
        let c = counterexample(&history);
        assert_eq!(c.partition, "k");
        assert_eq!(c.linearized.len(), 2);
        assert_eq!(c.stuck.len(), 1);
        assert_eq!(c.stuck[0].input, KvInput::Get { key: "k".into() });
    }

    #[test]
    fn reads_disagreeing_on_the_order_of_concurrent_writes_are_illegal() {
        let history = [
            put(1, "k", "a", (0, 100)),
            put(2, "k", "b", (0, 100)),
            get(3, "k", (10, 20), Some("a")),
            get(3, "k", (30, 40), Some("b")),
            get(4, "k", (10, 20), Some("b")),
            get(4, "k", (30, 40), Some("a")),
        ];
        assert_eq!(counterexample(&history).partition, "k");
        // Either order alone is fine.
        assert!(is_ok(&history[..4]));
        assert!(is_ok(&[&history[..2], &history[4..]].concat()));
    }

    #[test]
    fn lost_acknowledged_write_is_illegal() {
        let history = [put(1, "k", "a", (0, 10)), get(2, "k", (20, 30), None)];
        assert_eq!(counterexample(&history).partition, "k");
    }

    #[test]
    fn cas_succeeding_twice_from_the_same_value_is_illegal() {
        let history = [
            put(1, "k", "a", (0, 10)),
            cas(2, "k", Some("a"), "b", (20, 40), true),
            cas(3, "k", Some("a"), "c", (25, 35), true),
        ];
        assert_eq!(counterexample(&history).partition, "k");
        let one_fails = [history[0].clone(), history[1].clone(), cas(3, "k", Some("a"), "c", (25, 35), false)];
        assert!(is_ok(&one_fails));
    }

    #[test]
    fn create_only_cas_succeeds_only_when_absent() {
        assert!(is_ok(&[cas(1, "k", None, "a", (0, 10), true), cas(2, "k", None, "b", (20, 30), false)]));
        let twice = [cas(1, "k", None, "a", (0, 10), true), cas(2, "k", None, "b", (20, 30), true)];
        assert_eq!(counterexample(&twice).partition, "k");
    }

    #[test]
    fn read_of_a_value_nobody_wrote_is_illegal() {
        let history = [put(1, "k", "a", (0, 10)), get(2, "k", (5, 15), Some("zzz"))];
        let c = counterexample(&history);
        assert_eq!(c.partition, "k");
        assert!(c.stuck.iter().any(|op| op.output == Some(KvOutput::Value(Some("zzz".into())))));
    }

    #[test]
    fn indeterminate_write_observed_later_is_linearizable() {
        // It may have taken effect long after its client gave up on it.
        let history = [
            unknown(put(1, "k", "a", (0, 0)), None),
            get(2, "k", (100, 110), None),
            get(2, "k", (200, 210), Some("a")),
            get(3, "k", (300, 310), Some("a")),
        ];
        assert!(is_ok(&history));
    }

    #[test]
    fn indeterminate_write_never_observed_is_linearizable() {
        let history = [
            unknown(put(1, "k", "a", (0, 0)), None),
            get(2, "k", (100, 110), None),
            put(2, "k", "b", (200, 210)),
            get(3, "k", (300, 310), Some("b")),
        ];
        assert!(is_ok(&history));
    }

    #[test]
    fn indeterminate_write_cannot_be_observed_twice() {
        // Once overwritten, it cannot reappear: it took effect at most once.
        let history = [
            unknown(put(1, "k", "a", (0, 0)), None),
            get(2, "k", (100, 110), Some("a")),
            put(2, "k", "b", (200, 210)),
            get(3, "k", (300, 310), Some("a")),
        ];
        assert_eq!(counterexample(&history).partition, "k");
    }

    #[test]
    fn indeterminate_op_with_completion_time_takes_effect_before_it_or_never() {
        let timed_out = unknown(put(1, "k", "a", (0, 0)), Some(10));
        assert!(is_ok(&[timed_out.clone(), get(2, "k", (20, 30), None)]));
        assert!(is_ok(&[timed_out.clone(), get(2, "k", (20, 30), Some("a"))]));
        let too_late = [timed_out, get(2, "k", (20, 30), None), get(2, "k", (40, 50), Some("a"))];
        assert_eq!(counterexample(&too_late).partition, "k");
    }

    #[test]
    fn indeterminate_cas_applies_only_if_its_condition_held() {
        let history = [
            put(1, "k", "a", (0, 10)),
            unknown(cas(2, "k", Some("a"), "b", (20, 0), true), None),
            get(3, "k", (30, 40), Some("a")),
            get(3, "k", (50, 60), Some("b")),
        ];
        assert!(is_ok(&history));
        let wrong_expectation = [
            put(1, "k", "a", (0, 10)),
            unknown(cas(2, "k", Some("x"), "b", (20, 0), true), None),
            get(3, "k", (50, 60), Some("b")),
        ];
        assert_eq!(counterexample(&wrong_expectation).partition, "k");
    }

    #[test]
    fn chains_of_indeterminate_ops_can_explain_a_read() {
        // Only create-then-swap explains "b": two indeterminate ops in a row.
        let history = [
            unknown(cas(1, "k", None, "a", (0, 0), true), None),
            unknown(cas(2, "k", Some("a"), "b", (5, 0), true), None),
            unknown(put(3, "k", "c", (5, 0)), None),
            get(4, "k", (100, 110), Some("b")),
        ];
        assert!(is_ok(&history));
    }

    #[test]
    fn completion_before_invoke_is_clamped_not_a_panic() {
        let history = [put(1, "k", "a", (10, 5)), get(2, "k", (11, 20), Some("a"))];
        assert!(is_ok(&history));
        let stale = [put(1, "k", "a", (10, 5)), get(2, "k", (11, 20), None)];
        assert_eq!(counterexample(&stale).partition, "k");
    }

    #[test]
    fn partitions_are_checked_independently() {
        let history = [
            put(1, "a", "1", (0, 10)),
            put(1, "b", "2", (0, 10)),
            get(2, "a", (20, 30), Some("1")),
            get(2, "b", (20, 30), Some("1")),
        ];
        let c = counterexample(&history);
        assert_eq!(c.partition, "b");
        assert!(c.linearized.iter().chain(&c.stuck).all(|op| op.input.key() == "b"));
    }

    #[test]
    fn counterexample_display_names_partition_and_stuck_ops() {
        let history =
            [put(1, "user:7", "a", (0, 10)), put(1, "user:7", "b", (20, 30)), get(2, "user:7", (40, 50), Some("a"))];
        let text = counterexample(&history).to_string();
        assert!(text.contains("\"user:7\""), "{text}");
        assert!(text.contains("none of these could be linearized next"), "{text}");
        assert!(text.contains("[40..50] client 2: Get { key: \"user:7\" } -> Value(Some(\"a\"))"), "{text}");
        assert!(text.contains("Some(\"b\")"), "{text}");
    }

    #[test]
    fn exhausted_budget_times_out() {
        let history = generate(7, &Workload { ops: 5_000, keys: 2, clients: 6, indeterminate_percent: 3 });
        assert!(matches!(check(&KvModel, &history, Duration::ZERO), Verdict::Timeout));
    }

    /// Shape of a generated history.
    struct Workload {
        ops: usize,
        keys: usize,
        clients: usize,
        indeterminate_percent: u64,
    }

    /// SplitMix64: a tiny deterministic generator, so tests need no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// A planned call: who, what, its interval, and when (if ever) it takes effect.
    struct Planned {
        op: KvOp,
        effect: Option<u64>,
        reported: bool,
    }

    /// A history produced by a real sequential register: each client runs operations one after
    /// another with random latencies, each takes effect at a distinct instant inside its
    /// interval, and results come from applying them in that order. Some operations are
    /// indeterminate (unknown result, possibly never completed; possibly never applied).
    fn generate(seed: u64, workload: &Workload) -> Vec<KvOp> {
        const MAX_CLIENTS: u64 = 16;
        let clients = (workload.clients as u64).clamp(1, MAX_CLIENTS);
        let mut rng = Rng(seed);
        let mut free_at = vec![0u64; clients as usize];
        let mut written: Vec<Vec<String>> = vec![Vec::new(); workload.keys.max(1)];
        let mut planned = Vec::new();
        for i in 0..workload.ops {
            let client = rng.below(clients);
            let start = free_at[client as usize] + rng.below(3);
            let effect = start + rng.below(10);
            let end = effect + rng.below(10);
            free_at[client as usize] = end + 1;
            let k = rng.below(written.len() as u64) as usize;
            let input = random_input(&mut rng, format!("key{k}"), format!("v{i}"), &mut written[k]);
            // Times are scaled so effects are distinct (client breaks ties) and inside intervals.
            let (invoke, effect, complete) =
                (start * MAX_CLIENTS, effect * MAX_CLIENTS + client, end * MAX_CLIENTS + MAX_CLIENTS - 1);
            let indeterminate = rng.below(100) < workload.indeterminate_percent;
            let op = Operation { client, input, invoke, output: None, complete: Some(complete) };
            let mut plan = Planned { op, effect: Some(effect), reported: !indeterminate };
            if indeterminate {
                plan.effect = plan.effect.filter(|_| rng.below(2) == 0);
                plan.op.complete = plan.op.complete.filter(|_| rng.below(2) == 0);
            }
            planned.push(plan);
        }
        execute(&mut planned);
        planned.into_iter().map(|p| p.op).collect()
    }

    fn random_input(rng: &mut Rng, key: String, value: String, written: &mut Vec<String>) -> KvInput {
        match rng.below(100) {
            0..=39 => KvInput::Get { key },
            40..=69 => {
                written.push(value.clone());
                KvInput::Put { key, value }
            }
            70..=94 => {
                let recent = written.len().saturating_sub(3);
                let pick = rng.below(written.len() as u64 - recent as u64 + 1) as usize;
                let expected = written.get(recent + pick).cloned();
                written.push(value.clone());
                KvInput::Cas { key, expected, value }
            }
            _ => KvInput::Delete { key },
        }
    }

    /// Apply the planned operations that take effect in effect order, filling in the results
    /// of the reported ones.
    fn execute(planned: &mut [Planned]) {
        let mut order: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].effect.is_some()).collect();
        order.sort_by_key(|&i| planned[i].effect);
        let mut store: HashMap<String, Option<String>> = HashMap::new();
        for i in order {
            let plan = &mut planned[i];
            let state = store.entry(plan.op.input.key().to_owned()).or_default();
            let (next, output) = apply(state, &plan.op.input);
            *state = next;
            if plan.reported {
                plan.op.output = Some(output);
            }
        }
    }

    fn apply(state: &Option<String>, input: &KvInput) -> (Option<String>, KvOutput) {
        match input {
            KvInput::Get { .. } => (state.clone(), KvOutput::Value(state.clone())),
            KvInput::Put { value, .. } => (Some(value.clone()), KvOutput::Written),
            KvInput::Delete { .. } => (None, KvOutput::Written),
            KvInput::Cas { expected, value, .. } if expected == state => (Some(value.clone()), KvOutput::Written),
            KvInput::Cas { .. } => (state.clone(), KvOutput::CasFailed),
        }
    }

    #[test]
    fn generated_history_checks_ok() {
        for seed in 0..50 {
            let history = generate(seed, &Workload { ops: 200, keys: 2, clients: 5, indeterminate_percent: 10 });
            let verdict = verdict(&history);
            assert!(matches!(verdict, Verdict::Ok), "seed {seed}: {}", describe(&verdict));
        }
    }

    /// 10,000 operations over 10 keys from 8 clients, 3% indeterminate. Prints the time taken
    /// (see it with `--nocapture`); no timing assertion, as test machines are noisy.
    #[test]
    fn ten_thousand_operations() {
        let history = generate(42, &Workload { ops: 10_000, keys: 10, clients: 8, indeterminate_percent: 3 });
        let start = Instant::now();
        let verdict = verdict(&history);
        eprintln!("checked {} ops over 10 keys, 8 clients in {:?}", history.len(), start.elapsed());
        assert!(matches!(verdict, Verdict::Ok), "{}", describe(&verdict));
    }

    /// The same size on a single hot key, where every client contends and the pending
    /// indeterminate operations pile up. Ignored: slow in debug builds.
    #[test]
    #[ignore]
    fn ten_thousand_operations_on_one_key() {
        let history = generate(43, &Workload { ops: 10_000, keys: 1, clients: 8, indeterminate_percent: 3 });
        let start = Instant::now();
        let verdict = verdict(&history);
        eprintln!("checked {} ops on 1 key, 8 clients in {:?}", history.len(), start.elapsed());
        assert!(matches!(verdict, Verdict::Ok), "{}", describe(&verdict));
    }

    /// Whether `history` is linearizable, by trying every subset of its indeterminate
    /// operations and every real-time-respecting order: the specification, for tiny histories.
    fn brute_force(history: &[KvOp]) -> bool {
        let (required, optional): (Vec<usize>, Vec<usize>) =
            (0..history.len()).partition(|&i| history[i].output.is_some() && history[i].complete.is_some());
        (0..1u32 << optional.len()).any(|mask| {
            let mut chosen = required.clone();
            chosen.extend((0..optional.len()).filter(|b| mask & (1 << b) != 0).map(|b| optional[b]));
            orders_exist(history, &mut chosen, &None)
        })
    }

    fn orders_exist(history: &[KvOp], remaining: &mut Vec<usize>, state: &Option<String>) -> bool {
        if remaining.is_empty() {
            return true;
        }
        for i in 0..remaining.len() {
            let o = remaining[i];
            if remaining.iter().any(|&p| precedes(&history[p], &history[o])) {
                continue;
            }
            let Some(next) = KvModel.step(state, &history[o].input, history[o].output.as_ref()) else {
                continue;
            };
            remaining.remove(i);
            let found = orders_exist(history, remaining, &next);
            remaining.insert(i, o);
            if found {
                return true;
            }
        }
        false
    }

    /// Real-time order, with a completion before the invoke clamped as the checker does.
    fn precedes(a: &KvOp, b: &KvOp) -> bool {
        a.complete.is_some_and(|c| c.max(a.invoke) < b.invoke)
    }

    /// A random operation on one key with a random (often impossible) result.
    fn arbitrary_op() -> impl Strategy<Value = KvOp> {
        (0u8..4, 0usize..3, 0usize..3, 0u64..12, 0u64..6, any::<bool>(), 0u8..6, 0u64..3).prop_map(
            |(kind, value, expected, invoke, duration, ok, certainty, client)| {
                let values = [None, Some("a"), Some("b")];
                let value_of = |i: usize| values[i].unwrap_or("c");
                let interval = (invoke, invoke + duration);
                let mut op = match kind {
                    0 => get(client, "k", interval, values[value]),
                    1 => put(client, "k", value_of(value), interval),
                    2 => cas(client, "k", values[expected], value_of(value), interval, ok),
                    _ => delete(client, "k", interval),
                };
                match certainty {
                    0 => op = unknown(op, None),
                    1 => op = unknown(op, Some(invoke + duration)),
                    _ => {}
                }
                op
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn agrees_with_brute_force_on_tiny_histories(history in prop::collection::vec(arbitrary_op(), 0..8)) {
            let verdict = verdict(&history);
            prop_assert!(!matches!(verdict, Verdict::Timeout));
            prop_assert_eq!(matches!(verdict, Verdict::Ok), brute_force(&history), "{:#?}", history);
        }

        #[test]
        fn real_executions_are_linearizable(
            seed in any::<u64>(),
            ops in 0usize..150,
            keys in 1usize..4,
            clients in 1usize..8,
            indeterminate_percent in 0u64..20,
        ) {
            let history = generate(seed, &Workload { ops, keys, clients, indeterminate_percent });
            let verdict = verdict(&history);
            prop_assert!(matches!(verdict, Verdict::Ok), "{}", describe(&verdict));
        }

        #[test]
        fn a_read_of_a_never_written_value_is_illegal(
            seed in any::<u64>(),
            ops in 1usize..150,
            keys in 1usize..4,
            clients in 1usize..8,
            indeterminate_percent in 0u64..20,
            pick in any::<prop::sample::Index>(),
        ) {
            let mut history = generate(seed, &Workload { ops, keys, clients, indeterminate_percent });
            let reads: Vec<usize> = (0..history.len())
                .filter(|&i| matches!(history[i].input, KvInput::Get { .. }) && history[i].output.is_some())
                .collect();
            prop_assume!(!reads.is_empty());
            let read = reads[pick.index(reads.len())];
            history[read].output = Some(KvOutput::Value(Some("never written".into())));
            match verdict(&history) {
                Verdict::Illegal(c) => prop_assert_eq!(c.partition.as_str(), history[read].input.key()),
                other => prop_assert!(false, "expected Illegal, got {}", describe(&other)),
            }
        }
    }
}
