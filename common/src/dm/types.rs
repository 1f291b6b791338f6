//! Typed values of the device-mapper interface: device names and uuids (checked against the
//! kernel's limits), sector counts, device numbers, the way a device is addressed, and one line of
//! a table.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

/// Longest device name the kernel takes (`DM_NAME_LEN` is 128 including the NUL).
pub const MAX_NAME_LEN: usize = 127;
/// Longest device uuid the kernel takes (`DM_UUID_LEN` is 129 including the NUL).
pub const MAX_UUID_LEN: usize = 128;
/// Longest target type name (`DM_MAX_TYPE_NAME` is 16 including the NUL).
pub const MAX_TARGET_TYPE_LEN: usize = 15;

/// Why a name, uuid, target type or device number was refused before reaching the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    Empty(&'static str),
    TooLong {
        what: &'static str,
        max: usize,
        len: usize,
    },
    BadChar {
        what: &'static str,
        value: String,
    },
    BadDevNum(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Empty(what) => write!(f, "empty {what}"),
            ValueError::TooLong { what, max, len } => {
                write!(
                    f,
                    "{what} is {len} bytes long, the kernel takes at most {max}"
                )
            }
            ValueError::BadChar { what, value } => {
                write!(f, "{what} {value:?} holds a character the kernel refuses")
            }
            ValueError::BadDevNum(s) => write!(f, "{s:?} is not a MAJOR:MINOR device number"),
        }
    }
}

impl std::error::Error for ValueError {}

fn check_text(what: &'static str, s: &str, max: usize, slash_ok: bool) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty(what));
    }
    if s.len() > max {
        return Err(ValueError::TooLong {
            what,
            max,
            len: s.len(),
        });
    }
    if s.bytes().any(|b| b == 0 || (!slash_ok && b == b'/'))
        || (!slash_ok && (s == "." || s == ".."))
    {
        return Err(ValueError::BadChar {
            what,
            value: s.to_string(),
        });
    }
    Ok(())
}

/// A device-mapper device name: 1..=127 bytes, no NUL, no `/`, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DmName(String);

impl DmName {
    pub fn new(s: &str) -> Result<Self, ValueError> {
        check_text("device name", s, MAX_NAME_LEN, false)?;
        Ok(DmName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device-mapper uuid: 1..=128 bytes, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DmUuid(String);

impl DmUuid {
    pub fn new(s: &str) -> Result<Self, ValueError> {
        check_text("device uuid", s, MAX_UUID_LEN, true)?;
        Ok(DmUuid(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A target type name such as `thin-pool`: 1..=15 bytes, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetType(String);

impl TargetType {
    pub fn new(s: &str) -> Result<Self, ValueError> {
        check_text("target type", s, MAX_TARGET_TYPE_LEN, true)?;
        Ok(TargetType(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
display_as_str!(DmName, DmUuid, TargetType);

/// A count of 512-byte sectors (device-mapper's unit for every offset and length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Sectors(pub u64);

impl Sectors {
    pub const SIZE: u64 = 512;
    pub fn bytes(self) -> Option<u64> {
        self.0.checked_mul(Self::SIZE)
    }
}

impl fmt::Display for Sectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A block device number, `MAJOR:MINOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    pub fn new(major: u32, minor: u32) -> Self {
        DevNum { major, minor }
    }
    /// The kernel's 64-bit encoding used in `struct dm_ioctl` (`huge_encode_dev`).
    pub fn to_kernel(self) -> u64 {
        let (major, minor) = (u64::from(self.major), u64::from(self.minor));
        (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
    }
    /// Inverse of [`DevNum::to_kernel`].
    pub fn from_kernel(dev: u64) -> Self {
        DevNum {
            major: ((dev >> 8) & 0xfff) as u32,
            minor: ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32,
        }
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl FromStr for DevNum {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let bad = || ValueError::BadDevNum(s.to_string());
        let (ma, mi) = s.split_once(':').ok_or_else(bad)?;
        let num = |t: &str| -> Result<u32, ValueError> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        Ok(DevNum::new(num(ma)?, num(mi)?))
    }
}

/// How a request names its device: the kernel looks it up by uuid, else name, else number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceRef {
    Name(DmName),
    Uuid(DmUuid),
    Dev(DevNum),
}

impl DeviceRef {
    /// `MAJOR:MINOR` gives a device number, anything else a name.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.contains(':') {
            if let Ok(d) = s.parse::<DevNum>() {
                return Ok(DeviceRef::Dev(d));
            }
        }
        Ok(DeviceRef::Name(DmName::new(s)?))
    }
}

impl From<DmName> for DeviceRef {
    fn from(n: DmName) -> Self {
        DeviceRef::Name(n)
    }
}

impl From<DevNum> for DeviceRef {
    fn from(d: DevNum) -> Self {
        DeviceRef::Dev(d)
    }
}

impl fmt::Display for DeviceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRef::Name(n) => write!(f, "{n}"),
            DeviceRef::Uuid(u) => write!(f, "uuid {u}"),
            DeviceRef::Dev(d) => write!(f, "{d}"),
        }
    }
}

/// One line of a device-mapper table (or of its status): a target over a range of sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLine {
    pub start: Sectors,
    pub length: Sectors,
    pub target_type: TargetType,
    /// The target's parameters (for a table) or status text (for a status), as the kernel has it.
    pub params: String,
}

impl TargetLine {
    /// Parses `START LENGTH TYPE PARAMS...`, the format `dmsetup table` prints and takes.
    pub fn parse(line: &str) -> Result<Self, TableLineError> {
        let mut rest = line.trim_start();
        let mut word = || -> Option<&str> {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (w, r) = rest.split_at(end);
            rest = r.trim_start();
            (!w.is_empty()).then_some(w)
        };
        let start = word()
            .and_then(|w| w.parse().ok())
            .ok_or(TableLineError::Start)?;
        let length = word()
            .and_then(|w| w.parse().ok())
            .ok_or(TableLineError::Length)?;
        let ty = word().ok_or(TableLineError::Type)?;
        let target_type = TargetType::new(ty).map_err(TableLineError::BadType)?;
        Ok(TargetLine {
            start: Sectors(start),
            length: Sectors(length),
            target_type,
            params: rest.trim_end().to_string(),
        })
    }
}

impl fmt::Display for TargetLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.start, self.length, self.target_type)?;
        if !self.params.is_empty() {
            write!(f, " {}", self.params)?;
        }
        Ok(())
    }
}

/// Why a `START LENGTH TYPE PARAMS` line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableLineError {
    Start,
    Length,
    Type,
    BadType(ValueError),
}

impl fmt::Display for TableLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableLineError::Start => write!(f, "table line: missing or bad start sector"),
            TableLineError::Length => write!(f, "table line: missing or bad length"),
            TableLineError::Type => write!(f, "table line: missing target type"),
            TableLineError::BadType(e) => write!(f, "table line: {e}"),
        }
    }
}

impl std::error::Error for TableLineError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_respect_kernel_limits() {
        assert!(DmName::new("vg-pool-tpool").is_ok());
        assert_eq!(DmName::new(""), Err(ValueError::Empty("device name")));
        assert!(matches!(
            DmName::new("a/b"),
            Err(ValueError::BadChar { .. })
        ));
        assert!(matches!(DmName::new(".."), Err(ValueError::BadChar { .. })));
        assert!(DmName::new(&"x".repeat(127)).is_ok());
        assert!(matches!(
            DmName::new(&"x".repeat(128)),
            Err(ValueError::TooLong { .. })
        ));
        assert!(DmUuid::new(&"u".repeat(128)).is_ok());
        assert!(DmUuid::new(&"u".repeat(129)).is_err());
        assert!(DmUuid::new("LVM-abc/def").is_ok());
        assert!(TargetType::new("thin-pool").is_ok());
        assert!(TargetType::new("sixteen-chars-xx").is_err());
    }

    #[test]
    fn device_numbers_round_trip_through_the_kernel_encoding() {
        for (ma, mi) in [
            (253, 0),
            (254, 3),
            (7, 1),
            (259, 1_048_575),
            (4095, 255),
            (8, 256),
        ] {
            let d = DevNum::new(ma, mi);
            assert_eq!(DevNum::from_kernel(d.to_kernel()), d);
        }
        // The classic 16-bit form for small numbers: major in bits 8..16, minor in 0..8.
        assert_eq!(DevNum::new(253, 4).to_kernel(), (253 << 8) | 4);
        assert_eq!("253:4".parse::<DevNum>(), Ok(DevNum::new(253, 4)));
        assert!("253:".parse::<DevNum>().is_err());
        assert!("a:1".parse::<DevNum>().is_err());
        assert_eq!(
            DeviceRef::parse("7:2"),
            Ok(DeviceRef::Dev(DevNum::new(7, 2)))
        );
        assert_eq!(
            DeviceRef::parse("pool"),
            Ok(DeviceRef::Name(DmName::new("pool").unwrap()))
        );
    }

    #[test]
    fn table_lines_parse_and_print_back() {
        let l = TargetLine::parse("0 262144 thin-pool 7:0 7:1 128 0 1 skip_block_zeroing").unwrap();
        assert_eq!(l.start, Sectors(0));
        assert_eq!(l.length, Sectors(262144));
        assert_eq!(l.target_type.as_str(), "thin-pool");
        assert_eq!(l.params, "7:0 7:1 128 0 1 skip_block_zeroing");
        assert_eq!(
            l.to_string(),
            "0 262144 thin-pool 7:0 7:1 128 0 1 skip_block_zeroing"
        );
        assert_eq!(
            TargetLine::parse("0 8 zero").unwrap().to_string(),
            "0 8 zero"
        );
        assert_eq!(TargetLine::parse("x 8 zero"), Err(TableLineError::Start));
        assert_eq!(TargetLine::parse("0"), Err(TableLineError::Length));
        assert_eq!(TargetLine::parse("0 8"), Err(TableLineError::Type));
        assert_eq!(Sectors(3).bytes(), Some(1536));
        assert_eq!(Sectors(u64::MAX).bytes(), None);
    }
}
