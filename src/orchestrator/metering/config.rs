//! `[pricing]` in orchestrator.toml (docs/SETTLEMENT.md, "Metered inference"): each model's
//! price in atomic units of the configured `asset` per million prompt and completion tokens,
//! and an optional default for models not listed. A model with no price credits 0.
//!
//! ```toml
//! [pricing.models."llama3.1:8b"]
//! prompt_per_million = "100000"             # 0.10 USDC (6 decimals) per million prompt tokens
//! completion_per_million = "300000"
//!
//! [pricing.default]                         # every other model (optional)
//! prompt_per_million = "50000"
//! completion_per_million = "150000"
//! ```
//!
//! Prices are decimal strings, as every amount is: a float, a negative number, a bare integer
//! or a string that is not a whole number of atomic units is refused at start, naming the key.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::{Amount, Price};
use crate::wire::MAX_MODEL_LEN;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricing {
    default: Option<toml::Table>,
    #[serde(default)]
    models: BTreeMap<String, toml::Table>,
}

/// The resolved `[pricing]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    /// For a model not in `models`.
    pub default: Option<Price>,
    pub models: BTreeMap<String, Price>,
}

impl Pricing {
    /// The price of `model`: its own, else the default; `None`: not priced (credits 0).
    pub fn of(&self, model: &str) -> Option<Price> {
        self.models.get(model).copied().or(self.default)
    }

    /// An error naming the key when a price is missing, unknown or not a decimal string.
    pub fn resolve(raw: &RawPricing) -> Result<Self, String> {
        let default = raw
            .default
            .as_ref()
            .map(|t| price("[pricing.default]", t))
            .transpose()?;
        let mut models = BTreeMap::new();
        for (model, table) in &raw.models {
            let shown = shown_model(model)?;
            models.insert(
                model.clone(),
                price(&format!("[pricing.models.{shown}]"), table)?,
            );
        }
        Ok(Self { default, models })
    }
}

const KEYS: [&str; 2] = ["prompt_per_million", "completion_per_million"];

/// A model name as a TOML key, for messages (quoted); refused when it cannot be a model.
fn shown_model(model: &str) -> Result<String, String> {
    let ok = !model.is_empty()
        && model.chars().count() <= MAX_MODEL_LEN
        && !model.chars().any(char::is_control);
    if ok {
        Ok(format!("\"{}\"", model.escape_default()))
    } else {
        Err(format!(
            "[pricing.models]: a model name must be 1 to {MAX_MODEL_LEN} characters without \
             control characters, as in GET /v1/models"
        ))
    }
}

fn price(table: &str, t: &toml::Table) -> Result<Price, String> {
    if let Some(unknown) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
        let shown = if unknown.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            format!("`{unknown}`")
        } else {
            "a key".to_owned()
        };
        return Err(format!(
            "{table}: {shown} is not a price; a price has prompt_per_million and \
             completion_per_million"
        ));
    }
    let amount = |key: &str| -> Result<Amount, String> {
        let at = format!("{table} {key}");
        let fix = format!("write it as a decimal string of atomic units, e.g. {key} = \"150000\"");
        let value = t
            .get(key)
            .ok_or_else(|| format!("{at} is missing ({fix}; \"0\" makes that part free)"))?;
        let a = match value {
            toml::Value::String(s) => Amount::parse(s.trim()).map_err(|_| {
                format!("{at} is not a whole, non-negative number of atomic units ({fix})")
            })?,
            toml::Value::Float(_) => return Err(format!("{at} is a float; {fix}")),
            toml::Value::Integer(i) if *i < 0 => {
                return Err(format!("{at} is negative; a price cannot be ({fix})"));
            }
            toml::Value::Integer(i) => {
                return Err(format!(
                    "{at} is a bare number; {key} = \"{i}\" (amounts are strings)"
                ));
            }
            _ => return Err(format!("{at} is not a string; {fix}")),
        };
        if a > Price::MAX_PER_MILLION {
            return Err(format!(
                "{at} is larger than 10^28 atomic units per million tokens"
            ));
        }
        Ok(a)
    };
    Ok(Price {
        prompt_per_million: amount(KEYS[0])?,
        completion_per_million: amount(KEYS[1])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml_text: &str) -> Result<Pricing, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            pricing: RawPricing,
        }
        let w: Wrapper = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Pricing::resolve(&w.pricing)
    }

    #[test]
    fn models_and_the_default_are_read() {
        let p = resolve(
            "[pricing.models.\"llama3.1:8b\"]\nprompt_per_million = \"100000\"\n\
             completion_per_million = \"300000\"\n[pricing.default]\nprompt_per_million = \"0\"\n\
             completion_per_million = \"5\"\n",
        )
        .unwrap();
        let own = p.of("llama3.1:8b").unwrap();
        assert_eq!(own.completion_per_million.atomic(), 300_000);
        assert_eq!(p.of("other").unwrap().completion_per_million.atomic(), 5);
        assert_eq!(Pricing::default().of("any"), None);
    }

    #[test]
    fn bad_prices_are_refused_naming_the_key() {
        let model = |line: &str| {
            resolve(&format!(
                "[pricing.models.\"m:1\"]\nprompt_per_million = \"1\"\n{line}\n"
            ))
            .unwrap_err()
        };
        for (line, says) in [
            ("completion_per_million = 0.5", "is a float"),
            ("completion_per_million = -3", "is negative"),
            (
                "completion_per_million = \"-3\"",
                "not a whole, non-negative",
            ),
            (
                "completion_per_million = \"1.5\"",
                "not a whole, non-negative",
            ),
            (
                "completion_per_million = 7",
                "completion_per_million = \"7\"",
            ),
            ("completion_per_million = true", "is not a string"),
            ("", "is missing"),
            (
                "completion_per_million = \"100000000000000000000000000001\"",
                "larger than 10^28",
            ),
        ] {
            let e = model(line);
            assert!(e.contains("[pricing.models.\"m:1\"]"), "{line}: {e}");
            assert!(
                e.contains("completion_per_million") || line.is_empty(),
                "{line}: {e}"
            );
            assert!(e.contains(says), "{line}: {e}");
        }
        let e =
            resolve("[pricing.default]\nprompt_per_million = 1.0\ncompletion_per_million = \"1\"")
                .unwrap_err();
        assert!(
            e.contains("[pricing.default] prompt_per_million is a float"),
            "{e}"
        );
        let e = resolve(
            "[pricing.default]\nprompt_per_million = \"1\"\ncompletion_per_million = \"1\"\nper_request = \"1\"",
        )
        .unwrap_err();
        assert!(e.contains("`per_request` is not a price"), "{e}");
    }
}
