//! MAC addresses: hubs send `A1:B2:C3:D4:E5:F6`; clients store 12 upper-case
//! hex digits. Any common notation is accepted on input.

use std::fmt;

/// A MAC address, stored as 12 upper-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(String);

impl Mac {
    /// Parse `A1:B2:C3:D4:E5:F6`, `a1-b2-c3-d4-e5-f6`, `a1b2.c3d4.e5f6` or
    /// `A1B2C3D4E5F6`. Separators must be consistent with one of these forms.
    pub fn parse(s: &str) -> Option<Mac> {
        normalize_mac(s).map(Mac)
    }

    /// 12 upper-case hex digits, no separators (what a data update carries).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// With colons, as `info/get` sends it.
    pub fn colon(&self) -> String {
        self.pairs().collect::<Vec<_>>().join(":")
    }

    /// The instance name a real hub advertises: `Vege_` and the last two bytes
    /// (`Vege_A6_20` for `..:A6:20`).
    pub fn instance_name(&self) -> String {
        let pairs: Vec<&str> = self.pairs().collect();
        format!("Vege_{}_{}", pairs[4], pairs[5])
    }

    fn pairs(&self) -> impl Iterator<Item = &str> {
        (0..6).map(|i| &self.0[i * 2..i * 2 + 2])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.colon())
    }
}

/// Normalise a MAC in any common notation to 12 upper-case hex digits.
pub fn normalize_mac(s: &str) -> Option<String> {
    let s = s.trim();
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 12 {
        return None;
    }
    let seps: Vec<char> = s.chars().filter(|c| !c.is_ascii_hexdigit()).collect();
    let groups: Vec<&str> = s.split([':', '-', '.']).collect();
    let ok = match seps.len() {
        0 => true,
        5 => {
            seps.iter().all(|&c| c == seps[0] && (c == ':' || c == '-'))
                && groups.iter().all(|g| g.len() == 2)
        }
        2 => seps.iter().all(|&c| c == '.') && groups.iter().all(|g| g.len() == 4),
        _ => false,
    };
    ok.then(|| hex.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_notations() {
        for s in [
            "A1:B2:C3:D4:E5:F6",
            "a1-b2-c3-d4-e5-f6",
            "a1b2.c3d4.e5f6",
            "a1b2c3d4e5f6",
        ] {
            assert_eq!(normalize_mac(s).as_deref(), Some("A1B2C3D4E5F6"), "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "A1:B2:C3:D4:E5",
            "A1:B2:C3:D4:E5:F6:00",
            "A1:B2-C3:D4:E5:F6",
            "G1:B2:C3:D4:E5:F6",
            "A1B:2C3:D4E:5F6:::",
        ] {
            assert_eq!(normalize_mac(s), None, "{s}");
        }
    }

    #[test]
    fn instance_name_uses_the_last_two_bytes() {
        let mac = Mac::parse("A1:B2:C3:D4:A6:20").unwrap();
        assert_eq!(mac.instance_name(), "Vege_A6_20");
        assert_eq!(mac.colon(), "A1:B2:C3:D4:A6:20");
    }
}
