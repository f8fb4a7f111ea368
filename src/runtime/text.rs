//! Reading an OpenAI-compatible chat request: message texts and rough token counts, shared by
//! the echo simulator and the usage estimate of runtimes that report none.

use serde_json::Value;

use super::RuntimeError;

/// The request's `messages` array, or a [`RuntimeError::BadRequest`].
pub(super) fn messages(request: &Value) -> Result<&[Value], RuntimeError> {
    let Some(object) = request.as_object() else {
        return Err(RuntimeError::bad_request("the body must be a JSON object"));
    };
    match object.get("messages") {
        Some(Value::Array(messages)) => Ok(messages),
        Some(_) => Err(RuntimeError::bad_request("`messages` must be an array")),
        None => Err(RuntimeError::bad_request("`messages` is missing")),
    }
}

/// A message's text: `content` as a string, or the `text` parts of a content array joined by
/// newlines. Other parts (images, audio) are skipped.
pub(super) fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Whitespace-separated words in every message: the prompt-token estimate.
pub(super) fn prompt_words(messages: &[Value]) -> u64 {
    let words: usize = messages
        .iter()
        .map(|m| content_text(m).split_whitespace().count())
        .sum();
    u64::try_from(words).unwrap_or(u64::MAX)
}

/// `max_completion_tokens` or `max_tokens`, when set to a non-negative integer.
pub(super) fn max_tokens(request: &Value) -> Option<u64> {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| request.get(*k).and_then(Value::as_u64))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_string_and_part_contents() {
        let req = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a b"}, {"type": "image_url"}, {"type": "text", "text": "c"}]}
        ], "max_tokens": 3});
        let msgs = messages(&req).unwrap();
        assert_eq!(content_text(&msgs[1]), "a b\nc");
        assert_eq!(prompt_words(msgs), 5);
        assert_eq!(max_tokens(&req), Some(3));
        assert!(messages(&json!([])).is_err());
        assert!(messages(&json!({"messages": "x"})).is_err());
        assert!(messages(&json!({})).is_err());
    }
}
