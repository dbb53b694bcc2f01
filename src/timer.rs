//! A hierarchical timer wheel over `u64` ticks (the master uses milliseconds).
//!
//! | level | slot covers | level covers |
//! |------:|------------:|-------------:|
//! | 0     | 1 tick      | 64 ticks     |
//! | 1     | 64          | ~4 k         |
//! | 2     | ~4 k        | ~262 k       |
//! | 3     | ~262 k      | ~16.8 M      |
//! | 4     | ~16.8 M     | ~1.07 G      |
//! | 5     | ~1.07 G     | ~68.7 G      |
//!
//! An entry sits in the lowest level whose current window contains its deadline
//! (`level_for`: the highest bit in which `elapsed` and `when` differ, divided by 6). When a
//! higher-level slot comes due its entries cascade down. Each level keeps an `occupied` bit set,
//! so finding the next deadline is a rotate and a `trailing_zeros` per level. Deadlines farther
//! than the top level's window wait in an overflow list. Time is an argument: the wheel never
//! reads a clock.
//!
//! Entries with equal deadlines fire in insertion order.

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// The top level's window: deadlines farther than this never fit in the wheel.
#[cfg(test)]
const MAX_SPAN: u64 = (1 << (SLOT_BITS * LEVELS as u32)) - 1;

/// Handle of an inserted entry; stays unique even after the entry fired or was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    idx: u32,
    generation: u32,
}

#[derive(Debug)]
enum Place {
    Slot(usize, usize),
    Overflow,
    Pending,
}

#[derive(Debug)]
struct Entry<T> {
    when: u64,
    seq: u64,
    place: Place,
    item: T,
}

#[derive(Debug)]
struct Level {
    occupied: u64,
    slots: Vec<Vec<u32>>,
}

/// The wheel. `T` is whatever the owner wants back when a deadline passes.
#[derive(Debug)]
pub struct TimerWheel<T> {
    elapsed: u64,
    seq: u64,
    levels: Vec<Level>,
    overflow: Vec<u32>,
    /// Entries inserted with a deadline already reached: they fire at the next poll.
    pending: Vec<u32>,
    entries: Vec<(u32, Option<Entry<T>>)>,
    free: Vec<u32>,
    len: usize,
}

fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

/// True if `when` lies within the top level's current window.
fn fits(elapsed: u64, when: u64) -> bool {
    level_for(elapsed, when) < LEVELS
}

fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (level as u32 * SLOT_BITS)) & (SLOTS as u64 - 1)) as usize
}

impl<T> Default for TimerWheel<T> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose clock reads `now`.
    pub fn new(now: u64) -> Self {
        TimerWheel {
            elapsed: now,
            seq: 0,
            levels: (0..LEVELS)
                .map(|_| Level {
                    occupied: 0,
                    slots: vec![Vec::new(); SLOTS],
                })
                .collect(),
            overflow: Vec::new(),
            pending: Vec::new(),
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tick up to which everything has fired.
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Add an entry due at tick `when` (a past `when` fires at the next poll).
    pub fn insert(&mut self, when: u64, item: T) -> TimerKey {
        let seq = self.seq;
        self.seq += 1;
        let entry = Entry {
            when,
            seq,
            place: Place::Pending,
            item,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                let slot = &mut self.entries[i as usize];
                slot.0 = slot.0.wrapping_add(1);
                slot.1 = Some(entry);
                i
            }
            None => {
                self.entries.push((0, Some(entry)));
                (self.entries.len() - 1) as u32
            }
        };
        self.len += 1;
        self.place(idx);
        TimerKey {
            idx,
            generation: self.entries[idx as usize].0,
        }
    }

    fn entry_mut(&mut self, idx: u32) -> &mut Entry<T> {
        self.entries[idx as usize]
            .1
            .as_mut()
            .expect("wheel index points at a live entry")
    }

    /// File entry `idx` where its deadline says, relative to `elapsed`.
    fn place(&mut self, idx: u32) {
        let elapsed = self.elapsed;
        let when = self.entry_mut(idx).when;
        let place = if when <= elapsed {
            self.pending.push(idx);
            Place::Pending
        } else if !fits(elapsed, when) {
            self.overflow.push(idx);
            Place::Overflow
        } else {
            let level = level_for(elapsed, when);
            let slot = slot_for(when, level);
            let lv = &mut self.levels[level];
            lv.slots[slot].push(idx);
            lv.occupied |= 1 << slot;
            Place::Slot(level, slot)
        };
        self.entry_mut(idx).place = place;
    }

    /// Remove an entry before it fires. `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let (generation, slot) = self.entries.get_mut(key.idx as usize)?;
        if *generation != key.generation {
            return None;
        }
        let entry = slot.take()?;
        let list = match entry.place {
            Place::Slot(level, s) => {
                let lv = &mut self.levels[level];
                let list = &mut lv.slots[s];
                list.retain(|&i| i != key.idx);
                if list.is_empty() {
                    lv.occupied &= !(1 << s);
                }
                None
            }
            Place::Overflow => Some(&mut self.overflow),
            Place::Pending => Some(&mut self.pending),
        };
        if let Some(list) = list {
            list.retain(|&i| i != key.idx);
        }
        self.free.push(key.idx);
        self.len -= 1;
        Some(entry.item)
    }

    /// The next occupied slot: (level, slot, tick at which the slot starts).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, lv) in self.levels.iter().enumerate() {
            if lv.occupied == 0 {
                continue;
            }
            let slot_range = 1u64 << (level as u32 * SLOT_BITS);
            let level_range = slot_range << SLOT_BITS;
            let now_slot = (self.elapsed / slot_range) % SLOTS as u64;
            let zeros = u64::from(lv.occupied.rotate_right(now_slot as u32).trailing_zeros());
            let slot = ((zeros + now_slot) % SLOTS as u64) as usize;
            let level_start = self.elapsed & !(level_range - 1);
            let mut start = level_start + slot as u64 * slot_range;
            if start + slot_range <= self.elapsed {
                start += level_range;
            }
            return Some((level, slot, start));
        }
        None
    }

    /// The earliest deadline of any entry, exact.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.pending.is_empty() {
            return Some(self.elapsed);
        }
        let in_wheel = self.next_slot().and_then(|(level, slot, _)| {
            self.levels[level].slots[slot]
                .iter()
                .filter_map(|&i| self.entries[i as usize].1.as_ref().map(|e| e.when))
                .min()
        });
        let in_overflow = self
            .overflow
            .iter()
            .filter_map(|&i| self.entries[i as usize].1.as_ref().map(|e| e.when))
            .min();
        match (in_wheel, in_overflow) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn take_entry(&mut self, idx: u32) -> Entry<T> {
        let entry = self.entries[idx as usize]
            .1
            .take()
            .expect("wheel index points at a live entry");
        self.free.push(idx);
        self.len -= 1;
        entry
    }

    /// Advance the clock to `now` and return every entry whose deadline is `<= now`, in
    /// deadline order (insertion order among equal deadlines), with its deadline.
    pub fn poll(&mut self, now: u64) -> Vec<(u64, T)> {
        let mut due: Vec<u32> = std::mem::take(&mut self.pending);
        if now < self.elapsed {
            return self.finish(due);
        }
        loop {
            // Bring overflow entries that now fit into the wheel.
            if !self.overflow.is_empty() {
                let elapsed = self.elapsed;
                let (fits, rest): (Vec<u32>, Vec<u32>) = std::mem::take(&mut self.overflow)
                    .into_iter()
                    .partition(|&i| {
                        self.entries[i as usize]
                            .1
                            .as_ref()
                            .is_some_and(|e| e.when <= elapsed || fits(elapsed, e.when))
                    });
                self.overflow = rest;
                for i in fits {
                    self.place(i);
                }
                due.append(&mut self.pending);
            }
            let Some((level, slot, start)) = self.next_slot() else {
                break;
            };
            if start > now {
                break;
            }
            let lv = &mut self.levels[level];
            let list = std::mem::take(&mut lv.slots[slot]);
            lv.occupied &= !(1 << slot);
            self.elapsed = self.elapsed.max(start);
            for idx in list {
                let when = self.entries[idx as usize].1.as_ref().map_or(0, |e| e.when);
                if when <= now && (level == 0 || when <= self.elapsed) {
                    due.push(idx);
                } else {
                    // Cascade: refile relative to the new `elapsed` (a lower level, or pending).
                    self.place(idx);
                    due.append(&mut self.pending);
                }
            }
        }
        // Jump: nothing is due before `now`, except overflow entries that a long gap reached.
        self.elapsed = now;
        if !self.overflow.is_empty() {
            let elapsed = self.elapsed;
            let overflow = std::mem::take(&mut self.overflow);
            for i in overflow {
                let when = self.entries[i as usize].1.as_ref().map_or(0, |e| e.when);
                if when <= elapsed {
                    due.push(i);
                } else {
                    self.place(i);
                }
            }
        }
        self.finish(due)
    }

    fn finish(&mut self, due: Vec<u32>) -> Vec<(u64, T)> {
        let mut out: Vec<Entry<T>> = due.into_iter().map(|i| self.take_entry(i)).collect();
        out.sort_by_key(|e| (e.when, e.seq));
        out.into_iter().map(|e| (e.when, e.item)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn level_math() {
        assert_eq!(level_for(0, 1), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(0, 4095), 1);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(60, 70), 1);
        assert_eq!(slot_for(70, 1), 1);
    }

    #[test]
    fn fires_in_order_and_cancels() {
        let mut w = TimerWheel::new(0);
        let a = w.insert(100, "a");
        w.insert(5, "b");
        w.insert(100, "c");
        w.insert(70_000, "d");
        assert_eq!(w.next_deadline(), Some(5));
        assert_eq!(w.poll(4), vec![]);
        assert_eq!(w.poll(5), vec![(5, "b")]);
        assert_eq!(w.next_deadline(), Some(100));
        assert_eq!(w.cancel(a), Some("a"));
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.poll(1000), vec![(100, "c")]);
        assert_eq!(w.next_deadline(), Some(70_000));
        assert_eq!(w.poll(1 << 40), vec![(70_000, "d")]);
        assert!(w.is_empty());
    }

    #[test]
    fn far_deadlines_use_overflow() {
        let mut w = TimerWheel::new(0);
        w.insert(MAX_SPAN * 3, 1);
        w.insert(10, 2);
        assert_eq!(w.next_deadline(), Some(10));
        assert_eq!(w.poll(MAX_SPAN * 2), vec![(10, 2)]);
        assert_eq!(w.next_deadline(), Some(MAX_SPAN * 3));
        assert_eq!(w.poll(MAX_SPAN * 3), vec![(MAX_SPAN * 3, 1)]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Cancel(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop_oneof![0u64..100, 0u64..5000, 0u64..10_000_000, 0u64..(1u64 << 40)].prop_map(Op::Insert),
            1 => any::<usize>().prop_map(Op::Cancel),
            3 => prop_oneof![0u64..50, 0u64..10_000, 0u64..100_000_000, 0u64..(1u64 << 41)].prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// The wheel against a sorted map keyed by (deadline, insertion order).
        #[test]
        fn agrees_with_sorted_model(start in 0u64..1_000_000, ops in proptest::collection::vec(op(), 1..200)) {
            let mut wheel = TimerWheel::new(start);
            let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
            let mut keys: Vec<(TimerKey, (u64, u64))> = Vec::new();
            let mut now = start;
            let mut seq = 0u64;
            for op in ops {
                match op {
                    Op::Insert(delay) => {
                        let when = now + delay;
                        let k = wheel.insert(when, seq);
                        model.insert((when, seq), seq);
                        keys.push((k, (when, seq)));
                        seq += 1;
                    }
                    Op::Cancel(i) if !keys.is_empty() => {
                        let (k, mk) = keys.swap_remove(i % keys.len());
                        prop_assert_eq!(wheel.cancel(k), model.remove(&mk));
                    }
                    Op::Cancel(_) => {}
                    Op::Advance(d) => {
                        now += d;
                        let fired = wheel.poll(now);
                        let mut expected = Vec::new();
                        while let Some((&(when, s), _)) = model.iter().next() {
                            if when > now { break; }
                            model.remove(&(when, s));
                            expected.push((when, s));
                        }
                        prop_assert_eq!(fired, expected);
                    }
                }
                prop_assert_eq!(wheel.len(), model.len());
                prop_assert_eq!(wheel.next_deadline(), model.keys().next().map(|&(w, _)| w.max(now)));
            }
        }
    }
}
