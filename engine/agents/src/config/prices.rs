//! `[prices."MODEL"]` of `booflow.toml` (docs/DESIGN.md §4): dollars per million tokens,
//! for the spend a run shows and the `--max-cost-usd` ceiling. There are no built-in
//! prices: a call whose model has none costs an unknown amount, shown as such, never $0.

use booflow_types::Usage;
use serde::Deserialize;

/// One model's price, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens not served from the provider's cache.
    pub input: f64,
    /// Prompt tokens served from the provider's prompt cache; default: `input`.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Output tokens (reasoning included).
    pub output: f64,
}

impl Price {
    /// What `usage` cost, in dollars: uncached input at `input`, cached input at
    /// `cached_input`, output at `output` (`usage.input_tokens` counts the cached ones too,
    /// as OpenAI's `prompt_tokens` does).
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cached_tokens.min(usage.input_tokens);
        let fresh = usage.input_tokens - cached;
        let per_token = |dollars_per_million: f64| dollars_per_million / 1_000_000.0;
        fresh as f64 * per_token(self.input)
            + cached as f64 * per_token(self.cached_input.unwrap_or(self.input))
            + usage.output_tokens as f64 * per_token(self.output)
    }

    /// Checks each value is a finite number ≥ 0.
    ///
    /// # Errors
    /// The key that is not (`input`, `cached_input` or `output`) and its value.
    pub fn check(&self) -> Result<(), String> {
        let values = [
            ("input", Some(self.input)),
            ("cached_input", self.cached_input),
            ("output", self.output.into()),
        ];
        for (key, value) in values {
            if let Some(value) = value
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(format!(
                    "{key} must be dollars per million tokens (a number ≥ 0), got {value}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_per_million_tokens_with_cached_input_apart() {
        let price = Price {
            input: 2.0,
            cached_input: Some(0.5),
            output: 8.0,
        };
        let usage = Usage {
            input_tokens: 1_000_000,
            cached_tokens: 400_000,
            output_tokens: 500_000,
            reasoning_tokens: 0,
        };
        let cost = price.cost(&usage);
        assert!((cost - (1.2 + 0.2 + 4.0)).abs() < 1e-9, "{cost}");
        assert!(
            Price {
                input: -1.0,
                cached_input: None,
                output: 1.0
            }
            .check()
            .is_err()
        );
        assert!(
            Price {
                input: 1.0,
                cached_input: Some(f64::NAN),
                output: 1.0
            }
            .check()
            .is_err()
        );
    }
}
