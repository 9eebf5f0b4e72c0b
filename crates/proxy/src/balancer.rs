//! Picking a replica of the chosen revision: round robin or least outstanding requests,
//! skipping replicas whose breaker is open and those a retry already tried.

use crate::route::Balance;

/// Index of the replica to use among `n`, or `None` when none is usable.
///
/// `start` rotates the scan (a per-target counter), so round robin walks the replicas and
/// least-outstanding breaks ties fairly. `usable(i)` says whether replica `i`'s breaker lets
/// traffic through; `load(i)` is its number of outstanding requests.
pub(crate) fn pick(
    balance: Balance,
    n: usize,
    start: usize,
    excluded: &[usize],
    usable: impl Fn(usize) -> bool,
    load: impl Fn(usize) -> u64,
) -> Option<usize> {
    let mut candidates = (0..n)
        .map(|k| (start.wrapping_add(k)) % n)
        .filter(|i| !excluded.contains(i) && usable(*i));
    match balance {
        Balance::RoundRobin => candidates.next(),
        // min_by_key keeps the first of equal loads, i.e. the one nearest `start`.
        Balance::LeastOutstanding => candidates.min_by_key(|i| load(*i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_walks_the_replicas() {
        let picks: Vec<_> = (0..6)
            .map(|s| pick(Balance::RoundRobin, 3, s, &[], |_| true, |_| 0))
            .collect();
        assert_eq!(
            picks,
            [Some(0), Some(1), Some(2), Some(0), Some(1), Some(2)]
        );
    }

    #[test]
    fn skips_open_breakers_and_excluded() {
        let usable = |i| i != 1;
        assert_eq!(pick(Balance::RoundRobin, 3, 1, &[], usable, |_| 0), Some(2));
        assert_eq!(
            pick(Balance::RoundRobin, 3, 1, &[2], usable, |_| 0),
            Some(0)
        );
        assert_eq!(
            pick(Balance::RoundRobin, 3, 1, &[0, 2], usable, |_| 0),
            None
        );
        assert_eq!(pick(Balance::RoundRobin, 0, 0, &[], |_| true, |_| 0), None);
    }

    #[test]
    fn least_outstanding_prefers_the_idlest() {
        let load = |i: usize| [5, 1, 3][i];
        assert_eq!(
            pick(Balance::LeastOutstanding, 3, 0, &[], |_| true, load),
            Some(1)
        );
        assert_eq!(
            pick(Balance::LeastOutstanding, 3, 0, &[1], |_| true, load),
            Some(2)
        );
        // Ties go to the replica nearest the rotating start.
        assert_eq!(
            pick(Balance::LeastOutstanding, 3, 2, &[], |_| true, |_| 0),
            Some(2)
        );
    }
}
