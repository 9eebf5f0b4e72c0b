//! Choosing the revision (target) of a route: by weight, or by a sticky key.
//!
//! Both map a point onto the cumulative weights in the order the targets are listed (stable
//! first). Sticky keys hash to a slot in `[0, 10000)`; target `i` owns the slots below
//! `10000 * cum[i] / total`. When the canary (listed last) grows, the stable range shrinks from
//! the top and those slots move to the canary: a client only ever moves stable → canary.
//!
//! Unsticky requests take points from a Weyl sequence over a per-route counter instead of a
//! random generator: the shares match the weights within a request or two at any count, and no
//! per-request RNG is needed.

use hyper::HeaderMap;
use hyper::header::COOKIE;
use rand::Rng;

/// Number of sticky slots.
pub(crate) const STICKY_SLOTS: u64 = 10_000;

/// Cumulative sums of the weights: `cum[i]` = weights of targets `0..=i`.
pub(crate) fn cumulative(weights: impl IntoIterator<Item = u32>) -> Vec<u64> {
    weights
        .into_iter()
        .scan(0u64, |acc, w| {
            *acc += u64::from(w);
            Some(*acc)
        })
        .collect()
}

/// The target owning `point` in `[0, total)`: the first with `point < cum[i]`.
pub(crate) fn pick_by_point(cum: &[u64], point: u64) -> Option<usize> {
    let idx = cum.partition_point(|&c| c <= point);
    (idx < cum.len()).then_some(idx)
}

/// The `n`-th point of an evenly spread sequence over `[0, total)` (golden-ratio Weyl sequence).
pub(crate) fn spread_point(n: u64, total: u64) -> u64 {
    let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((u128::from(x) * u128::from(total)) >> 64) as u64
}

/// The target owning sticky `slot` (in `[0, STICKY_SLOTS)`), `None` when all weights are 0.
pub(crate) fn pick_sticky(cum: &[u64], slot: u64) -> Option<usize> {
    let total = *cum.last()?;
    if total == 0 {
        return None;
    }
    // slot / SLOTS < cum[i] / total, kept in integers.
    let idx = cum.partition_point(|&c| {
        u128::from(c) * u128::from(STICKY_SLOTS) <= u128::from(slot) * u128::from(total)
    });
    (idx < cum.len()).then_some(idx)
}

/// The sticky slot of a key: FNV-1a, then a 64-bit finalizer, modulo the slot count. Stable
/// across processes and versions (no random seed), so a restart keeps clients where they were.
pub(crate) fn sticky_slot(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finalizer spreads FNV's weak low bits.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h % STICKY_SLOTS
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
        .filter(|v| !v.is_empty())
}

/// A new random sticky key: 128 bits as 32 hex digits.
pub(crate) fn new_sticky_key() -> String {
    let v: u128 = rand::rng().random();
    format!("{v:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn cumulative_and_point_lookup() {
        let cum = cumulative([10, 0, 90]);
        assert_eq!(cum, [10, 10, 100]);
        assert_eq!(pick_by_point(&cum, 0), Some(0));
        assert_eq!(pick_by_point(&cum, 9), Some(0));
        assert_eq!(pick_by_point(&cum, 10), Some(2));
        assert_eq!(pick_by_point(&cum, 99), Some(2));
        assert_eq!(pick_by_point(&cum, 100), None);
    }

    #[test]
    fn spread_points_match_weights_closely() {
        let cum = cumulative([10, 90]);
        let mut hits = [0u32; 2];
        for n in 0..1000 {
            let i = pick_by_point(&cum, spread_point(n, 100)).unwrap_or(9);
            hits[i] += 1;
        }
        assert!((98..=102).contains(&hits[0]), "{hits:?}");
        // Over any short run, too.
        let first20 = (0..20)
            .filter(|&n| pick_by_point(&cum, spread_point(n, 100)) == Some(0))
            .count();
        assert!((1..=3).contains(&first20), "{first20}");
    }

    #[test]
    fn sticky_slots_are_stable_and_spread() {
        assert_eq!(sticky_slot(b"alice"), sticky_slot(b"alice"));
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let s = sticky_slot(format!("client-{i}").as_bytes());
            assert!(s < STICKY_SLOTS);
            buckets[(s / 1000) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (850..=1150).contains(&b)),
            "{buckets:?}"
        );
    }

    #[test]
    fn sticky_clients_only_move_from_stable_to_canary() {
        let steps = [0, 1, 10, 25, 50, 75, 99, 100];
        for slot in 0..STICKY_SLOTS {
            let mut on_canary = false;
            for &canary in &steps {
                let cum = cumulative([100 - canary, canary]);
                let now = pick_sticky(&cum, slot) == Some(1);
                assert!(!on_canary || now, "slot {slot} moved back at {canary}%");
                on_canary = now;
            }
            assert!(on_canary, "slot {slot} not on canary at 100%");
        }
    }

    #[test]
    fn sticky_share_matches_weight() {
        let cum = cumulative([90, 10]);
        let canary = (0..STICKY_SLOTS)
            .filter(|&s| pick_sticky(&cum, s) == Some(1))
            .count();
        assert_eq!(canary, 1000);
        assert_eq!(pick_sticky(&cumulative([0, 0]), 5), None);
        assert_eq!(pick_sticky(&[], 5), None);
    }

    #[test]
    fn finds_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; orch=xyz ; b=2"));
        assert_eq!(cookie_value(&h, "orch"), Some("xyz"));
        assert_eq!(cookie_value(&h, "b"), Some("2"));
        assert_eq!(cookie_value(&h, "missing"), None);
        h.append(COOKIE, HeaderValue::from_static("late=\"q\""));
        assert_eq!(cookie_value(&h, "late"), Some("q"));
        h.insert(COOKIE, HeaderValue::from_static("empty="));
        assert_eq!(cookie_value(&h, "empty"), None);
    }

    #[test]
    fn new_keys_differ() {
        let a = new_sticky_key();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_sticky_key());
    }
}
