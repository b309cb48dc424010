//! The Date header field (RFC 3261 §20.17): an RFC 1123 date, in GMT only.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use super::grammar::trim_wsp;
use super::headers::HeaderError;

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT
/// SP "GMT"`. Any other time zone is malformed (RFC 4475 §3.1.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SipDate {
    /// 0 = Monday.
    weekday: u8,
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl SipDate {
    /// The date of a wall-clock time (whole seconds; before 1970 clamps to
    /// the epoch).
    pub fn from_system_time(time: SystemTime) -> SipDate {
        let secs = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days as i64);
        SipDate {
            // 1970-01-01 was a Thursday.
            weekday: ((days + 3) % 7) as u8,
            year: year.clamp(0, 9999) as u16,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// The wall-clock time this date names (the weekday is not checked).
    pub fn to_system_time(&self) -> SystemTime {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
    }
}

impl FromStr for SipDate {
    type Err = HeaderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = HeaderError::Malformed("Date is not an RFC 1123 date in GMT");
        let s = trim_wsp(s);
        let (wkday, rest) = s.split_once(", ").ok_or(bad)?;
        let weekday = WEEKDAYS.iter().position(|w| *w == wkday).ok_or(bad)? as u8;
        let fields: Vec<&str> = rest.split(' ').collect();
        let [day, month, year, time, zone] = fields[..] else {
            return Err(bad);
        };
        if zone != "GMT" {
            return Err(bad);
        }
        let num = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())
                .flatten()
                .ok_or(bad)
        };
        let month = MONTHS.iter().position(|m| *m == month).ok_or(bad)? as u8 + 1;
        let [hour, minute, second] = time.split(':').collect::<Vec<_>>()[..] else {
            return Err(bad);
        };
        let date = SipDate {
            weekday,
            year: num(year, 4)?,
            month,
            day: num(day, 2)? as u8,
            hour: num(hour, 2)? as u8,
            minute: num(minute, 2)? as u8,
            second: num(second, 2)? as u8,
        };
        if date.day == 0 || date.day > 31 || date.hour > 23 || date.minute > 59 || date.second > 60
        {
            return Err(bad);
        }
        Ok(date)
    }
}

impl fmt::Display for SipDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let weekday = WEEKDAYS.get(usize::from(self.weekday)).unwrap_or(&"Mon");
        let month = MONTHS
            .get(usize::from(self.month).wrapping_sub(1))
            .unwrap_or(&"Jan");
        write!(
            f,
            "{weekday}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
            self.day, self.year, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        // RFC 4475 §3.1.1.11 and RFC 3261 §20.17.
        for text in [
            "Sat, 15 Oct 2005 04:44:56 GMT",
            "Sat, 13 Nov 2010 23:29:00 GMT",
        ] {
            let date: SipDate = text.parse().unwrap();
            assert_eq!(date.to_string(), text);
            assert_eq!(SipDate::from_system_time(date.to_system_time()), date);
        }
        let date: SipDate = "Sat, 15 Oct 2005 04:44:56 GMT".parse().unwrap();
        assert_eq!(
            date.to_system_time(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_129_351_496)
        );
        assert_eq!(
            SipDate::from_system_time(SystemTime::UNIX_EPOCH).to_string(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        for bad in [
            "Fri, 01 Jan 2010 16:00:00 EST",
            "Fri, 01 Jan 2010 16:00:00 UT",
            "Fri, 1 Jan 2010 16:00:00 GMT",
            "Fri 01 Jan 2010 16:00:00 GMT",
            "Fry, 01 Jan 2010 16:00:00 GMT",
            "Fri, 01 Jab 2010 16:00:00 GMT",
            "Fri, 01 Jan 2010 24:00:00 GMT",
            "Fri, 01 Jan 2010 16:00 GMT",
            "",
        ] {
            assert!(bad.parse::<SipDate>().is_err(), "{bad}");
        }
    }
}
