//! Tool arguments in and tool results out, at the MCP edge.
//!
//! In: [`Args`] deserializes a tool's arguments into the operation's `Input`. A shape error
//! (missing field, wrong JSON type) must not echo a value serde quotes in its message, so the
//! raw arguments go through the secrets guard first and a refusal wins. The input schema is the
//! `Input` type's own ([`input_schema`]).
//!
//! Out: [`reply`] turns an operation's `Result<Output, Problem>` into a tool result. A success
//! carries the output as `structuredContent` (schema: [`output_schema`]). A failure is
//! `isError: true` with the `{code, message, fix}` problem as JSON in its one text block and
//! no `structuredContent`: the problem does not follow the tool's `outputSchema`, and clients
//! that validate `structuredContent` against it (the TypeScript SDK does, even on errors) would
//! throw instead of showing the fix. An `INTERNAL` problem is a bug, not something an agent can
//! act on, so it becomes a JSON-RPC internal error instead.
//!
//! Schemas keep only JSON Schema's own formats ([`crate::wire::schema`]).

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::handler::server::common::{
    FromContextPart, schema_for_input, schema_for_output, schema_for_type,
};
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::{ErrorCode, Problem};
use crate::guard;
use crate::wire::schema::standard_formats;

/// A tool's arguments, parsed into an operation's `Input`, or the problem that stopped it.
#[derive(Debug)]
pub struct Args<T>(pub Result<T, Problem>);

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Args<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, ErrorData> {
        let value = Value::Object(context.arguments.take().unwrap_or_default());
        // The request whole: a secret split over several arguments is refused here; each
        // argument alone is the operation's to check (with its field's own message).
        let whole = guard::check_joined("arguments", &value).map_err(Problem::from);
        Ok(Self(whole.and_then(|()| parse(&value))))
    }
}

/// Deserializes `value`; on failure the guard runs on the raw value first, so a secret in a
/// mis-shaped argument is refused without being quoted back.
pub fn parse<T: DeserializeOwned>(value: &Value) -> Result<T, Problem> {
    T::deserialize(value).map_err(|error| match guard::check_json("arguments", value) {
        Err(refused) => refused.into(),
        Ok(()) => Problem::new(
            ErrorCode::InvalidArgument,
            format!("the arguments do not match the tool's input schema: {error}"),
        )
        .with_fix("call the tool again with arguments that follow its inputSchema"),
    })
}

/// The tool result for an operation's outcome.
pub fn reply<T: Serialize>(result: Result<T, Problem>) -> Result<CallToolResult, ErrorData> {
    match result {
        Ok(output) => serde_json::to_value(&output)
            .map(CallToolResult::structured)
            .map_err(|e| {
                ErrorData::internal_error(format!("cannot serialize the result: {e}"), None)
            }),
        Err(problem) if problem.code == ErrorCode::Internal => {
            Err(ErrorData::internal_error(problem.message, None))
        }
        Err(problem) => Ok(problem_result(&problem)),
    }
}

/// An `isError` result: one text block holding the problem as a JSON object
/// `{"code", "message", "fix"?}`, which agents parse and people can read; no
/// `structuredContent` (see the module doc).
pub fn problem_result(problem: &Problem) -> CallToolResult {
    let text = serde_json::to_string(problem).unwrap_or_else(|_| {
        // `Problem` is three strings; serializing it cannot fail. Should it ever, the code
        // and message still reach the agent as plain text.
        format!("{}: {}", problem.code, problem.message)
    });
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// The input schema of `T` (root `type: object`, top-level title and description removed).
/// A type whose root is not an object keeps its full schema, which the schema tests reject.
pub fn input_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    let schema = schema_for_input::<T>().unwrap_or_else(|_| schema_for_type::<T>());
    Arc::new(standard_formats(Arc::unwrap_or_clone(schema)))
}

/// The output schema of `T`, for what its `Serialize` writes.
pub fn output_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    Arc::new(standard_formats(Arc::unwrap_or_clone(
        schema_for_output::<T>(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Input {
        #[allow(dead_code)]
        models: Vec<String>,
    }

    const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                            abandon abandon abandon about";

    #[test]
    fn a_secret_in_a_mis_shaped_argument_is_refused_not_quoted() {
        let value = serde_json::json!({ "models": MNEMONIC });
        let problem = parse::<Input>(&value).unwrap_err();
        assert_eq!(problem.code, ErrorCode::SecretRefused);
        assert!(!problem.message.contains("abandon"));
        assert!(!problem.fix.unwrap_or_default().contains("abandon"));
    }

    #[test]
    fn a_plain_shape_error_is_an_invalid_argument() {
        let problem = parse::<Input>(&serde_json::json!({ "models": 3 })).unwrap_err();
        assert_eq!(problem.code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn problems_are_structured_errors_and_bugs_are_protocol_errors() {
        let p = Problem::new(ErrorCode::InvalidWallet, "bad").with_fix("fix it");
        let r = reply::<()>(Err(p)).unwrap();
        assert_eq!(r.is_error, Some(true));
        assert!(
            r.structured_content.is_none(),
            "no structuredContent on errors"
        );
        let text = &r.content[0].as_text().unwrap().text;
        let problem: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(problem["code"], "INVALID_WALLET");
        assert_eq!(problem["message"], "bad");
        assert_eq!(problem["fix"], "fix it");
        assert!(reply::<()>(Err(Problem::new(ErrorCode::Internal, "bug"))).is_err());
    }
}
