//! `Amount`: a non-negative quantity of atomic units (wei-like), a decimal string on the wire
//! and a `u128` inside. Never a float.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("an amount is a decimal string of atomic units such as \"1000000\"; it was empty")]
    Empty,
    #[error(
        "an amount is a whole number of atomic units written as a decimal string (no sign, no decimal point, no exponent, no leading zeros), e.g. \"1500000\""
    )]
    NotDecimal,
    #[error(
        "an amount must be given as a JSON string of atomic units, e.g. \"1500000\", never as a number"
    )]
    NotAString,
    #[error("the amount is larger than 2^128 - 1 atomic units")]
    Overflow,
}

/// Atomic units. Arithmetic is checked; there is no way to build one from a float.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u128);

impl Amount {
    pub const ZERO: Self = Self(0);
    pub const PATTERN: &'static str = "^(0|[1-9][0-9]{0,38})$";

    pub const fn from_atomic(units: u128) -> Self {
        Self(units)
    }

    pub const fn atomic(self) -> u128 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn parse(s: &str) -> Result<Self, AmountError> {
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        let canonical = s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
        if !canonical {
            return Err(AmountError::NotDecimal);
        }
        s.parse::<u128>()
            .map(Self)
            .map_err(|_| AmountError::Overflow)
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }

    /// The most decimals an asset can have: 10^38 is the largest power of ten in a `u128`.
    pub const MAX_DECIMALS: u8 = 38;

    /// The amount in whole units of an asset with `decimals` decimals, exactly (integer
    /// arithmetic, trailing zeros dropped): 1000000 with 6 → "1", 250000 → "0.25", 700 →
    /// "0.0007". `None` when `decimals` exceeds [`Self::MAX_DECIMALS`].
    pub fn in_units(self, decimals: u8) -> Option<String> {
        let one = 10u128.checked_pow(u32::from(decimals))?;
        let (whole, frac) = (self.0 / one, self.0 % one);
        if frac == 0 {
            return Some(whole.to_string());
        }
        let digits = format!("{frac:0width$}", width = usize::from(decimals));
        Some(format!("{whole}.{}", digits.trim_end_matches('0')))
    }

    /// The amount with its asset, for people: whole units when the decimals are known
    /// ("0.25 USDC"), otherwise said to be atomic ("700 atomic units of ETH").
    pub fn describe(self, asset: &str, decimals: Option<u8>) -> String {
        match decimals.and_then(|d| self.in_units(d)) {
            Some(units) => format!("{units} {asset}"),
            None => format!("{self} atomic units of {asset}"),
        }
    }

    /// `self * bps / 10_000`, rounded down (a protocol fee in basis points).
    #[must_use]
    pub fn basis_points(self, bps: u16) -> Self {
        // u128 * 10_000 can overflow for huge amounts; split to stay exact.
        let bps = u128::from(bps);
        Self((self.0 / 10_000) * bps + (self.0 % 10_000) * bps / 10_000)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal string of atomic units")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
        Amount::parse(v).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Amount, E> {
        Err(E::custom(AmountError::NotAString))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Amount, E> {
        Err(E::custom(AmountError::NotAString))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Amount, E> {
        Err(E::custom(AmountError::NotAString))
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor)
    }
}

impl JsonSchema for Amount {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": Self::PATTERN,
            "description": "Atomic units as a decimal string (never a JSON number)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_decimal_strings() {
        assert_eq!(Amount::parse("0").unwrap(), Amount::ZERO);
        assert_eq!(Amount::parse("1500000").unwrap().atomic(), 1_500_000);
        assert_eq!(
            Amount::parse(&u128::MAX.to_string()).unwrap().atomic(),
            u128::MAX
        );
        for bad in ["", "-1", "+1", "1.5", "1e6", "007", " 1", "0x10"] {
            assert!(Amount::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Amount::parse("340282366920938463463374607431768211456"),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn json_numbers_are_refused() {
        assert!(serde_json::from_str::<Amount>("1.5").is_err());
        assert!(serde_json::from_str::<Amount>("100").is_err());
        assert!(serde_json::from_str::<Amount>("-3").is_err());
        let a: Amount = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"42\"");
    }

    #[test]
    fn whole_units_are_exact() {
        let units = |a: u128, d: u8| Amount::from_atomic(a).in_units(d);
        assert_eq!(units(1_000_000, 6).as_deref(), Some("1"));
        assert_eq!(units(250_000, 6).as_deref(), Some("0.25"));
        assert_eq!(units(700, 6).as_deref(), Some("0.0007"));
        assert_eq!(units(1_234_567_890, 6).as_deref(), Some("1234.56789"));
        assert_eq!(units(0, 18).as_deref(), Some("0"));
        assert_eq!(units(42, 0).as_deref(), Some("42"));
        assert_eq!(
            units(u128::MAX, 38).as_deref(),
            Some("3.40282366920938463463374607431768211455")
        );
        assert_eq!(units(1, 39), None);
        let a = Amount::from_atomic(250_000);
        assert_eq!(a.describe("USDC", Some(6)), "0.25 USDC");
        assert_eq!(a.describe("ETH", None), "250000 atomic units of ETH");
    }

    #[test]
    fn basis_points_is_exact_for_huge_amounts() {
        assert_eq!(Amount::from_atomic(10_000).basis_points(250).atomic(), 250);
        assert_eq!(Amount::from_atomic(9_999).basis_points(1).atomic(), 0);
        let big = Amount::from_atomic(u128::MAX);
        assert_eq!(big.basis_points(10_000), big);
    }
}
