//! The master's control datagrams: the one definition of their format, encoded here for every
//! sender (children and attached processes call the encoders through the binding) and decoded
//! here for the master's loop (`master::MasterLoop`).
//!
//! One datagram on the master's Unix datagram socket is one message. The first byte is a tag;
//! integers are little-endian; text is UTF-8; a path is raw bytes.
//!
//! | tag | layout | meaning |
//! |---|---|---|
//! | `S` | `S <num u8>` | raise signal `num` |
//! | `R` | `R <num u8> <target>` | a worker registered `num` at run time (it may overwrite); `target` as in `register_signal` |
//! | `T` | `T <offset i64>` | set the test clock's offset in seconds (honoured only with the master's test clock on) |
//! | `t` | `t <num u8> <secs f64> <iterations u32>` | a timer added at run time (`iterations` 0: for ever) |
//! | `c` | `c <num u8> <catch_up u8> <tz len u8> <tz> <spec>` | a cron entry; `tz` empty: the master's local time; `spec` is `U` + five `i64` (uWSGI's integers) or `S` + crontab text |
//! | `f` | `f <num u8> <recursive u8> <path>` | a file monitor (`path` absolute) |
//! | `H` | `H <pid u32>` | `uwsgi.reload()`: a graceful reload of the master; `pid` is the sender's, for the log |
//! | `F` | `F <num u8>` | a worker read a file monitor's event for signal `num` that it does not run (the master routes it as if it had read the event) |
//!
//! Decoding checks the layout only (lengths, UTF-8); what the values mean (a valid target, a
//! cron field in range, an existing path) is for the master to judge when it applies them.

use std::fmt;

/// A cron entry's schedule as it travels: uWSGI's five integers or a crontab string.
#[derive(Debug, Clone, PartialEq)]
pub enum CronForm {
    /// minute, hour, day, month, weekday (`-1` any, `-N` every N).
    Uwsgi([i64; 5]),
    /// A crontab expression (`"*/5 * * * *"`, `"@daily"`).
    Crontab(String),
}

/// One control message.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// `S`: raise signal `num`.
    Raise { num: u8 },
    /// `F`: a worker read a file monitor's event for `num`, not its own to run.
    FileEvent { num: u8 },
    /// `R`: a worker registered `num` for `target`.
    Register { num: u8, target: String },
    /// `T`: move the test wall clock to now + `seconds`.
    ClockOffset { seconds: i64 },
    /// `t`: a timer of `secs` seconds, stopping after `iterations` raises (0: never).
    Timer { num: u8, secs: f64, iterations: u32 },
    /// `c`: a cron entry in zone `tz` (None: local time).
    Cron {
        num: u8,
        catch_up: bool,
        tz: Option<String>,
        form: CronForm,
    },
    /// `f`: a file monitor on `path` (raw bytes).
    FileMonitor {
        num: u8,
        recursive: bool,
        path: Vec<u8>,
    },
    /// `H`: reload the master gracefully; `pid` (the sender's) is only logged.
    Reload { pid: u32 },
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The zone name does not fit its one-byte length.
    #[error("time zone name longer than 255 bytes ({0} bytes)")]
    TzTooLong(usize),
}

/// Why a datagram cannot be decoded (its text is what the master logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    NotUtf8,
    TruncatedCron,
    BadCron,
    /// No known tag, or a length that does not fit the tag's layout.
    Unknown {
        len: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty control datagram"),
            DecodeError::NotUtf8 => f.write_str("not UTF-8"),
            DecodeError::TruncatedCron => f.write_str("truncated cron datagram"),
            DecodeError::BadCron => f.write_str("bad cron datagram"),
            DecodeError::Unknown { len } => write!(f, "unknown control datagram ({len} bytes)"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn text(b: &[u8]) -> Result<String, DecodeError> {
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| DecodeError::NotUtf8)
}

impl Control {
    /// The datagram's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        Ok(match self {
            Control::Raise { num } => vec![b'S', *num],
            Control::FileEvent { num } => vec![b'F', *num],
            Control::Register { num, target } => {
                let mut m = vec![b'R', *num];
                m.extend_from_slice(target.as_bytes());
                m
            }
            Control::ClockOffset { seconds } => {
                let mut m = vec![b'T'];
                m.extend_from_slice(&seconds.to_le_bytes());
                m
            }
            Control::Timer {
                num,
                secs,
                iterations,
            } => {
                let mut m = vec![b't', *num];
                m.extend_from_slice(&secs.to_le_bytes());
                m.extend_from_slice(&iterations.to_le_bytes());
                m
            }
            Control::Cron {
                num,
                catch_up,
                tz,
                form,
            } => {
                let tz = tz.as_deref().unwrap_or("").as_bytes();
                let tz_len =
                    u8::try_from(tz.len()).map_err(|_| EncodeError::TzTooLong(tz.len()))?;
                let mut m = vec![b'c', *num, u8::from(*catch_up), tz_len];
                m.extend_from_slice(tz);
                match form {
                    CronForm::Uwsgi(fields) => {
                        m.push(b'U');
                        for v in fields {
                            m.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                    CronForm::Crontab(t) => {
                        m.push(b'S');
                        m.extend_from_slice(t.as_bytes());
                    }
                }
                m
            }
            Control::FileMonitor {
                num,
                recursive,
                path,
            } => {
                let mut m = vec![b'f', *num, u8::from(*recursive)];
                m.extend_from_slice(path);
                m
            }
            Control::Reload { pid } => {
                let mut m = vec![b'H'];
                m.extend_from_slice(&pid.to_le_bytes());
                m
            }
        })
    }

    /// The message in `msg`, or what is wrong with its layout.
    pub fn decode(msg: &[u8]) -> Result<Control, DecodeError> {
        let (&tag, rest) = msg.split_first().ok_or(DecodeError::Empty)?;
        let (&num, args) = rest.split_first().unwrap_or((&0, &[]));
        let unknown = DecodeError::Unknown { len: msg.len() };
        Ok(match tag {
            b'S' if rest.len() == 1 => Control::Raise { num },
            b'H' => {
                let b: [u8; 4] = rest.try_into().map_err(|_| unknown)?;
                Control::Reload {
                    pid: u32::from_le_bytes(b),
                }
            }
            b'F' if rest.len() == 1 => Control::FileEvent { num },
            b'R' if !rest.is_empty() => Control::Register {
                num,
                target: text(args)?,
            },
            b'T' => {
                let b: [u8; 8] = rest.try_into().map_err(|_| unknown)?;
                Control::ClockOffset {
                    seconds: i64::from_le_bytes(b),
                }
            }
            b't' => {
                let (secs, iterations) = args.split_at_checked(8).ok_or(unknown.clone())?;
                Control::Timer {
                    num,
                    secs: f64::from_le_bytes(secs.try_into().map_err(|_| unknown.clone())?),
                    iterations: u32::from_le_bytes(iterations.try_into().map_err(|_| unknown)?),
                }
            }
            b'c' if args.len() >= 3 => {
                let catch_up = args[0] != 0;
                let tz_end = 2 + usize::from(args[1]);
                if args.len() < tz_end + 1 {
                    return Err(DecodeError::TruncatedCron);
                }
                let tz = (tz_end > 2).then(|| text(&args[2..tz_end])).transpose()?;
                let form = match (args[tz_end], &args[tz_end + 1..]) {
                    (b'U', f) if f.len() == 40 => {
                        let mut fields = [0i64; 5];
                        for (v, c) in fields.iter_mut().zip(f.chunks_exact(8)) {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(c);
                            *v = i64::from_le_bytes(b);
                        }
                        CronForm::Uwsgi(fields)
                    }
                    (b'S', t) => CronForm::Crontab(text(t)?),
                    _ => return Err(DecodeError::BadCron),
                };
                Control::Cron {
                    num,
                    catch_up,
                    tz,
                    form,
                }
            }
            b'f' if !args.is_empty() => Control::FileMonitor {
                num,
                recursive: args[0] != 0,
                path: args[1..].to_vec(),
            },
            _ => return Err(unknown),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn control() -> impl Strategy<Value = Control> {
        let form = prop_oneof![
            any::<[i64; 5]>().prop_map(CronForm::Uwsgi),
            ".*".prop_map(CronForm::Crontab),
        ];
        let tz = proptest::option::of("[A-Za-z_/+-]{1,255}");
        prop_oneof![
            any::<u8>().prop_map(|num| Control::Raise { num }),
            any::<u8>().prop_map(|num| Control::FileEvent { num }),
            (any::<u8>(), ".*").prop_map(|(num, target)| Control::Register { num, target }),
            any::<i64>().prop_map(|seconds| Control::ClockOffset { seconds }),
            // NaN never equals itself; the master refuses it anyway when it applies the timer.
            (
                any::<u8>(),
                any::<f64>().prop_filter("not NaN", |s| !s.is_nan()),
                any::<u32>()
            )
                .prop_map(|(num, secs, iterations)| Control::Timer {
                    num,
                    secs,
                    iterations
                }),
            (any::<u8>(), any::<bool>(), tz, form).prop_map(|(num, catch_up, tz, form)| {
                Control::Cron {
                    num,
                    catch_up,
                    tz,
                    form,
                }
            }),
            (
                any::<u8>(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..300)
            )
                .prop_map(|(num, recursive, path)| Control::FileMonitor {
                    num,
                    recursive,
                    path
                }),
            any::<u32>().prop_map(|pid| Control::Reload { pid }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(c in control()) {
            let bytes = c.encode().unwrap();
            prop_assert_eq!(Control::decode(&bytes), Ok(c));
        }

        #[test]
        fn decoding_any_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(c) = Control::decode(&b) {
                // What decodes encodes back to the same bytes, except a cron entry's empty zone
                // name and a non-zero flag byte other than 1, which decode to the same message.
                if let Ok(again) = c.encode() {
                    prop_assert_eq!(Control::decode(&again), Ok(c));
                }
            }
        }
    }

    #[test]
    fn the_documented_bytes() {
        assert_eq!(Control::Raise { num: 7 }.encode().unwrap(), b"S\x07");
        assert_eq!(
            Control::Reload { pid: 0x0102_0304 }.encode().unwrap(),
            b"H\x04\x03\x02\x01"
        );
        assert_eq!(Control::FileEvent { num: 7 }.encode().unwrap(), b"F\x07");
        let c = Control::Cron {
            num: 10,
            catch_up: true,
            tz: Some("UTC".into()),
            form: CronForm::Uwsgi([0, 2, -1, -1, -1]),
        };
        let mut want = vec![b'c', 10, 1, 3];
        want.extend_from_slice(b"UTC");
        want.push(b'U');
        for v in [0i64, 2, -1, -1, -1] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(c.encode().unwrap(), want);
        let mut t = vec![b't', 9];
        t.extend_from_slice(&0.5f64.to_le_bytes());
        t.extend_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            Control::decode(&t),
            Ok(Control::Timer {
                num: 9,
                secs: 0.5,
                iterations: 2
            })
        );
    }

    #[test]
    fn layout_faults_are_named() {
        assert_eq!(Control::decode(b""), Err(DecodeError::Empty));
        assert_eq!(Control::decode(b"cX"), Err(DecodeError::Unknown { len: 2 }));
        assert_eq!(
            Control::decode(b"c\x01\x00\x05UT"),
            Err(DecodeError::TruncatedCron)
        );
        assert_eq!(
            Control::decode(b"c\x01\x00\x00X"),
            Err(DecodeError::BadCron)
        );
        assert_eq!(Control::decode(b"R\x01\xff"), Err(DecodeError::NotUtf8));
        assert_eq!(Control::decode(b"S"), Err(DecodeError::Unknown { len: 1 }));
        let long = Control::Cron {
            num: 1,
            catch_up: false,
            tz: Some("x".repeat(256)),
            form: CronForm::Crontab("@daily".into()),
        };
        assert_eq!(long.encode(), Err(EncodeError::TzTooLong(256)));
    }
}
