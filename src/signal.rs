//! uWSGI signals: the 256-entry table of targets and the routing of a raised signal.
//!
//! Pure: routing takes the current set of processes ([`Topology`]) and returns where the signal
//! byte goes ([`Delivery`]), or why it goes nowhere. A "first available" target (`worker`,
//! `spooler`, `mule`) is a shared queue: one datagram socket whose read end every process of
//! that kind holds, so exactly one idle process receives each signal.

use std::collections::BTreeMap;

/// Kinds of process the master forks: the one list of them (Python gets it as `_core.Kind`).
/// All but the Erlang node can be sent signals. The number is what the shared process table
/// stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    Worker = 2,
    Spooler = 1,
    Mule = 3,
    /// The `--erlang` node's process (takes no signals).
    Erlang = 4,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Worker, Kind::Spooler, Kind::Mule, Kind::Erlang];

    /// The kinds a signal can be delivered to.
    pub const SIGNALLED: [Kind; 3] = [Kind::Worker, Kind::Spooler, Kind::Mule];

    /// The kind's name in uWSGI's target strings and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Worker => "worker",
            Kind::Spooler => "spooler",
            Kind::Mule => "mule",
            Kind::Erlang => "erlang",
        }
    }

    /// The signalled kind named `s` (see [`name`](Self::name)).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::SIGNALLED.into_iter().find(|k| k.name() == s)
    }

    /// Its number in the shared process table (0 there is a free slot).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind numbered `code`.
    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// [`Kind::parse`], or an error naming the kinds there are.
    pub fn from_name(s: &str) -> Result<Kind, SignalError> {
        Kind::parse(s).ok_or_else(|| SignalError::BadKind(s.to_owned()))
    }
}

/// A uWSGI signal number, 0 to 255. (uWSGI's `B` format takes any int modulo 256: 300 is 44,
/// -1 is 255; we refuse those.)
pub fn signum(n: i64) -> Result<u8, SignalError> {
    u8::try_from(n).map_err(|_| SignalError::OutOfRange(n))
}

/// A registered signal's target, parsed from uWSGI's target strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `""`, `worker`, `worker0`: one idle worker.
    AnyWorker,
    /// `workers`: every worker.
    AllWorkers,
    /// `active-workers`: every live worker (we never cheap or suspend workers, so all of them).
    ActiveWorkers,
    /// `workerN`.
    Worker(u32),
    /// `subscribed`: uWSGI's placeholder; nothing is delivered.
    Subscribed,
    /// `spooler`: one idle spooler process.
    AnySpooler,
    /// `spoolers`: every spooler process.
    AllSpoolers,
    /// `mule`, `mule0`: one idle mule.
    AnyMule,
    /// `mules`: every mule.
    AllMules,
    /// `muleN`.
    Mule(u32),
    /// `farm_NAME`: one mule of the farm.
    Farm(String),
    /// `farmN`: farm number N (1-based, in declaration order).
    FarmNumber(u32),
}

/// Why a signal could not be registered or routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error(
        "unsupported signal target {0:?} (use '', worker, workers, active-workers, workerN, spooler, spoolers, mule, mules, muleN, farm_NAME or farmN)"
    )]
    BadTarget(String),
    #[error("signal target {0:?} is longer than 63 bytes")]
    TargetTooLong(String),
    #[error("signal {0} is already registered")]
    AlreadyRegistered(u8),
    #[error("signal number {0} is out of range: uWSGI signals are 0 to 255")]
    OutOfRange(i64),
    #[error("kind must be worker, spooler or mule, got {0:?}")]
    BadKind(String),
}

fn numbered(s: &str, prefix: &str) -> Option<u32> {
    let rest = s.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, SignalError> {
        if s.len() > 63 {
            return Err(SignalError::TargetTooLong(s.to_owned()));
        }
        Ok(match s {
            "" | "worker" | "worker0" => Target::AnyWorker,
            "workers" => Target::AllWorkers,
            "active-workers" => Target::ActiveWorkers,
            "subscribed" => Target::Subscribed,
            "spooler" => Target::AnySpooler,
            "spoolers" => Target::AllSpoolers,
            "mule" | "mule0" => Target::AnyMule,
            "mules" => Target::AllMules,
            _ => {
                if let Some(n) = numbered(s, "worker") {
                    Target::Worker(n)
                } else if let Some(n) = numbered(s, "mule") {
                    Target::Mule(n)
                } else if let Some(name) = s.strip_prefix("farm_").filter(|n| !n.is_empty()) {
                    Target::Farm(name.to_owned())
                } else if let Some(n) = numbered(s, "farm") {
                    Target::FarmNumber(n)
                } else {
                    return Err(SignalError::BadTarget(s.to_owned()));
                }
            }
        })
    }
}

/// Where one signal byte goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delivery {
    /// The shared queue of a kind (one process of that kind reads it).
    Queue(Kind),
    /// The private channel of one process (kind, id: worker id, spooler index, mule id).
    Channel(Kind, u32),
    /// The shared queue of a farm.
    FarmQueue(String),
}

/// The processes that exist now, by kind and id.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub workers: Vec<u32>,
    pub spoolers: Vec<u32>,
    pub mules: Vec<u32>,
    /// Farm name → mule ids, in declaration order.
    pub farms: Vec<(String, Vec<u32>)>,
}

/// Route `target` over `topo`. `Err` carries the log line's reason.
pub fn route(target: &Target, topo: &Topology) -> Result<Vec<Delivery>, String> {
    let all = |kind: Kind, ids: &[u32], what: &str| {
        if ids.is_empty() {
            Err(format!("no {what} is running"))
        } else {
            Ok(ids.iter().map(|&i| Delivery::Channel(kind, i)).collect())
        }
    };
    let one = |kind: Kind, ids: &[u32], what: &str| {
        if ids.is_empty() {
            Err(format!("no {what} is running"))
        } else {
            Ok(vec![Delivery::Queue(kind)])
        }
    };
    let nth = |kind: Kind, ids: &[u32], n: u32, what: &str| {
        if ids.contains(&n) {
            Ok(vec![Delivery::Channel(kind, n)])
        } else {
            Err(format!("{what} {n} does not exist"))
        }
    };
    match target {
        Target::AnyWorker => one(Kind::Worker, &topo.workers, "worker"),
        Target::AllWorkers | Target::ActiveWorkers => all(Kind::Worker, &topo.workers, "worker"),
        Target::Worker(n) => nth(Kind::Worker, &topo.workers, *n, "worker"),
        Target::Subscribed => Ok(vec![]),
        Target::AnySpooler => one(Kind::Spooler, &topo.spoolers, "spooler"),
        Target::AllSpoolers => all(Kind::Spooler, &topo.spoolers, "spooler"),
        Target::AnyMule => one(Kind::Mule, &topo.mules, "mule"),
        Target::AllMules => all(Kind::Mule, &topo.mules, "mule"),
        Target::Mule(n) => nth(Kind::Mule, &topo.mules, *n, "mule"),
        Target::Farm(name) => match topo.farms.iter().find(|(f, _)| f == name) {
            Some(_) => Ok(vec![Delivery::FarmQueue(name.clone())]),
            None => Err(format!("farm {name:?} does not exist")),
        },
        Target::FarmNumber(n) => match topo.farms.get((*n as usize).wrapping_sub(1)) {
            Some((name, _)) => Ok(vec![Delivery::FarmQueue(name.clone())]),
            None => Err(format!("farm number {n} does not exist")),
        },
    }
}

/// The master's table: signal number → target.
#[derive(Debug, Clone, Default)]
pub struct SignalTable {
    targets: BTreeMap<u8, Target>,
}

impl SignalTable {
    /// Register in the master: like uWSGI, a number cannot be registered twice there.
    pub fn register(&mut self, num: u8, target: Target) -> Result<(), SignalError> {
        if self.targets.contains_key(&num) {
            return Err(SignalError::AlreadyRegistered(num));
        }
        self.targets.insert(num, target);
        Ok(())
    }

    /// Register from a worker at run time: may overwrite.
    pub fn set(&mut self, num: u8, target: Target) {
        self.targets.insert(num, target);
    }

    pub fn get(&self, num: u8) -> Option<&Target> {
        self.targets.get(&num)
    }

    pub fn is_registered(&self, num: u8) -> bool {
        self.targets.contains_key(&num)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_targets() {
        assert_eq!(Target::parse("").unwrap(), Target::AnyWorker);
        assert_eq!(Target::parse("worker0").unwrap(), Target::AnyWorker);
        assert_eq!(Target::parse("worker3").unwrap(), Target::Worker(3));
        assert_eq!(Target::parse("mule2").unwrap(), Target::Mule(2));
        assert_eq!(Target::parse("farm_x").unwrap(), Target::Farm("x".into()));
        assert_eq!(Target::parse("farm1").unwrap(), Target::FarmNumber(1));
        assert!(matches!(
            Target::parse("nowhere"),
            Err(SignalError::BadTarget(_))
        ));
        assert!(matches!(
            Target::parse(&"w".repeat(64)),
            Err(SignalError::TargetTooLong(_))
        ));
    }

    #[test]
    fn routing() {
        let topo = Topology {
            workers: vec![1, 2],
            spoolers: vec![1],
            ..Topology::default()
        };
        assert_eq!(
            route(&Target::AnyWorker, &topo),
            Ok(vec![Delivery::Queue(Kind::Worker)])
        );
        assert_eq!(
            route(&Target::AllWorkers, &topo),
            Ok(vec![
                Delivery::Channel(Kind::Worker, 1),
                Delivery::Channel(Kind::Worker, 2)
            ])
        );
        assert_eq!(
            route(&Target::Worker(2), &topo),
            Ok(vec![Delivery::Channel(Kind::Worker, 2)])
        );
        assert!(
            route(&Target::Worker(3), &topo)
                .unwrap_err()
                .contains("worker 3")
        );
        assert_eq!(
            route(&Target::AnySpooler, &topo),
            Ok(vec![Delivery::Queue(Kind::Spooler)])
        );
        assert!(
            route(&Target::AnyMule, &topo)
                .unwrap_err()
                .contains("no mule")
        );
        assert_eq!(route(&Target::Subscribed, &topo), Ok(vec![]));
    }

    #[test]
    fn master_table_refuses_reregistration() {
        let mut t = SignalTable::default();
        t.register(5, Target::AnyWorker).unwrap();
        assert_eq!(
            t.register(5, Target::AllWorkers),
            Err(SignalError::AlreadyRegistered(5))
        );
        t.set(5, Target::AllWorkers);
        assert_eq!(t.get(5), Some(&Target::AllWorkers));
    }
}
