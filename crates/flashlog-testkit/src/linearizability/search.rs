//! The search of one key's sub-history: Wing and Gong's backtracking over the
//! operations that may take effect next, with Lowe's memo of the configurations
//! (operations taken, register value) already searched.
//!
//! The invocations and responses, sorted by time, form a doubly linked list. The
//! search walks it from the front: an invocation is an operation that may take
//! effect now (nothing still in the list responded before it was invoked); it is
//! *taken* if the register allows it and the configuration after it was never
//! searched, which unlinks its invocation and its response, and the walk restarts
//! from the front. Reaching a response means its operation must take effect before
//! anything later and could not: the last operation taken is put back and the walk
//! goes on after it. The history is linearizable once every operation with a
//! response is taken (writes without one can all take effect at the end, where
//! nothing observes them); it is not once there is nothing left to put back.

use std::collections::HashMap;

use crate::Rng;

use super::{Counterexample, Error, Kind, Operation, Stuck, StuckReason};

/// The register's value: an interned value, `None` for absent.
type State = Option<u32>;

/// How much one key's search may spend before giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Steps (operations tried, responses met).
    pub(crate) steps: u64,
    /// Memory of the memo, in bytes.
    pub(crate) cache_bytes: usize,
}

/// What one operation does to the register.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Sets it (a put: `Some`, a delete: `None`).
    Write(State),
    /// Requires it to hold this value.
    Read(State),
}

impl Step {
    /// The register after this step from `state`, or `None` if it cannot be taken.
    fn apply(self, state: State) -> Option<State> {
        match self {
            Step::Write(next) => Some(next),
            Step::Read(seen) => (seen == state).then_some(state),
        }
    }
}

/// One operation of the key.
#[derive(Debug, Clone, Copy)]
struct KeyOp {
    /// Its position in the whole history.
    index: usize,
    step: Step,
    /// Its response; `None`: it may take effect at any time after its call, or
    /// never.
    response: Option<u64>,
}

/// The end of the linked list.
const END: usize = usize::MAX;
/// The list's head node (before the first event).
const HEAD: usize = 0;

/// How a search ended (short of running out of budget).
enum Outcome {
    /// Every operation with a response was taken; the steps it took.
    Linearizable(u64),
    /// Nothing was left to put back; the most operations taken at any dead end.
    Failed {
        /// That number.
        deepest: usize,
    },
    /// Stopped at the dead end it was asked to explain.
    Explained(Box<Counterexample>),
}

/// Lowe's memo: the configurations (operations taken, register) already searched.
/// Keyed by a fingerprint of the set (the XOR of a random word per operation,
/// kept up to date as operations are taken and put back), so a lookup costs no
/// hashing of the whole set; the sets themselves are compared exactly.
#[derive(Default)]
struct Memo {
    buckets: HashMap<(u64, State), Vec<Box<[u64]>>>,
    /// Memory taken, roughly, in bytes.
    bytes: usize,
}

impl Memo {
    /// Records the configuration; `false` if it was already there.
    fn insert(&mut self, fingerprint: u64, state: State, taken: &[u64]) -> bool {
        let bucket = self.buckets.entry((fingerprint, state)).or_default();
        if bucket.iter().any(|seen| **seen == *taken) {
            return false;
        }
        bucket.push(taken.into());
        self.bytes += taken.len() * 8 + 64;
        true
    }
}

/// One key's operations, ready to search.
pub(crate) struct KeySearch<'a> {
    history: &'a [Operation],
    ops: Vec<KeyOp>,
    /// Per node (0 is the head, then one per event in time order): its operation.
    op_of: Vec<usize>,
    /// Per node: whether it is an invocation.
    is_call: Vec<bool>,
    /// Per invocation node: its response node.
    response_of: Vec<usize>,
    next: Vec<usize>,
    prev: Vec<usize>,
    values: Vec<&'a [u8]>,
    /// Per operation: a random word, for the memo's fingerprints.
    zobrist: Vec<u64>,
}

impl<'a> KeySearch<'a> {
    /// Prepares the operations at `indices` of `history` (all of one key, none a
    /// read without a response, none responding before its call).
    pub(crate) fn new(history: &'a [Operation], indices: &[usize]) -> KeySearch<'a> {
        let mut interned: HashMap<&'a [u8], u32> = HashMap::new();
        let mut values: Vec<&'a [u8]> = Vec::new();
        let mut intern = |value: &'a [u8]| -> u32 {
            *interned.entry(value).or_insert_with(|| {
                values.push(value);
                // As many values as operations, far below u32::MAX in any history
                // that fits in memory.
                u32::try_from(values.len() - 1).unwrap_or(u32::MAX)
            })
        };
        // A write without a response that no read responding after its call
        // observed (its put's value, or absent for a delete) can always take
        // effect last, where nothing sees it: it is left out, exactly (the history
        // is linearizable with it when it is without it), and the search does not
        // try it at every step.
        let mut observed: HashMap<Option<&'a [u8]>, Vec<u64>> = HashMap::new();
        for &index in indices {
            let op = &history[index];
            if let (Kind::Get(seen), Some(response)) = (&op.kind, op.response) {
                observed.entry(seen.as_deref()).or_default().push(response);
            }
        }
        for responses in observed.values_mut() {
            responses.sort_unstable();
        }
        let mut ops: Vec<KeyOp> = Vec::with_capacity(indices.len());
        for &index in indices {
            let op = &history[index];
            if op.response.is_none() {
                let value = match &op.kind {
                    Kind::Put(value) => Some(value.as_slice()),
                    _ => None,
                };
                let responses = observed.get(&value).map_or(&[][..], |r| r.as_slice());
                if responses.last().is_none_or(|&last| last < op.call) {
                    continue;
                }
            }
            let step = match &op.kind {
                Kind::Put(value) => Step::Write(Some(intern(value))),
                Kind::Delete => Step::Write(None),
                Kind::Get(seen) => Step::Read(seen.as_deref().map(&mut intern)),
            };
            ops.push(KeyOp {
                index,
                step,
                response: op.response,
            });
        }

        // (time, 0 for an invocation and 1 for a response, operation): at equal
        // times invocations come first, so operations that touch overlap.
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            events.push((history[op.index].call, 0, i));
            events.push((op.response.unwrap_or(u64::MAX), 1, i));
        }
        events.sort_unstable();

        let ops_len = ops.len();
        let nodes = events.len() + 1;
        let mut op_of = vec![END; nodes];
        let mut is_call = vec![false; nodes];
        let mut response_of = vec![END; nodes];
        let mut call_node = vec![END; ops.len()];
        for (e, &(_, kind, op)) in events.iter().enumerate() {
            let node = e + 1;
            op_of[node] = op;
            if kind == 0 {
                is_call[node] = true;
                call_node[op] = node;
            } else {
                response_of[call_node[op]] = node;
            }
        }
        let next = (0..nodes)
            .map(|n| if n + 1 < nodes { n + 1 } else { END })
            .collect();
        let prev = (0..nodes).map(|n| n.wrapping_sub(1)).collect();
        KeySearch {
            history,
            ops,
            op_of,
            is_call,
            response_of,
            next,
            prev,
            values,
            zobrist: {
                let mut rng = Rng::new(0x6c69_6e65_6172);
                (0..ops_len).map(|_| rng.next_u64()).collect()
            },
        }
    }

    /// Unlinks an invocation node and its response node.
    fn lift(&mut self, call: usize) {
        for node in [call, self.response_of[call]] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = n;
            if n != END {
                self.prev[n] = p;
            }
        }
    }

    /// Links them back (the reverse of the latest [`KeySearch::lift`] not undone).
    fn unlift(&mut self, call: usize) {
        for node in [self.response_of[call], call] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = node;
            if n != END {
                self.prev[n] = node;
            }
        }
    }

    /// Searches; returns the steps taken.
    ///
    /// A failed search is run a second time to explain itself: the search is
    /// deterministic, so the second run stops at the first dead end as deep as the
    /// deepest of the first (the first run keeps only that depth, so a search
    /// that succeeds after many small dead ends pays nothing for explanations).
    pub(crate) fn run(mut self, key: &[u8], budget: Budget) -> Result<u64, Error> {
        match self.search(key, budget, None)? {
            Outcome::Linearizable(steps) => Ok(steps),
            Outcome::Failed { deepest } => match self.search(key, budget, Some(deepest))? {
                Outcome::Explained(counterexample) => Err(Error::NotLinearizable(counterexample)),
                // Unreachable by determinism; an explanation of the start is
                // still true (the search failed from there).
                _ => Err(Error::NotLinearizable(Box::new(self.explain(
                    key,
                    &[],
                    None,
                    END,
                )))),
            },
            Outcome::Explained(counterexample) => Err(Error::NotLinearizable(counterexample)),
        }
    }

    /// The search itself; with `explain_at`, it stops at the first dead end with
    /// that many operations taken and explains it.
    fn search(
        &mut self,
        key: &[u8],
        budget: Budget,
        explain_at: Option<usize>,
    ) -> Result<Outcome, Error> {
        let mut taken = vec![0u64; self.ops.len().div_ceil(64)];
        let mut fingerprint = 0u64;
        let mut memo = Memo::default();
        // The invocation nodes taken, each with the register before it.
        let mut stack: Vec<(usize, State)> = Vec::new();
        let mut state: State = None;
        let mut definite_left = self.ops.iter().filter(|op| op.response.is_some()).count();
        let mut steps = 0u64;
        let mut deepest = 0;
        let mut entry = self.next[HEAD];
        while definite_left > 0 {
            steps += 1;
            if steps > budget.steps || memo.bytes > budget.cache_bytes {
                return Err(Error::Undecided {
                    key: key.to_vec(),
                    steps,
                    cache_bytes: memo.bytes,
                    operations: self.ops.len(),
                });
            }
            if entry != END && self.is_call[entry] {
                let op = self.op_of[entry];
                if let Some(after) = self.ops[op].step.apply(state) {
                    taken[op / 64] ^= 1 << (op % 64);
                    fingerprint ^= self.zobrist[op];
                    if memo.insert(fingerprint, after, &taken) {
                        stack.push((entry, state));
                        state = after;
                        self.lift(entry);
                        if self.ops[op].response.is_some() {
                            definite_left -= 1;
                        }
                        entry = self.next[HEAD];
                        continue;
                    }
                    taken[op / 64] ^= 1 << (op % 64);
                    fingerprint ^= self.zobrist[op];
                }
                entry = self.next[entry];
            } else {
                // A response (or, defensively, the end): its operation cannot be
                // taken now, so undo the latest choice.
                if explain_at == Some(stack.len()) {
                    let counterexample = self.explain(key, &stack, state, entry);
                    self.unwind(&mut stack);
                    return Ok(Outcome::Explained(Box::new(counterexample)));
                }
                deepest = deepest.max(stack.len());
                let Some((call, before)) = stack.pop() else {
                    return Ok(Outcome::Failed { deepest });
                };
                let op = self.op_of[call];
                taken[op / 64] ^= 1 << (op % 64);
                fingerprint ^= self.zobrist[op];
                state = before;
                self.unlift(call);
                if self.ops[op].response.is_some() {
                    definite_left += 1;
                }
                entry = self.next[call];
            }
        }
        Ok(Outcome::Linearizable(steps))
    }

    /// Puts every taken operation back (the list as [`KeySearch::new`] built it).
    fn unwind(&mut self, stack: &mut Vec<(usize, State)>) {
        while let Some((call, _)) = stack.pop() {
            self.unlift(call);
        }
    }

    /// The explanation of a dead end: the order taken so far, the register, and
    /// the operations that could have come next (every invocation before the
    /// response `stopped_at`), the one whose response it is last.
    fn explain(
        &self,
        key: &[u8],
        stack: &[(usize, State)],
        state: State,
        stopped_at: usize,
    ) -> Counterexample {
        let linearized: Vec<usize> = stack
            .iter()
            .map(|&(call, _)| self.ops[self.op_of[call]].index)
            .collect();
        let linearized_tail = linearized[linearized.len().saturating_sub(8)..]
            .iter()
            .map(|&index| self.history[index].clone())
            .collect();
        let blocking = (stopped_at != END).then(|| self.op_of[stopped_at]);
        let mut candidates = Vec::new();
        let mut node = self.next[HEAD];
        while node != END && node != stopped_at {
            if self.is_call[node] && Some(self.op_of[node]) != blocking {
                candidates.push(self.op_of[node]);
            }
            node = self.next[node];
        }
        candidates.extend(blocking);
        let stuck = candidates
            .into_iter()
            .map(|op| {
                let key_op = self.ops[op];
                let reason = match key_op.step.apply(state) {
                    Some(_) => StuckReason::DeadEndLater,
                    None => StuckReason::ReadsOtherValue,
                };
                Stuck {
                    index: key_op.index,
                    operation: self.history[key_op.index].clone(),
                    reason,
                }
            })
            .collect();
        Counterexample {
            key: key.to_vec(),
            operations: self.ops.len(),
            linearized,
            linearized_tail,
            state: state.map(|id| self.values[id as usize].to_vec()),
            stuck,
        }
    }
}
