//! A per-guest budget for log lines about that guest's refused calls.
//!
//! A hostile guest can make every call fail on purpose; if each refusal
//! wrote a log line, it would flood the log (and the disk behind it). Each
//! guest gets a small burst of lines that refills slowly; refusals past it
//! are only counted (statistics), and the next line that is written says
//! how many were left out. Plain logic: the caller passes the time.

use std::time::{Duration, Instant};

/// A token bucket of log lines.
#[derive(Debug)]
pub struct LogBudget {
    burst: u32,
    every: Duration,
    tokens: u32,
    refilled: Option<Instant>,
    suppressed: u64,
}

/// What to do with one refusal's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLine {
    /// Write it, saying that `suppressed` refusals before it were not
    /// logged.
    Write {
        /// Refusals left out of the log since the last line written.
        suppressed: u64,
    },
    /// Leave it out (counted).
    Skip,
}

impl LogBudget {
    /// A budget of `burst` lines, one more every `every`.
    pub fn new(burst: u32, every: Duration) -> LogBudget {
        LogBudget {
            burst,
            every,
            tokens: burst,
            refilled: None,
            suppressed: 0,
        }
    }

    /// Asks to log one refusal at `now`.
    pub fn take(&mut self, now: Instant) -> LogLine {
        let since = *self.refilled.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if !self.every.is_zero() && elapsed >= self.every {
            let earned = elapsed.as_nanos() / self.every.as_nanos();
            let room = u128::from(self.burst - self.tokens);
            if earned >= room {
                self.tokens = self.burst;
                self.refilled = Some(now);
            } else {
                // `earned < room <= u32::MAX`.
                let earned = earned as u32;
                self.tokens += earned;
                self.refilled = Some(since + self.every * earned);
            }
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return LogLine::Skip;
        }
        self.tokens -= 1;
        LogLine::Write {
            suppressed: std::mem::take(&mut self.suppressed),
        }
    }
}

impl Default for LogBudget {
    /// 16 lines at once, then one a second.
    fn default() -> LogBudget {
        LogBudget::new(16, Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_line_per_period_and_the_rest_counted() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(3, Duration::from_secs(1));
        for _ in 0..3 {
            assert_eq!(b.take(t0), LogLine::Write { suppressed: 0 });
        }
        // A flood within the same second: nothing more is written.
        for _ in 0..1000 {
            assert_eq!(b.take(t0 + Duration::from_millis(500)), LogLine::Skip);
        }
        // A second later one line, which says what was left out.
        assert_eq!(
            b.take(t0 + Duration::from_millis(1001)),
            LogLine::Write { suppressed: 1000 }
        );
        assert_eq!(b.take(t0 + Duration::from_millis(1002)), LogLine::Skip);
        // After a long quiet time the burst is back, no more.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(matches!(b.take(later), LogLine::Write { .. }));
        }
        assert_eq!(b.take(later), LogLine::Skip);
    }

    #[test]
    fn lines_written_over_a_long_flood_are_bounded_by_time() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(16, Duration::from_secs(1));
        let written = (0..100_000u64)
            .filter(|i| {
                // 100,000 refusals over 10 seconds.
                matches!(
                    b.take(t0 + Duration::from_micros(i * 100)),
                    LogLine::Write { .. }
                )
            })
            .count();
        assert!(written <= 16 + 10, "{written} lines");
    }
}
