//! The log against a `VecDeque` model: random append / batch / sync /
//! truncate_front / truncate_back / reopen / drop-without-close / crash operations,
//! with `read`, `iter_from`, `first_seq` and `last_seq` checked after each one.
//!
//! Runs on `flashlog_testkit::SimFs`; a crash copies every file as it is at that
//! moment (what a killed process leaves: everything written, synced or not,
//! `SimFs::snapshot`) and reopens the copy.
//! A failing case found here becomes a named `regression_*` test below.

use std::collections::VecDeque;
use std::sync::Arc;

use flashlog_testkit::SimFs;
use flashlog_wal::{Batch, Error, Op, Options, SyncPolicy, Visibility, Wal};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Append(u8, u16),
    Batch(Vec<(u8, u16)>),
    Sync,
    /// Truncate at `first + frac * (len + 1) / 256`.
    TruncateFront(u8),
    TruncateBack(u8),
    Reopen,
    DropWithoutClose,
    Crash,
}

fn action() -> impl Strategy<Value = Action> {
    let entry = (0u8..20, 0u16..200);
    prop_oneof![
        6 => entry.clone().prop_map(|(k, v)| Action::Append(k, v)),
        2 => prop::collection::vec(entry, 0..6).prop_map(Action::Batch),
        1 => Just(Action::Sync),
        1 => any::<u8>().prop_map(Action::TruncateFront),
        1 => any::<u8>().prop_map(Action::TruncateBack),
        1 => Just(Action::Reopen),
        1 => Just(Action::DropWithoutClose),
        1 => Just(Action::Crash),
    ]
}

type Record = (Op, Vec<u8>, Vec<u8>);

struct Model {
    first_seq: u64,
    entries: VecDeque<Record>,
    counter: u64,
}

impl Model {
    fn last_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64 - 1
    }

    fn at(&self, frac: u8) -> u64 {
        self.first_seq + u64::from(frac) * (self.entries.len() as u64 + 1) / 256
    }

    fn record(&mut self, key_len: u8, value_len: u16) -> Record {
        self.counter += 1;
        let op = if self.counter.is_multiple_of(5) {
            Op::Delete
        } else {
            Op::Put
        };
        let key = vec![self.counter as u8; usize::from(key_len)];
        let value = flashlog_testkit::payload::value_for(self.counter)
            .into_iter()
            .cycle()
            .take(usize::from(value_len))
            .collect();
        (op, key, value)
    }
}

fn open(fs: &SimFs, policy: SyncPolicy) -> Wal {
    let options = Options::default()
        .max_segment_size(512)
        .sync_policy(policy)
        .fs(Arc::new(fs.clone()));
    Wal::open("/log", options).expect("open")
}

fn check(wal: &Wal, model: &Model) {
    assert_eq!(wal.first_seq(), model.first_seq, "first_seq");
    assert_eq!(wal.last_seq(), model.last_seq(), "last_seq");
    let read: Vec<Record> = wal
        .iter_from(model.first_seq)
        .expect("iter_from(first_seq)")
        // The model holds what was appended: under `Manual`, the written edge.
        .visibility(Visibility::Written)
        .map(|e| {
            let e = e.expect("iterate");
            (e.op(), e.key().to_vec(), e.value().to_vec())
        })
        .collect();
    assert_eq!(
        read,
        Vec::from(model.entries.clone()),
        "iter_from(first_seq)"
    );
    for (at, record) in model.entries.iter().enumerate() {
        let seq = model.first_seq + at as u64;
        let e = wal.read(seq).expect("read");
        assert_eq!(
            (e.seq(), e.op(), e.key(), e.value()),
            (seq, record.0, &record.1[..], &record.2[..])
        );
    }
    assert!(matches!(
        wal.read(model.last_seq() + 1),
        Err(Error::SeqOutOfRange { .. })
    ));
    if model.first_seq > 1 {
        assert!(matches!(
            wal.read(model.first_seq - 1),
            Err(Error::SeqOutOfRange { .. })
        ));
        assert!(matches!(
            wal.iter_from(model.first_seq - 1),
            Err(Error::SeqOutOfRange { .. })
        ));
    }
}

fn run(policy: SyncPolicy, actions: &[Action]) {
    let mut fs = SimFs::new();
    let mut wal = Some(open(&fs, policy));
    let mut model = Model {
        first_seq: 1,
        entries: VecDeque::new(),
        counter: 0,
    };
    for action in actions {
        let log = wal.as_ref().expect("open");
        match action {
            Action::Append(k, v) => {
                let record = model.record(*k, *v);
                let seq = log.append(record.0, &record.1, &record.2).expect("append");
                assert_eq!(seq, model.last_seq() + 1);
                model.entries.push_back(record);
            }
            Action::Batch(entries) => {
                let mut batch = Batch::new();
                let records: Vec<Record> =
                    entries.iter().map(|&(k, v)| model.record(k, v)).collect();
                for record in &records {
                    batch.push(record.0, &record.1, &record.2);
                }
                let seqs = log.append_batch(&batch).expect("append_batch");
                assert_eq!(*seqs.start(), model.last_seq() + 1);
                assert_eq!(seqs.count(), records.len());
                model.entries.extend(records);
            }
            Action::Sync => log.sync().expect("sync"),
            Action::TruncateFront(frac) => {
                let seq = model.at(*frac);
                let segments = log.segments();
                let mut keep = 0;
                while keep + 1 < segments.len()
                    && segments[keep].first_seq + segments[keep].entries <= seq
                {
                    keep += 1;
                }
                let first = log.truncate_front(seq).expect("truncate_front");
                assert_eq!(
                    first, segments[keep].first_seq,
                    "truncate_front({seq}) over {segments:?}"
                );
                model.entries.drain(..(first - model.first_seq) as usize);
                model.first_seq = first;
            }
            Action::TruncateBack(frac) => {
                let seq = model.at(*frac);
                log.truncate_back(seq).expect("truncate_back");
                model.entries.truncate((seq - model.first_seq) as usize);
            }
            Action::Reopen => {
                wal.take().expect("open").close().expect("close");
                wal = Some(open(&fs, policy));
            }
            Action::DropWithoutClose => {
                drop(wal.take());
                wal = Some(open(&fs, policy));
            }
            Action::Crash => {
                // Everything written, synced or not, and no lock held.
                let copy = fs.snapshot();
                drop(wal.take());
                fs = copy;
                wal = Some(open(&fs, policy));
            }
        }
        check(wal.as_ref().expect("open"), &model);
    }
}

fn policy() -> impl Strategy<Value = SyncPolicy> {
    prop_oneof![
        Just(SyncPolicy::Always),
        Just(SyncPolicy::Manual),
        Just(SyncPolicy::Interval(std::time::Duration::from_millis(1))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn log_matches_the_vecdeque_model(
        policy in policy(),
        actions in prop::collection::vec(action(), 1..40),
    ) {
        run(policy, &actions);
    }
}

#[test]
fn regression_truncate_everything_then_append_across_reopen() {
    use Action::*;
    run(
        SyncPolicy::Manual,
        &[
            Append(3, 150),
            Append(3, 150),
            Append(3, 150),
            Append(3, 150),
            TruncateBack(0),
            Crash,
            Append(0, 0),
            TruncateFront(255),
            DropWithoutClose,
            Append(1, 1),
        ],
    );
}
