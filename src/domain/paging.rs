//! Keyset pages in both directions, newest first: a list walks down from `before`, or up from
//! `after` and is turned around, so either way the key's index serves it.

/// A page's rows, newest first, and whether rows lie beyond it below (older) and above (newer).
pub struct Page<T> {
    pub rows: Vec<T>,
    pub older: bool,
    pub newer: bool,
}

/// True when the query should walk up (`after` without `before`): `ORDER BY key ASC`.
pub fn walks_up(before: bool, after: bool) -> bool {
    after && !before
}

/// Cuts `rows`, fetched with `LIMIT limit + 1` in the walk's order, to the page.
pub fn cut<T>(mut rows: Vec<T>, limit: i64, before: bool, after: bool) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    if walks_up(before, after) {
        rows.reverse();
        Page {
            rows,
            older: true,
            newer: more,
        }
    } else {
        Page {
            rows,
            older: more,
            newer: before || after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_walks_come_back_newest_first() {
        let down = cut(vec![9, 8, 7, 6], 3, false, false);
        assert_eq!(
            (down.rows, down.older, down.newer),
            (vec![9, 8, 7], true, false)
        );
        let up = cut(vec![4, 5, 6], 3, false, true);
        assert_eq!((up.rows, up.older, up.newer), (vec![6, 5, 4], true, false));
        let up_more = cut(vec![4, 5, 6, 7], 3, false, true);
        assert!(up_more.newer);
    }
}
