//! Model-based test of the follower: random writes, rotations (lumberjack's names), gzip
//! compression of backups, deletion of old backups, truncation in place, restarts (with and
//! without a chunk lost in flight), checked against a model of what was written. Every line is
//! delivered exactly once — or at least once when a chunk was in flight at a restart — except
//! lines of files destroyed before they were read, and each of those files has a gap.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use kubetrail_tail::{FollowOptions, Follower, backup_name, fingerprint_of};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Append this many lines with these pad lengths.
    Write(Vec<usize>),
    /// Append half of a line; the next write finishes it.
    WritePartial(usize),
    Rotate,
    CompressOldest,
    DeleteOldest,
    Truncate,
    Tick(usize),
    Restart {
        lose_in_flight: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(0usize..400, 1..12).prop_map(Op::Write),
        1 => (0usize..200).prop_map(Op::WritePartial),
        3 => Just(Op::Rotate),
        1 => Just(Op::CompressOldest),
        1 => Just(Op::DeleteOldest),
        1 => Just(Op::Truncate),
        4 => (40usize..3000).prop_map(Op::Tick),
        1 => any::<bool>().prop_map(|lose_in_flight| Op::Restart { lose_in_flight }),
    ]
}

/// What was written, by file generation.
struct World {
    dir: PathBuf,
    active: PathBuf,
    next_line: u64,
    clock: i64,
    /// Lines of each generation, in order.
    generations: Vec<Vec<u64>>,
    /// Text of each generation's first line.
    first_lines: Vec<Option<Vec<u8>>>,
    /// Generation of the active file.
    current: usize,
    /// Backups on disk: (path, generation), oldest first.
    backups: Vec<(PathBuf, usize)>,
    destroyed: BTreeSet<usize>,
    /// How many lines of each generation a scan could see: losing those must leave a gap.
    /// (Lines written and destroyed between two scans may be invisible to any follower.)
    observed: BTreeMap<usize, usize>,
    partial: Option<(u64, String)>,
}

fn line(n: u64, pad: usize) -> String {
    format!("{{\"n\":{n},\"p\":\"{}\"}}\n", "x".repeat(pad))
}

impl World {
    fn new(dir: &Path) -> World {
        let active = dir.join("kubernetes.audit");
        std::fs::write(&active, b"").unwrap();
        World {
            dir: dir.to_path_buf(),
            active,
            next_line: 0,
            clock: 1_700_000_000_000,
            generations: vec![Vec::new()],
            first_lines: vec![None],
            current: 0,
            backups: Vec::new(),
            destroyed: BTreeSet::new(),
            observed: BTreeMap::new(),
            partial: None,
        }
    }

    /// A scan is about to look at the disk.
    fn observe(&mut self) {
        let on_disk: Vec<usize> = self
            .backups
            .iter()
            .map(|(_, g)| *g)
            .chain([self.current])
            .collect();
        for g in on_disk {
            let n = self.generations[g].len();
            let seen = self.observed.entry(g).or_default();
            *seen = (*seen).max(n);
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(&self.active).unwrap();
        f.write_all(bytes).unwrap();
    }

    fn finish_partial(&mut self) {
        if let Some((n, rest)) = self.partial.take() {
            self.append(rest.as_bytes());
            self.generations[self.current].push(n);
        }
    }

    fn new_line(&mut self, pad: usize) -> (u64, String) {
        let n = self.next_line;
        self.next_line += 1;
        let text = line(n, pad);
        if self.first_lines[self.current].is_none() {
            self.first_lines[self.current] = Some(text.clone().into_bytes());
        }
        (n, text)
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write(pads) => {
                self.finish_partial();
                let mut buf = String::new();
                for &p in pads {
                    let (n, text) = self.new_line(p);
                    buf.push_str(&text);
                    self.generations[self.current].push(n);
                }
                self.append(buf.as_bytes());
            }
            Op::WritePartial(pad) => {
                self.finish_partial();
                let (n, text) = self.new_line(*pad);
                let half = text.len() / 2;
                self.append(&text.as_bytes()[..half]);
                self.partial = Some((n, text[half..].to_string()));
            }
            Op::Rotate => {
                // lumberjack writes whole events: a rotation never splits one.
                self.finish_partial();
                self.clock += 1000;
                let at: DateTime<Utc> = Utc.timestamp_millis_opt(self.clock).unwrap();
                let backup = backup_name(&self.active, at, false);
                std::fs::rename(&self.active, &backup).unwrap();
                std::fs::write(&self.active, b"").unwrap();
                self.backups.push((backup, self.current));
                self.generations.push(Vec::new());
                self.first_lines.push(None);
                self.current = self.generations.len() - 1;
            }
            Op::CompressOldest => {
                if let Some((path, _)) = self
                    .backups
                    .iter_mut()
                    .find(|(p, _)| p.extension().is_none_or(|e| e != "gz"))
                {
                    let data = std::fs::read(&*path).unwrap();
                    let gz = PathBuf::from(format!("{}.gz", path.display()));
                    let mut enc = flate2::write::GzEncoder::new(
                        std::fs::File::create(&gz).unwrap(),
                        flate2::Compression::fast(),
                    );
                    enc.write_all(&data).unwrap();
                    enc.finish().unwrap();
                    std::fs::remove_file(&*path).unwrap();
                    *path = gz;
                }
            }
            Op::DeleteOldest => {
                if !self.backups.is_empty() {
                    let (path, generation) = self.backups.remove(0);
                    std::fs::remove_file(path).unwrap();
                    self.destroyed.insert(generation);
                }
            }
            Op::Truncate => {
                self.finish_partial();
                std::fs::write(&self.active, b"").unwrap();
                self.destroyed.insert(self.current);
                self.generations.push(Vec::new());
                self.first_lines.push(None);
                self.current = self.generations.len() - 1;
            }
            Op::Tick(_) | Op::Restart { .. } => {}
        }
        let _ = &self.dir;
    }
}

fn ids(data: &[u8]) -> Vec<u64> {
    data.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "delivered a broken line {:?}: {e}",
                    String::from_utf8_lossy(l)
                )
            });
            v["n"].as_u64().unwrap()
        })
        .collect()
}

fn run(ops: &[Op]) {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let checkpoint = tmp.path().join("checkpoint.json");
    let mut world = World::new(&logs);
    let open =
        |w: &World| Follower::open(&w.active, &checkpoint, FollowOptions::default()).unwrap();
    let mut follower = open(&world);
    let mut delivered: BTreeMap<u64, usize> = BTreeMap::new();
    let mut may_repeat: BTreeSet<u64> = BTreeSet::new();
    let mut gaps_seen: Vec<String> = Vec::new();

    let tick = |f: &mut Follower, max: usize, delivered: &mut BTreeMap<u64, usize>| {
        f.scan().unwrap();
        while let Some(chunk) = f.next_chunk(max).unwrap() {
            for n in ids(&chunk.data) {
                *delivered.entry(n).or_default() += 1;
            }
            f.commit(&chunk).unwrap();
        }
    };

    for op in ops {
        world.apply(op);
        match op {
            Op::Tick(max) => {
                world.observe();
                tick(&mut follower, *max, &mut delivered)
            }
            Op::Restart { lose_in_flight } => {
                if *lose_in_flight {
                    world.observe();
                    follower.scan().unwrap();
                    if let Some(chunk) = follower.next_chunk(500).unwrap() {
                        // Shipped, but the process died before the acknowledgement was recorded.
                        for n in ids(&chunk.data) {
                            *delivered.entry(n).or_default() += 1;
                            may_repeat.insert(n);
                        }
                    }
                }
                gaps_seen.extend(
                    follower
                        .pending_gaps()
                        .iter()
                        .map(|g| g.fingerprint.clone()),
                );
                follower = open(&world);
            }
            _ => {}
        }
    }
    world.finish_partial();
    for _ in 0..4 {
        world.observe();
        tick(&mut follower, 4096, &mut delivered);
    }
    gaps_seen.extend(
        follower
            .pending_gaps()
            .iter()
            .map(|g| g.fingerprint.clone()),
    );

    for (generation, lines) in world.generations.iter().enumerate() {
        let lost: Vec<(usize, u64)> = lines
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, n)| !delivered.contains_key(n))
            .collect();
        if lost.is_empty() {
            continue;
        }
        assert!(
            world.destroyed.contains(&generation),
            "lines {lost:?} of generation {generation} (still on disk) were never delivered"
        );
        let seen = world.observed.get(&generation).copied().unwrap_or(0);
        if lost.iter().all(|(i, _)| *i >= seen) {
            continue;
        }
        let fp = fingerprint_of(world.first_lines[generation].as_ref().unwrap()).unwrap();
        assert!(
            gaps_seen.contains(&fp),
            "generation {generation} lost {lost:?} without a gap"
        );
    }
    for (n, count) in &delivered {
        assert!(*n < world.next_line, "line {n} was never written");
        assert!(
            *count == 1 || may_repeat.contains(n),
            "line {n} delivered {count} times"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_follower_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}

#[test]
fn rotations_while_the_follower_is_away_are_all_read_in_order() {
    let ops = vec![
        Op::Write(vec![10, 20]),
        Op::Tick(100),
        Op::Write(vec![5; 30]),
        Op::Rotate,
        Op::Write(vec![5; 30]),
        Op::Rotate,
        Op::CompressOldest,
        Op::Write(vec![5; 3]),
        Op::Restart {
            lose_in_flight: true,
        },
        Op::Tick(64),
    ];
    run(&ops);
}
