//! How durations are put into words, for notices, errors and the panel: one
//! wording everywhere.

use time::Duration;

/// A span in words, rounded down to its largest whole unit: "3 days",
/// "1 hour", "45 minutes", "less than a minute". Negative spans read as zero.
///
/// ```
/// use license_core::wording::duration_in_words;
/// use time::Duration;
/// assert_eq!(duration_in_words(Duration::hours(49)), "2 days");
/// assert_eq!(duration_in_words(Duration::seconds(59)), "less than a minute");
/// ```
pub fn duration_in_words(d: Duration) -> String {
    let s = d.whole_seconds().max(0);
    let (n, unit) = if s >= 86_400 {
        (s / 86_400, "day")
    } else if s >= 3_600 {
        (s / 3_600, "hour")
    } else if s >= 60 {
        (s / 60, "minute")
    } else {
        return "less than a minute".to_owned();
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_starts_at_one_whole_unit() {
        let cases = [
            (-5, "less than a minute"),
            (0, "less than a minute"),
            (59, "less than a minute"),
            (60, "1 minute"),
            (119, "1 minute"),
            (120, "2 minutes"),
            (3_599, "59 minutes"),
            (3_600, "1 hour"),
            (86_399, "23 hours"),
            (86_400, "1 day"),
            (3 * 86_400, "3 days"),
        ];
        for (secs, words) in cases {
            assert_eq!(
                duration_in_words(Duration::seconds(secs)),
                words,
                "{secs} s"
            );
        }
    }
}
