//! Which backups retention removes: by count (`keep: N`) and by age (`keep_for`).
//! Restore points (taken before a release's migrations) are counted apart from the
//! other backups, so a run of routine backups never removes the last restore point.

use std::time::Duration;

use crate::Entry;

/// The entries to remove, given `keep` and `keep_for` at `now_ms`. The newest backup of
/// each group (routine, restore points) always stays.
pub fn expired(
    entries: &[Entry],
    keep: Option<u32>,
    keep_for: Option<Duration>,
    now_ms: i64,
) -> Vec<&Entry> {
    let mut out = Vec::new();
    for restore_points in [false, true] {
        let mut group: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.is_restore_point() == restore_points)
            .collect();
        // Newest first.
        group.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        for (i, e) in group.into_iter().enumerate() {
            if i == 0 {
                continue;
            }
            let over_count = keep.is_some_and(|k| i >= k as usize);
            let too_old = keep_for.is_some_and(|age| {
                let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                now_ms.saturating_sub(e.created_at_ms) > age_ms
            });
            if over_count || too_old {
                out.push(e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: &str, at: i64, release: Option<i64>) -> Entry {
        Entry {
            id: id.into(),
            service: "db".into(),
            kind: "postgres".into(),
            format: "pg_dump-custom".into(),
            created_at_ms: at,
            file: format!("{id}.dump"),
            size: 1,
            sha256: String::new(),
            encrypted: false,
            release,
        }
    }

    fn ids(v: Vec<&Entry>) -> Vec<&str> {
        let mut v: Vec<&str> = v.into_iter().map(|e| e.id.as_str()).collect();
        v.sort_unstable();
        v
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn keep_n_removes_all_but_the_newest_n() {
        let all = vec![
            e("a", 1, None),
            e("b", 2, None),
            e("c", 3, None),
            e("d", 4, None),
        ];
        assert_eq!(ids(expired(&all, Some(2), None, 10)), ["a", "b"]);
        assert_eq!(ids(expired(&all, Some(10), None, 10)), Vec::<&str>::new());
        assert!(
            expired(&all, None, None, 10).is_empty(),
            "no policy keeps everything"
        );
    }

    #[test]
    fn keep_for_removes_what_is_older_but_never_the_newest() {
        let all = vec![
            e("old", 0, None),
            e("mid", 20 * DAY, None),
            e("new", 29 * DAY, None),
        ];
        let now = 40 * DAY;
        assert_eq!(
            ids(expired(
                &all,
                None,
                Some(Duration::from_secs(15 * 86_400)),
                now
            )),
            ["mid", "old"]
        );
        // Even when everything is too old, the newest backup stays.
        assert_eq!(
            ids(expired(
                &all,
                None,
                Some(Duration::from_secs(86_400)),
                100 * DAY
            )),
            ["mid", "old"]
        );
    }

    #[test]
    fn both_rules_apply_and_restore_points_are_counted_apart() {
        let all = vec![
            e("r1", 1, Some(7)),
            e("a", 2, None),
            e("b", 3, None),
            e("r2", 4, Some(8)),
            e("c", 5, None),
        ];
        assert_eq!(ids(expired(&all, Some(1), None, 10)), ["a", "b", "r1"]);
        assert_eq!(
            ids(expired(&all, Some(2), Some(Duration::from_millis(6)), 10)),
            ["a", "b", "r1"]
        );
    }
}
