//! The checker: a history of operations, what counts as a violation, the
//! propagation figures, and the evidence printed with each violation.

use std::collections::HashMap;

use cachewright::tag;

use crate::workload::{READS, WRITES};
use crate::WORKERS;

// ---- the history ---------------------------------------------------------------------------

/// One operation as a worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op {
    pub(crate) process: u32,
    pub(crate) task: u32,
    pub(crate) write: bool,
    /// Index into [`READS`] or [`WRITES`].
    pub(crate) how: u8,
    pub(crate) id: u32,
    /// The version read, or the version the write made.
    pub(crate) version: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl Op {
    pub(crate) fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {}",
            if self.write { 'W' } else { 'R' },
            self.process,
            self.task,
            self.how,
            self.id,
            self.version,
            self.start,
            self.end
        )
    }

    pub(crate) fn parse(line: &str) -> Option<Op> {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() != 8 || !(f[0] == "W" || f[0] == "R") {
            return None;
        }
        Some(Op {
            write: f[0] == "W",
            process: f[1].parse().ok()?,
            task: f[2].parse().ok()?,
            how: f[3].parse().ok()?,
            id: f[4].parse().ok()?,
            version: f[5].parse().ok()?,
            start: f[6].parse().ok()?,
            end: f[7].parse().ok()?,
        })
    }

    pub(crate) fn describe(&self) -> String {
        let what = if self.write {
            WRITES[self.how as usize]
        } else {
            READS[self.how as usize]
        };
        format!(
            "{} {what}(id {}) -> v{} by process {} task {}, {}..{} us",
            if self.write { "write" } else { "read" },
            self.id,
            self.version,
            self.process,
            self.task,
            self.start,
            self.end
        )
    }
}

/// A time span, in Unix microseconds.
pub(crate) type Span = (u64, u64);

/// What the checker found.
#[derive(Debug, Default)]
pub(crate) struct Check {
    pub(crate) reads: usize,
    pub(crate) writes: usize,
    /// (read, the write of the highest version that ended before it).
    pub(crate) violations: Vec<(Op, Op)>,
    /// Reads of a version no write had started before the read ended.
    pub(crate) impossible: Vec<Op>,
    /// Propagation delays (us) of the writes counted.
    pub(crate) delays: Vec<u64>,
    /// (write, other process) pairs left out near a disturbance.
    pub(crate) excluded: usize,
    /// Pairs with no later read of the id in the other process.
    pub(crate) unobserved: usize,
    /// The median time between two reads of one id in one process (us).
    pub(crate) read_interval_p50: u64,
}

pub(crate) fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Whether the span `from..to` comes within 200 ms before or 1 s after one
/// of `disturbed` (a bus comes back, resubscribes and drops its process's
/// copies within that).
pub(crate) fn near_disturbance(from: u64, to: u64, disturbed: &[Span]) -> bool {
    disturbed
        .iter()
        .any(|&(a, b)| from < b.saturating_add(1_000_000) && to + 200_000 > a)
}

/// Checks `ops`; `disturbed` are the spans when the cache Redis or a bus was
/// not up (for the propagation figure only; violations count everywhere).
pub(crate) fn check(ops: &[Op], disturbed: &[Span]) -> Check {
    let mut c = Check::default();
    // Per id: writes by end (for violations) and by start (for consistency),
    // each with the highest version so far.
    let mut by_end: HashMap<u32, Vec<(u64, Op)>> = HashMap::new();
    let mut by_start: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    // Per (process, id): reads by start.
    let mut reads: HashMap<(u32, u32), Vec<Op>> = HashMap::new();
    for op in ops {
        if op.write {
            c.writes += 1;
            by_end.entry(op.id).or_default().push((op.end, *op));
            by_start
                .entry(op.id)
                .or_default()
                .push((op.start, op.version));
        } else {
            c.reads += 1;
            reads.entry((op.process, op.id)).or_default().push(*op);
        }
    }
    // Each list becomes (time, the op of the highest version up to it).
    for list in by_end.values_mut() {
        list.sort_by_key(|(t, _)| *t);
        for i in 1..list.len() {
            if list[i - 1].1.version > list[i].1.version {
                list[i].1 = list[i - 1].1;
            }
        }
    }
    for list in by_start.values_mut() {
        list.sort_unstable();
        for i in 1..list.len() {
            list[i].1 = list[i].1.max(list[i - 1].1);
        }
    }
    for list in reads.values_mut() {
        list.sort_by_key(|r| r.start);
    }
    for list in reads.values() {
        for r in list {
            if let Some(ended) = by_end.get(&r.id) {
                let n = ended.partition_point(|(end, _)| *end < r.start);
                if n > 0 && ended[n - 1].1.version > r.version {
                    c.violations.push((*r, ended[n - 1].1));
                }
            }
            let started = by_start.get(&r.id).map_or(0, |list| {
                let n = list.partition_point(|(start, _)| *start < r.end);
                if n > 0 {
                    list[n - 1].1
                } else {
                    0
                }
            });
            if r.version > started {
                c.impossible.push(*r);
            }
        }
    }
    c.violations.sort_by_key(|(r, _)| r.start);

    let mut intervals: Vec<u64> = reads
        .values()
        .flat_map(|list| list.windows(2).map(|w| w[1].start - w[0].start))
        .collect();
    intervals.sort_unstable();
    c.read_interval_p50 = percentile(&intervals, 50);

    for w in ops.iter().filter(|op| op.write) {
        for q in (0..WORKERS).filter(|&q| q != w.process) {
            let Some(list) = reads.get(&(q, w.id)) else {
                c.unobserved += 1;
                continue;
            };
            let from = list.partition_point(|r| r.start < w.end);
            let Some(seen) = list[from..].iter().find(|r| r.version >= w.version) else {
                c.unobserved += 1;
                continue;
            };
            if near_disturbance(w.start, seen.start, disturbed) {
                c.excluded += 1;
            } else {
                c.delays.push(seen.start - w.end);
            }
        }
    }
    c.delays.sort_unstable();
    c
}

/// An invalidation message as a worker's bystander saw it arrive.
pub(crate) struct Arrival {
    pub(crate) process: u32,
    pub(crate) arrived: u64,
    /// The invalidation's stamp.
    pub(crate) at: u64,
    pub(crate) items: Vec<String>,
}

impl Arrival {
    /// `MSG <process> <arrived> <message as JSON>`.
    pub(crate) fn parse(line: &str) -> Option<Arrival> {
        let mut f = line.strip_prefix("MSG ")?.splitn(3, ' ');
        let process = f.next()?.parse().ok()?;
        let arrived = f.next()?.parse().ok()?;
        let json = f.next()?;
        let at = json.split("\"at\":").nth(1)?;
        let at = at[..at.find(|c: char| !c.is_ascii_digit())?].parse().ok()?;
        let items = json.split("\"items\":[").nth(1)?;
        let items = items[..items.find(']')?]
            .split(',')
            .map(|i| i.trim_matches('"').to_string())
            .collect();
        Some(Arrival {
            process,
            arrived,
            at,
            items,
        })
    }
}

/// The message of write `w` as it reached process `q`'s bystander.
pub(crate) fn arrival_of<'a>(w: &Op, q: u32, arrivals: &'a [Arrival]) -> Option<&'a Arrival> {
    let entity = tag("item", &w.id);
    arrivals.iter().find(|a| {
        a.process == q && a.items.contains(&entity) && (w.start..=w.end + 1_000).contains(&a.at)
    })
}

/// For each write away from disturbances and each other process, when its
/// message reached that process's bystander, from the write's end (us,
/// sorted).
pub(crate) fn bus_delivery(ops: &[Op], arrivals: &[Arrival], disturbed: &[Span]) -> Vec<i64> {
    let mut out: Vec<i64> = ops
        .iter()
        .filter(|w| w.write)
        .flat_map(|w| {
            (0..WORKERS)
                .filter(move |&q| q != w.process)
                .map(move |q| (w, q))
        })
        .filter(|(w, _)| !near_disturbance(w.start, w.end, disturbed))
        .filter_map(|(w, q)| arrival_of(w, q, arrivals).map(|a| a.arrived as i64 - w.end as i64))
        .collect();
    out.sort_unstable();
    out
}

/// What a violation was: its kind, and the evidence.
pub(crate) fn explain(
    r: &Op,
    w: &Op,
    arrivals: &[Arrival],
    disturbed: &[Span],
) -> (&'static str, String) {
    if r.process == w.process {
        return ("in the writer's own process", String::new());
    }
    let near = near_disturbance(w.start, r.end, disturbed);
    // The write's own message: its entity's tag, stamped during the write.
    match arrival_of(w, r.process, arrivals) {
        Some(a) if a.arrived > r.start => (
            if near {
                "other process, before the bus brought the invalidation (near a disturbance)"
            } else {
                "other process, before the bus brought the invalidation"
            },
            format!(
                "the write's invalidation reached a bystander subscriber in process {} {} us after the write ended, {} us after this read began",
                r.process,
                a.arrived.saturating_sub(w.end),
                a.arrived - r.start
            ),
        ),
        Some(a) => (
            "other process, after the bus brought the invalidation",
            format!(
                "the write's invalidation reached a bystander subscriber in process {} {} us before this read began (the cache's own subscriber had not applied it yet)",
                r.process,
                r.start - a.arrived
            ),
        ),
        None => (
            if near {
                "other process, invalidation never seen on the bus (near a disturbance)"
            } else {
                "other process, invalidation never seen on the bus"
            },
            "no bus message of this write reached a bystander subscriber in the reader's process".to_string(),
        ),
    }
}

// ---- the checker on made-up histories ------------------------------------------------------

fn op(process: u32, write: bool, id: u32, version: u64, start: u64, end: u64) -> Op {
    Op {
        process,
        task: 0,
        write,
        how: 0,
        id,
        version,
        start,
        end,
    }
}

#[test]
fn the_checker_finds_a_stale_read_and_only_that() {
    let ops = [
        op(0, true, 1, 1, 100, 200),
        // Concurrent with the write: either version is fine.
        op(1, false, 1, 0, 150, 160),
        op(1, false, 1, 1, 190, 210),
        // Began after the write ended, returned the old version.
        op(1, false, 1, 0, 201, 230),
        // Another id is not concerned.
        op(1, false, 2, 0, 300, 310),
        op(0, true, 1, 2, 400, 500),
        op(1, false, 1, 2, 520, 530),
    ];
    let c = check(&ops, &[]);
    assert_eq!((c.reads, c.writes), (5, 2));
    assert_eq!(c.violations, vec![(ops[3], ops[0])]);
    assert!(c.impossible.is_empty());
    // Process 1 first reads write 1's version, after its end, at 520 (the
    // read at 201 returned the old one); write 2's at 520 too.
    assert_eq!(c.delays, vec![20, 320]);

    // A version that no write had begun to make is a recording bug.
    let c = check(
        &[op(0, false, 1, 1, 10, 20), op(0, true, 1, 1, 30, 40)],
        &[],
    );
    assert_eq!(c.impossible.len(), 1);

    // A write that ended late but made an older version than another that
    // ended before it: the highest version that ended is the bar.
    let ops = [
        op(0, true, 3, 2, 100, 150),
        op(1, true, 3, 1, 90, 300),
        op(1, false, 3, 1, 200, 210),
    ];
    assert_eq!(check(&ops, &[]).violations, vec![(ops[2], ops[0])]);

    // Near a disturbance, a write is left out of the propagation figure.
    let c = check(&ops[..1], &[(1_000, 2_000)]);
    assert_eq!((c.delays.len(), c.unobserved), (0, 1));
    let ops = [op(0, true, 3, 2, 100, 150), op(1, false, 3, 2, 160, 170)];
    assert_eq!(check(&ops, &[(1_000, 2_000)]).excluded, 1);
    assert_eq!(check(&ops, &[(5_000_000, 6_000_000)]).delays, vec![10]);
}
