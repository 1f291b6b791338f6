//! `devices/global_filter` of lvm.conf: `a|regex|` / `r|regex|` rules, the first rule that matches
//! a device name decides (lvm2 `filter-regex.c`), and the lvmetad token derived from the rules.

use super::crc::calc_crc;
use super::regex::{Regex, RegexError};
use crate::config::{parse, Body, DupMode, ParseError, Scalar, Tree};
use std::fmt;
use std::path::Path;

/// lvm.conf files larger than this are refused.
const MAX_LVM_CONF: u64 = 4 << 20;

#[derive(Debug)]
pub enum FilterError {
    Read(String, std::io::Error),
    Parse(String, ParseError),
    /// A pattern that is not a quoted string.
    NotAString,
    /// A pattern that does not begin with `a` or `r`.
    BadKind(String),
    /// The pattern does not end with its separator.
    BadSeparator(String),
    Regex(String, RegexError),
    TooLarge(String),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::Read(p, e) => write!(f, "{p}: {e}"),
            FilterError::Parse(p, e) => write!(f, "{p}: {e}"),
            FilterError::NotAString => write!(f, "filter patterns must be enclosed in quotes"),
            FilterError::BadKind(p) => write!(
                f,
                "invalid filter pattern {p:?}: must begin with 'a' or 'r'"
            ),
            FilterError::BadSeparator(p) => {
                write!(
                    f,
                    "invalid filter pattern {p:?}: invalid separator at end of regex"
                )
            }
            FilterError::Regex(p, e) => write!(f, "invalid filter pattern {p:?}: {e}"),
            FilterError::TooLarge(p) => write!(f, "{p}: larger than {MAX_LVM_CONF} bytes"),
        }
    }
}

impl std::error::Error for FilterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FilterError::Read(_, e) => Some(e),
            FilterError::Parse(_, e) => Some(e),
            FilterError::Regex(_, e) => Some(e),
            _ => None,
        }
    }
}

/// The compiled global filter.
#[derive(Debug, Default)]
pub struct GlobalFilter {
    /// The pattern strings as configured (the token is computed from these).
    pub patterns: Vec<String>,
    rules: Vec<(bool, Regex)>,
}

impl GlobalFilter {
    /// No filter: every device passes, token `filter:0`.
    pub fn none() -> Self {
        Self::default()
    }

    /// Compile a list of `a|...|` / `r|...|` patterns.
    pub fn new(patterns: Vec<String>) -> Result<Self, FilterError> {
        let mut rules = Vec::with_capacity(patterns.len());
        for p in &patterns {
            let mut chars = p.chars();
            let accept = match chars.next() {
                Some('a') => true,
                Some('r') => false,
                _ => return Err(FilterError::BadKind(p.clone())),
            };
            let open = chars
                .next()
                .ok_or_else(|| FilterError::BadSeparator(p.clone()))?;
            let close = match open {
                '(' => ')',
                '[' => ']',
                '{' => '}',
                c => c,
            };
            let body = chars.as_str();
            let re = body
                .strip_suffix(close)
                .ok_or_else(|| FilterError::BadSeparator(p.clone()))?;
            let re = Regex::new(re).map_err(|e| FilterError::Regex(p.clone(), e))?;
            rules.push((accept, re));
        }
        Ok(GlobalFilter { patterns, rules })
    }

    /// Read `devices/global_filter` from a parsed lvm.conf.
    pub fn from_config(tree: &Tree) -> Result<Self, FilterError> {
        let Some(node) = tree.find("devices/global_filter") else {
            return Ok(Self::none());
        };
        let Body::Value(v) = &node.body else {
            return Err(FilterError::NotAString);
        };
        let patterns = v
            .items()
            .iter()
            .map(|s| match s {
                Scalar::Str(s) => Ok(s.clone()),
                _ => Err(FilterError::NotAString),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(patterns)
    }

    /// Read an lvm.conf file (lvm.conf semantics: repeated sections merge, last value wins).
    pub fn from_file(path: &Path) -> Result<Self, FilterError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| FilterError::Read(name.clone(), e))?;
        if meta.len() > MAX_LVM_CONF {
            return Err(FilterError::TooLarge(name));
        }
        let text = std::fs::read(path).map_err(|e| FilterError::Read(name.clone(), e))?;
        let tree = parse(&text, DupMode::Merge).map_err(|e| FilterError::Parse(name, e))?;
        Self::from_config(&tree)
    }

    /// Whether a device with these names (aliases) passes: the first alias that some rule
    /// matches decides if that rule accepts; a device that no rule matches passes.
    pub fn accepts<S: AsRef<str>>(&self, aliases: &[S]) -> bool {
        let mut rejected = false;
        for alias in aliases {
            if let Some((accept, _)) = self
                .rules
                .iter()
                .find(|(_, re)| re.is_match(alias.as_ref()))
            {
                if *accept {
                    return true;
                }
                rejected = true;
            }
        }
        !rejected
    }

    /// `filter:<crc of the concatenated patterns, initial value 0>`.
    pub fn token(&self) -> String {
        let crc = self
            .patterns
            .iter()
            .fold(0, |crc, p| calc_crc(crc, p.as_bytes()));
        format!("filter:{crc}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &[&str]) -> GlobalFilter {
        GlobalFilter::new(p.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn tokens_match_lvm2() {
        assert_eq!(GlobalFilter::none().token(), "filter:0");
        assert_eq!(f(&["a|.*|"]).token(), "filter:2175851276");
        assert_eq!(f(&["r|/dev/sdb|", "a|.*|"]).token(), "filter:705910794");
    }

    #[test]
    fn first_matching_rule_wins() {
        let g = f(&["r|/dev/sdb|", "a|.*|"]);
        assert!(!g.accepts(&["/dev/sdb"]));
        assert!(g.accepts(&["/dev/sda"]));
        let g = f(&["a|loop1$|", "r|loop|"]);
        assert!(g.accepts(&["/dev/loop1"]));
        assert!(!g.accepts(&["/dev/loop2"]));
        assert!(g.accepts(&["/dev/sda"]), "no rule matches: passes");
        assert!(
            g.accepts(&["/dev/loop2", "/dev/loop1"]),
            "a later alias may be accepted"
        );
    }

    #[test]
    fn separators_and_errors() {
        assert!(f(&["r(/dev/sdb)"]).accepts(&["/dev/sda"]));
        assert!(!f(&["r{sdb}"]).accepts(&["/dev/sdb"]));
        assert!(matches!(
            GlobalFilter::new(vec!["x|a|".into()]),
            Err(FilterError::BadKind(_))
        ));
        assert!(matches!(
            GlobalFilter::new(vec!["a|abc".into()]),
            Err(FilterError::BadSeparator(_))
        ));
        assert!(matches!(
            GlobalFilter::new(vec!["a".into()]),
            Err(FilterError::BadSeparator(_))
        ));
        assert!(matches!(
            GlobalFilter::new(vec!["a|[a|".into()]),
            Err(FilterError::Regex(..))
        ));
    }

    #[test]
    fn lvm_conf_sections_merge_and_the_last_filter_wins() {
        let conf = b"devices {\n global_filter = [ \"a|.*|\" ]\n}\nglobal { use_lvmetad = 1 }\ndevices {\n global_filter = [ \"r|/dev/sdb|\", \"a|.*|\" ]\n}\n";
        let tree = parse(conf, DupMode::Merge).unwrap();
        let g = GlobalFilter::from_config(&tree).unwrap();
        assert_eq!(g.token(), "filter:705910794");
        assert!(!g.accepts(&["/dev/sdb"]));
        let single = parse(b"devices { global_filter = \"r|sdb|\" }", DupMode::Merge).unwrap();
        assert!(!GlobalFilter::from_config(&single)
            .unwrap()
            .accepts(&["/dev/sdb"]));
        let none = parse(b"global { use_lvmetad = 1 }", DupMode::Merge).unwrap();
        assert_eq!(
            GlobalFilter::from_config(&none).unwrap().token(),
            "filter:0"
        );
        let bad = parse(b"devices { global_filter = [ 1 ] }", DupMode::Merge).unwrap();
        assert!(matches!(
            GlobalFilter::from_config(&bad),
            Err(FilterError::NotAString)
        ));
    }
}
