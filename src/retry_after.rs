//! Reading a server's `Retry-After` hint (RFC 9110, section 10.2.3).

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::HeaderMap;

/// The longest pause a `Retry-After` hint can impose unless configured otherwise: one
/// hour.
///
/// A server asking for more gets this much; see
/// [`BackoffLayer::max_retry_after`](crate::BackoffLayer::max_retry_after).
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// Returns how long from now the response's `Retry-After` header asks callers to wait,
/// capped at `max`, or `None` when there is nothing to honour.
///
/// Both forms are read: delta-seconds (ASCII digits only, surrounding spaces and tabs
/// trimmed; a value too large for any integer means `max`) and an HTTP-date in any of
/// the three formats of RFC 9110, compared with `now()`. Anything else is ignored: a
/// missing, empty or malformed value, a date with the wrong weekday, or more than one
/// `Retry-After` field. So is a hint of zero or a date that is not in the future.
///
/// `now` is only called for an HTTP-date.
pub(crate) fn retry_after(
    headers: &HeaderMap,
    now: impl FnOnce() -> SystemTime,
    max: Duration,
) -> Option<Duration> {
    let mut values = headers.get_all(RETRY_AFTER).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }

    let text = value.to_str().ok()?.trim_matches([' ', '\t']);
    let wait = if text.bytes().all(|byte| byte.is_ascii_digit()) {
        delta_seconds(text, max)?
    } else {
        let date = httpdate::parse_http_date(text).ok()?;
        date.duration_since(now()).ok()?
    };

    Some(wait.min(max)).filter(|wait| !wait.is_zero())
}

/// Reads a non-empty run of ASCII digits as seconds; a number too large for `u64` is
/// taken as `max`.
fn delta_seconds(digits: &str, max: Duration) -> Option<Duration> {
    if digits.is_empty() {
        return None;
    }
    Some(digits.parse().map_or(max, Duration::from_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::HeaderValue;

    const HOUR: Duration = DEFAULT_MAX_RETRY_AFTER;

    /// 1994-11-06T08:49:37Z, the example date of RFC 9110.
    fn rfc_example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn parse_at(values: &[&str], now: SystemTime, max: Duration) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        }
        retry_after(&headers, || now, max)
    }

    fn parse(value: &str) -> Option<Duration> {
        let now = rfc_example_time() - Duration::from_secs(90);
        parse_at(&[value], now, HOUR)
    }

    #[test]
    fn delta_seconds_are_read_and_trimmed() {
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse("  120\t"), Some(Duration::from_secs(120)));
        assert_eq!(parse("0120"), Some(Duration::from_secs(120)));
        assert_eq!(parse("1"), Some(Duration::from_secs(1)));
    }

    #[test]
    fn all_three_date_formats_are_read() {
        let expected = Some(Duration::from_secs(90));
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), expected);
        assert_eq!(parse(" Sun, 06 Nov 1994 08:49:37 GMT "), expected);
    }

    #[test]
    fn invalid_values_are_ignored() {
        for value in [
            "-1",
            "1.5",
            "+120",
            "120 seconds",
            "abc",
            "",
            "   ",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "1 2",
        ] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn non_ascii_values_are_ignored() {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_bytes("12\u{e9}".as_bytes()).unwrap();
        headers.insert(RETRY_AFTER, value);
        assert_eq!(retry_after(&headers, SystemTime::now, HOUR), None);
    }

    #[test]
    fn two_header_values_are_ignored() {
        assert_eq!(parse_at(&["5", "5"], rfc_example_time(), HOUR), None);
        assert_eq!(parse_at(&[], rfc_example_time(), HOUR), None);
    }

    #[test]
    fn values_are_capped_and_huge_ones_mean_the_cap() {
        assert_eq!(parse("3600"), Some(HOUR));
        assert_eq!(parse("3601"), Some(HOUR));
        assert_eq!(parse("18446744073709551615"), Some(HOUR));
        assert_eq!(parse("99999999999999999999"), Some(HOUR));
        assert_eq!(parse(&"9".repeat(400)), Some(HOUR));

        let max = Duration::from_secs(30);
        let now = rfc_example_time();
        assert_eq!(parse_at(&["31"], now, max), Some(max));
        assert_eq!(
            parse_at(&["Fri, 31 Dec 9999 23:59:59 GMT"], now, max),
            Some(max)
        );
    }

    #[test]
    fn zero_and_past_dates_mean_no_hint() {
        assert_eq!(parse("0"), None);
        assert_eq!(parse("000"), None);
        let now = rfc_example_time();
        assert_eq!(
            parse_at(&["Sun, 06 Nov 1994 08:49:37 GMT"], now, HOUR),
            None
        );
        assert_eq!(
            parse_at(&["Thu, 01 Jan 1970 00:00:00 GMT"], now, HOUR),
            None
        );
    }

    #[test]
    fn a_zero_cap_turns_every_hint_off() {
        assert_eq!(parse_at(&["120"], rfc_example_time(), Duration::ZERO), None);
    }

    #[test]
    fn the_clock_is_read_only_for_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let now = || -> SystemTime { panic!("the clock is not needed for delta-seconds") };
        assert_eq!(
            retry_after(&headers, now, HOUR),
            Some(Duration::from_secs(7))
        );
    }
}
