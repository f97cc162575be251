#![allow(clippy::unwrap_used)]

use super::*;
use crate::Rng;

fn check(history: &History) -> Result<Checked, Error> {
    Checker::default().check(history)
}

fn counterexample(history: &History) -> Counterexample {
    match check(history) {
        Err(Error::NotLinearizable(c)) => *c,
        other => panic!("expected NotLinearizable, got {other:?}"),
    }
}

#[test]
fn accepts_a_sequential_history() {
    let mut h = History::new();
    h.get_absent(1, "k", 0, Some(1));
    h.put(1, "k", "a", 2, Some(3));
    h.get(2, "k", "a", 4, Some(5));
    h.put(2, "k", "b", 6, Some(7));
    h.get(1, "k", "b", 8, Some(9));
    h.delete(1, "k", 10, Some(11));
    h.get_absent(2, "k", 12, Some(13));
    let checked = check(&h).unwrap();
    assert_eq!(checked.operations, 7);
    assert_eq!(checked.keys, 1);
}

#[test]
fn accepts_overlapping_operations_in_either_order() {
    // Two puts overlap; two reads after both see them in the one order that is
    // possible for both (b last), and a read overlapping both sees a.
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(10));
    h.put(2, "k", "b", 5, Some(15));
    h.get(3, "k", "a", 1, Some(12));
    h.get(3, "k", "b", 16, Some(20));
    h.get(4, "k", "b", 17, Some(21));
    check(&h).unwrap();

    // A read overlapping a put may see the value before it, or the put's.
    let mut before = History::new();
    before.put(1, "k", "a", 0, Some(1));
    before.put(1, "k", "b", 2, Some(10));
    before.get(2, "k", "a", 3, Some(4));
    before.get(2, "k", "b", 5, Some(6));
    check(&before).unwrap();
}

#[test]
fn equal_times_count_as_overlapping() {
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(5));
    h.get_absent(2, "k", 5, Some(9));
    check(&h).unwrap();
}

#[test]
fn rejects_a_stale_read_after_a_completed_write() {
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(1));
    h.put(1, "k", "b", 2, Some(3));
    h.get(2, "k", "a", 4, Some(5));
    let c = counterexample(&h);
    assert_eq!(c.key, b"k");
    assert_eq!(c.linearized, vec![0, 1]);
    assert_eq!(c.state.as_deref(), Some(&b"b"[..]));
    let stuck: Vec<usize> = c.stuck.iter().map(|s| s.index).collect();
    assert_eq!(stuck, vec![2]);
    assert_eq!(c.stuck[0].reason, StuckReason::ReadsOtherValue);
    let message = c.to_string();
    assert!(message.contains("key \"k\""), "{message}");
    assert!(message.contains("get -> \"a\""), "{message}");
}

#[test]
fn rejects_reading_absent_after_a_completed_put() {
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(1));
    h.get_absent(2, "k", 2, Some(3));
    counterexample(&h);
}

#[test]
fn rejects_a_value_never_written() {
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(10));
    h.get(2, "k", "zzz", 1, Some(9));
    let c = counterexample(&h);
    assert!(c.stuck.iter().any(|s| s.index == 1));
}

#[test]
fn rejects_two_reads_that_see_writes_in_opposite_orders() {
    // a and b overlap, so either order is fine, but not both orders at once:
    // client 3 sees a then b, client 4 sees b then a, all after both puts began
    // and every read returns before the next of its client starts.
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(100));
    h.put(2, "k", "b", 0, Some(100));
    h.get(3, "k", "a", 10, Some(20));
    h.get(3, "k", "b", 30, Some(40));
    h.get(4, "k", "b", 10, Some(20));
    h.get(4, "k", "a", 30, Some(40));
    counterexample(&h);

    // The same reads by one client each, without the crossing pair, are fine.
    let mut ok = History::new();
    ok.put(1, "k", "a", 0, Some(100));
    ok.put(2, "k", "b", 0, Some(100));
    ok.get(3, "k", "a", 10, Some(20));
    ok.get(3, "k", "b", 30, Some(40));
    ok.get(4, "k", "b", 10, Some(35));
    check(&ok).unwrap();
}

#[test]
fn an_indeterminate_write_may_take_effect_later() {
    // The put of b never answered; a read long after sees it.
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(1));
    h.put(2, "k", "b", 2, None);
    h.get(3, "k", "a", 10, Some(11));
    h.get(3, "k", "b", 1000, Some(1001));
    h.get(4, "k", "b", 2000, Some(2001));
    let checked = check(&h).unwrap();
    assert_eq!(checked.indeterminate, 1);
}

#[test]
fn an_indeterminate_delete_may_take_effect_later() {
    let mut h = History::new();
    h.get_absent(2, "k", 0, Some(1));
    h.put(1, "k", "a", 2, Some(3));
    h.delete(1, "k", 50, None);
    h.get(2, "k", "a", 55, Some(56));
    h.get_absent(2, "k", 60, Some(61));
    check(&h).unwrap();
}

#[test]
fn an_indeterminate_write_may_never_take_effect() {
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(1));
    h.put(2, "k", "b", 2, None);
    h.delete(2, "k", 3, None);
    h.get(3, "k", "a", 10, Some(11));
    h.get(3, "k", "a", 1000, Some(1001));
    check(&h).unwrap();
}

#[test]
fn an_indeterminate_write_cannot_take_effect_before_its_call() {
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(1));
    h.get(3, "k", "b", 10, Some(11));
    h.put(2, "k", "b", 20, None);
    counterexample(&h);
}

#[test]
fn an_indeterminate_write_takes_effect_once() {
    // Seen, then overwritten, then seen again: it cannot take effect twice.
    let mut h = History::new();
    h.put(1, "k", "b", 0, None);
    h.get(2, "k", "b", 10, Some(11));
    h.put(3, "k", "c", 20, Some(21));
    h.get(2, "k", "b", 30, Some(31));
    counterexample(&h);
}

#[test]
fn an_unobserved_indeterminate_write_is_left_out_and_an_observed_one_kept() {
    // Many unanswered writes nobody read: the search does not try them at all.
    let mut h = History::new();
    for i in 0..200u64 {
        h.put(i, "k", format!("lost{i}"), i, None);
        h.delete(i, "k", i, None);
    }
    h.put(1, "k", "a", 0, Some(1));
    h.get(2, "k", "a", 300, Some(301));
    let checked = check(&h).unwrap();
    assert_eq!(checked.indeterminate, 400);
    assert!(checked.steps < 10, "{checked:?}");
    // One of them observed, then the value before it again: it took effect, and
    // nothing after explains "a" again.
    h.get(3, "k", "lost7", 302, Some(303));
    h.get(3, "k", "a", 304, Some(305));
    let c = counterexample(&h);
    assert!(c.linearized.contains(&14), "{c}");
}

#[test]
fn an_indeterminate_write_of_a_value_also_written_elsewhere_stays_free() {
    // The read of b that overlaps the unanswered put of b is explained by the
    // first put of b: the unanswered one need not take effect before that read
    // responds (if it had to, the read of c could not follow).
    let mut h = History::new();
    h.put(1, "k", "b", 0, Some(1));
    h.get(2, "k", "b", 2, Some(10));
    h.put(1, "k", "c", 3, Some(4));
    h.put(3, "k", "b", 5, None);
    h.get(2, "k", "c", 11, Some(12));
    check(&h).unwrap();
}

#[test]
fn reads_without_a_response_are_ignored() {
    let mut h = History::new();
    h.put(1, "k", "a", 0, Some(1));
    h.get(2, "k", "never", 2, None);
    let checked = check(&h).unwrap();
    assert_eq!(checked.operations, 1);
}

#[test]
fn keys_are_checked_separately_and_the_failing_one_is_named() {
    let mut h = History::new();
    h.put(1, "x", "1", 0, Some(1));
    h.put(1, "y", "1", 0, Some(1));
    h.get(2, "x", "1", 2, Some(3));
    h.get_absent(2, "y", 2, Some(3));
    let c = counterexample(&h);
    assert_eq!(c.key, b"y");
    // A read of x seeing y's value would be wrong on x too.
    let mut wrong = History::new();
    wrong.put(1, "x", "1", 0, Some(1));
    wrong.put(1, "y", "2", 0, Some(1));
    wrong.get(2, "x", "2", 2, Some(3));
    assert_eq!(counterexample(&wrong).key, b"x");
}

#[test]
fn a_response_before_its_call_is_an_error() {
    let mut h = History::new();
    h.put(1, "k", "a", 10, Some(5));
    assert!(matches!(
        check(&h),
        Err(Error::ResponseBeforeCall { index: 0, .. })
    ));
}

#[test]
fn a_search_past_its_budget_is_undecided() {
    // Forty writes of two values, all without a response, and more alternations
    // of reads between the two than there are writes: not linearizable, but only
    // a search of very many subsets of the writes finds that out.
    let mut h = History::new();
    for i in 0..40u64 {
        h.put(i, "k", if i % 2 == 0 { "a" } else { "b" }, 0, None);
    }
    for i in 0..45u64 {
        h.get(
            100,
            "k",
            if i % 2 == 0 { "a" } else { "b" },
            10 + 2 * i,
            Some(11 + 2 * i),
        );
    }
    let result = Checker::default().max_steps_per_key(1000).check(&h);
    assert!(matches!(result, Err(Error::Undecided { .. })), "{result:?}");
    let result = Checker::default().max_cache_bytes_per_key(10_000).check(&h);
    assert!(matches!(result, Err(Error::Undecided { .. })), "{result:?}");
}

#[test]
fn binary_values_are_shown_as_hex() {
    let mut h = History::new();
    h.put(1, [0u8, 1], [0xffu8, 0], 0, Some(1));
    h.get_absent(2, [0u8, 1], 2, Some(3));
    let message = check(&h).unwrap_err().to_string();
    assert!(message.contains("0x0001"), "{message}");
    assert!(message.contains("0xff00"), "{message}");
}

/// A history from a real sequential run of a register per key: each operation
/// takes effect at its own moment (10 ticks apart), and its call and response
/// lie at random distances around it, so many overlap. Some puts get no response
/// (half of those never took effect). Linearizable by construction.
fn generated(seed: u64, keys: u64, ops: u64) -> History {
    let mut rng = Rng::new(seed);
    let mut state: Vec<Option<Vec<u8>>> = vec![None; keys as usize];
    let mut h = History::new();
    for i in 0..ops {
        let at = 1_000 + 10 * i;
        let call = at - rng.below(60);
        let response = at + rng.below(60);
        let k = rng.below(keys);
        let key = format!("key{k}");
        let client = rng.below(16);
        match rng.below(10) {
            0..=3 => {
                let value = format!("v{i}");
                if rng.below(20) == 0 {
                    if rng.coin() {
                        state[k as usize] = Some(value.clone().into_bytes());
                    }
                    h.put(client, &key, &value, call, None);
                } else {
                    state[k as usize] = Some(value.clone().into_bytes());
                    h.put(client, &key, &value, call, Some(response));
                }
            }
            4 => {
                state[k as usize] = None;
                h.delete(client, &key, call, Some(response));
            }
            _ => h.push(Operation {
                client,
                key: key.into_bytes(),
                call,
                response: Some(response),
                kind: Kind::Get(state[k as usize].clone()),
            }),
        }
    }
    h
}

/// A read whose value is impossible: a value put by a write that, by real time,
/// precedes another completed write that precedes the read.
fn mutate(history: &History, rng: &mut Rng) -> Option<History> {
    let ops = history.operations();
    let mut reads: Vec<usize> = (0..ops.len())
        .filter(|&i| matches!(ops[i].kind, Kind::Get(_)))
        .collect();
    // Try reads in random order until one has such a stale value.
    for i in (1..reads.len()).rev() {
        reads.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for read in reads {
        let r = &ops[read];
        let before = |op: &Operation, t: u64| op.response.is_some_and(|resp| resp < t);
        let stale = ops.iter().find_map(|p| {
            let Kind::Put(value) = &p.kind else {
                return None;
            };
            let overwritten = ops.iter().any(|w| {
                w.key == r.key
                    && w.kind.is_write()
                    && w.kind != p.kind
                    && before(p, w.call)
                    && before(w, r.call)
            });
            (p.key == r.key && overwritten).then(|| value.clone())
        });
        let Some(stale) = stale else { continue };
        let mut mutated = History::new();
        for (i, op) in ops.iter().enumerate() {
            let mut op = op.clone();
            if i == read {
                op.kind = Kind::Get(Some(stale.clone()));
            }
            mutated.push(op);
        }
        return Some(mutated);
    }
    None
}

#[test]
fn random_histories_of_a_real_run_are_linearizable_and_a_stale_read_is_not() {
    for seed in 0..40 {
        let history = generated(seed, 3, 600);
        if let Err(err) = check(&history) {
            panic!("seed {seed}: {err}");
        }
        let mut rng = Rng::new(seed ^ 0xdead);
        let mutated = mutate(&history, &mut rng).unwrap();
        match check(&mutated) {
            Err(Error::NotLinearizable(_)) => {}
            other => panic!("seed {seed}: mutated history gave {other:?}"),
        }
        // A value never written, in a random read.
        let mut never = history.clone();
        let reads: Vec<usize> = (0..never.len())
            .filter(|&i| matches!(never.operations()[i].kind, Kind::Get(_)))
            .collect();
        let read = reads[rng.below(reads.len() as u64) as usize];
        never.operations[read].kind = Kind::Get(Some(b"never written".to_vec()));
        assert!(
            matches!(check(&never), Err(Error::NotLinearizable(_))),
            "seed {seed}"
        );
    }
}

#[test]
fn thousands_of_operations_on_one_key_are_checked_quickly() {
    let history = generated(99, 1, 4_000);
    let start = std::time::Instant::now();
    let checked = check(&history).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(checked.keys, 1);
    // Not a timed assert on the machine: the step count is what is bounded (about
    // 40 per operation here, with a dozen operations overlapping at any moment).
    assert!(
        checked.steps < 100 * checked.operations as u64,
        "{checked:?} in {elapsed:?}"
    );
    let mutated = mutate(&history, &mut Rng::new(5)).unwrap();
    let start = std::time::Instant::now();
    let result = check(&mutated);
    eprintln!(
        "linearizable: {checked:?} in {elapsed:?}; mutated: {:?}",
        start.elapsed()
    );
    assert!(matches!(result, Err(Error::NotLinearizable(_))));
}

#[test]
fn the_recorder_stamps_from_one_clock() {
    let recorder = std::sync::Arc::new(Recorder::new());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let recorder = std::sync::Arc::clone(&recorder);
            std::thread::spawn(move || {
                let call = recorder.now();
                let key = format!("k{t}");
                recorder.record(t, &key, Kind::Put(vec![1]), call, Some(recorder.now()));
                let call = recorder.now();
                recorder.record(
                    t,
                    &key,
                    Kind::Get(Some(vec![1])),
                    call,
                    Some(recorder.now()),
                );
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let history = recorder.history();
    assert_eq!(history.len(), 8);
    assert_eq!(check(&history).unwrap().keys, 4);
}
