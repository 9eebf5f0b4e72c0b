//! What the scheduler does, as pure functions over what it knows: the next
//! tick, a tick or a "run now" while a run may be going, the end of a run.

use orchestra_manifest::{Concurrency, Schedule};

/// What a tick (or a request to run now) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickAction {
    /// Start a run now.
    Start,
    /// Drop this tick: a run is going (`concurrency: skip`).
    Skip,
    /// Run once more right after the current run (`concurrency: queue`).
    Queue,
    /// A run is going and one already waits: this tick adds nothing
    /// (`queue` holds one, so a slow job does not pile up runs).
    AlreadyQueued,
}

/// A tick came: `running` when a run is still going, `queued` when one already waits.
#[must_use]
pub fn on_tick(concurrency: Concurrency, running: bool, queued: bool) -> TickAction {
    match (running, concurrency, queued) {
        (false, _, _) => TickAction::Start,
        (true, Concurrency::Skip, _) => TickAction::Skip,
        (true, Concurrency::Queue, false) => TickAction::Queue,
        (true, Concurrency::Queue, true) => TickAction::AlreadyQueued,
    }
}

/// A run ended: start the queued one, if any.
#[must_use]
pub fn after_run(queued: bool) -> TickAction {
    if queued {
        TickAction::Start
    } else {
        TickAction::Skip
    }
}

/// When the next tick is, strictly after both `now_ms` and the tick that
/// last fired (`last_tick_ms`): the wall clock the timer slept on and the one
/// read after it may disagree by a little, and a tick must never fire twice.
/// `anchor_ms` is when the schedule started (`@every` counts from it).
#[must_use]
pub fn next_tick(
    schedule: &Schedule,
    now_ms: i64,
    last_tick_ms: Option<i64>,
    anchor_ms: i64,
) -> Option<i64> {
    let after = last_tick_ms.map_or(now_ms, |t| t.max(now_ms));
    schedule.next_after(after, anchor_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_manifest::parse_schedule;

    #[test]
    fn a_tick_without_a_run_going_starts_one_whatever_the_policy() {
        for c in [Concurrency::Skip, Concurrency::Queue] {
            assert_eq!(on_tick(c, false, false), TickAction::Start);
        }
    }

    #[test]
    fn skip_drops_ticks_while_a_run_goes_and_queue_holds_one() {
        assert_eq!(on_tick(Concurrency::Skip, true, false), TickAction::Skip);
        assert_eq!(on_tick(Concurrency::Queue, true, false), TickAction::Queue);
        assert_eq!(
            on_tick(Concurrency::Queue, true, true),
            TickAction::AlreadyQueued
        );
        assert_eq!(after_run(true), TickAction::Start);
        assert_eq!(after_run(false), TickAction::Skip);
    }

    #[test]
    fn a_slow_job_under_skip_runs_at_most_once_at_a_time() {
        // Ticks every 2 s, each run takes 5 s: simulate 20 s of ticks and ends.
        let every = parse_schedule("@every 2s", None).unwrap();
        let (mut now, anchor) = (0_i64, 0_i64);
        let (mut running_until, mut last, mut starts, mut skips) = (None::<i64>, None, 0, 0);
        while now < 20_000 {
            let tick = next_tick(&every, now, last, anchor).unwrap();
            if let Some(end) = running_until
                && end <= tick
            {
                running_until = None;
            }
            now = tick;
            last = Some(tick);
            match on_tick(Concurrency::Skip, running_until.is_some(), false) {
                TickAction::Start => {
                    starts += 1;
                    running_until = Some(now + 5_000);
                }
                TickAction::Skip => skips += 1,
                other => panic!("{other:?}"),
            }
        }
        // Starts at 2, 8, 14 (each skipping the two ticks inside its 5 s), and 20.
        assert_eq!((starts, skips), (4, 6));
    }

    #[test]
    fn the_next_tick_never_repeats_the_last_one_even_if_the_clock_lags() {
        let every = parse_schedule("@every 2s", None).unwrap();
        // The timer fired for 4000 but the clock reads 3999.
        assert_eq!(next_tick(&every, 3_999, Some(4_000), 0), Some(6_000));
        assert_eq!(next_tick(&every, 3_999, None, 0), Some(4_000));
        let cron = parse_schedule("* * * * *", None).unwrap();
        assert_eq!(next_tick(&cron, 59_999, Some(60_000), 0), Some(120_000));
    }
}
