//! `basis mcp` over stdio: the catalogue, every tool called and its output validated, the
//! secrets guard on every string argument, `--read-only`, the env resource, the prompt,
//! completion and logging levels.
#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 in rmcp

use std::time::Duration;

use rmcp::model::{
    ArgumentInfo, CallToolRequestParams, CompleteRequestParams, GetPromptRequestParams,
    LoggingLevel, NumberOrString, ProgressToken, ReadResourceRequestParams, Reference,
    RequestMetaObject, ResourceContents, SetLevelRequestParams,
};
use serde_json::{Value, json};

use crate::support::{
    self, Home, MNEMONIC, Result, SECRET_FAMILIES, WALLET, call, check_result, private_key,
    problem, sample_args, string_properties, token_in,
};

#[tokio::test]
async fn every_tool_is_listed_with_metadata_and_answers_with_valid_structured_content() -> Result {
    let home = Home::new()?;
    let (client, stderr) = support::stdio(&home, &[]).await?;
    let tools = client.list_all_tools().await?;
    assert!(tools.iter().any(|t| t.name == "write_env"), "{tools:?}");
    for tool in &tools {
        assert!(
            tool.title.is_some() && tool.description.is_some(),
            "{}",
            tool.name
        );
        assert!(
            tool.output_schema.is_some(),
            "{} has no outputSchema",
            tool.name
        );
        let result = call(&client, &tool.name, Value::Object(sample_args(&tool.name))).await?;
        check_result(tool, &result)?;
    }
    client.cancel().await?;
    let token = token_in(&home.env_file())?;
    assert!(
        !stderr.text().contains(&token),
        "the token leaked into the log"
    );
    Ok(())
}

#[tokio::test]
async fn a_secret_in_any_string_argument_of_any_tool_is_refused_and_not_echoed() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let key = private_key();
    let bare_key = key.trim_start_matches("0x").to_owned();
    for tool in client.list_all_tools().await? {
        for (field, is_list, is_hash) in string_properties(&tool) {
            let mut secrets = vec![MNEMONIC.to_owned()];
            if !is_hash {
                secrets.push(key.clone());
                secrets.push(bare_key.clone());
                secrets.extend(SECRET_FAMILIES.iter().map(|s| (*s).to_owned()));
            }
            if FREE_TEXT.contains(&(tool.name.as_ref(), field.as_str())) {
                // Where a hash belongs, a 64-hex value is refused when labelled as a key.
                for s in &mut secrets {
                    *s = format!("my private key: {s}");
                }
            }
            for secret in secrets {
                let mut args = sample_args(&tool.name);
                let value = if is_list {
                    // A list also gets the secret split over two items.
                    let words: Vec<&str> = secret.split(' ').collect();
                    if words.len() >= 12 {
                        json!([words[..6].join("-"), words[6..].join("-")])
                    } else {
                        json!([secret])
                    }
                } else {
                    json!(secret)
                };
                args.insert(field.clone(), value);
                let result = call(&client, &tool.name, Value::Object(args)).await?;
                let code = problem(&result).map(|p| p["code"].clone());
                assert_eq!(
                    result.is_error,
                    Some(true),
                    "{}.{field} accepted a secret",
                    tool.name
                );
                assert!(
                    matches!(
                        code.as_ref().and_then(Value::as_str),
                        Some("SECRET_REFUSED" | "PRIVATE_KEY_REFUSED")
                    ),
                    "{}.{field}: {code:?}",
                    tool.name
                );
                let shown = serde_json::to_string(&result)?;
                let piece = secret.get(8..24).unwrap_or(&secret);
                assert!(
                    !shown.contains(&secret)
                        && !shown.contains(&bare_key)
                        && !shown.contains(piece),
                    "{}.{field} echoed it",
                    tool.name
                );
                assert!(
                    !shown.contains("legal winner"),
                    "{}.{field} echoed the mnemonic",
                    tool.name
                );
            }
        }
    }
    assert!(
        !home.env_file().exists(),
        "a refused call wrote the env file"
    );
    client.cancel().await?;
    Ok(())
}

/// The tool arguments that are free text where a hash belongs: there a bare 64-hex value (a
/// transaction hash, a digest) passes and only a labelled one is refused.
const FREE_TEXT: &[(&str, &str)] = &[
    ("submit_output", "output"),
    ("verify_output", "reasons"),
    ("dispute_output", "reason"),
];

#[tokio::test]
async fn hashes_pass_in_free_text_arguments_and_nowhere_else() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let tx = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";
    let digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let tools = client.list_all_tools().await?;
    for (tool_name, field) in FREE_TEXT {
        let tool = tools
            .iter()
            .find(|t| t.name == *tool_name)
            .ok_or_else(|| format!("no tool {tool_name}"))?;
        let is_list = string_properties(tool)
            .into_iter()
            .any(|(f, is_list, _)| f == *field && is_list);
        for text in [
            format!("paid in transaction {tx}"),
            digest.to_owned(),
            format!("{{\"txHash\": \"{tx}\", \"root\": \"0x{digest}\"}}"),
        ] {
            let mut args = sample_args(tool_name);
            // Well-formed otherwise, so the arguments parse (a mis-shaped call is checked
            // strictly whole, as its shape error could quote any field).
            if *tool_name == "submit_output" {
                args.insert(
                    "task_id".into(),
                    json!("task-0123456789abcdef0123456789abcdef"),
                );
            } else {
                args.insert(
                    "submission_id".into(),
                    json!("sub-0123456789abcdef0123456789abcdef"),
                );
            }
            let value = if is_list { json!([text]) } else { json!(text) };
            args.insert((*field).to_owned(), value);
            let result = call(&client, tool_name, Value::Object(args)).await?;
            // The call may fail for want of a registered worker or a key; never as a secret.
            let code = problem(&result).map(|p| p["code"].clone());
            assert_ne!(
                code.as_ref().and_then(Value::as_str),
                Some("SECRET_REFUSED"),
                "{tool_name}.{field} refused a hash: {text}"
            );
        }
    }
    // The same hash in a strict field (an id, a model name) is still refused.
    let result = call(&client, "write_env", json!({"worker_id": tx})).await?;
    assert_eq!(
        problem(&result).map(|p| p["code"].clone()),
        Some(json!("SECRET_REFUSED"))
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn a_secret_in_a_mis_shaped_argument_is_refused_too() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    // `models` is a list: a string there fails deserialization, whose message would quote it.
    let result = call(&client, "write_env", json!({"models": MNEMONIC})).await?;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        problem(&result).map(|p| p["code"].clone()),
        Some(json!("SECRET_REFUSED"))
    );
    assert!(!serde_json::to_string(&result)?.contains("legal winner"));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn read_only_hides_and_refuses_every_tool_that_writes() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &["--read-only"]).await?;
    let tools = client.list_all_tools().await?;
    for tool in &tools {
        assert!(
            basis::fronts::mcp::is_read_only(tool),
            "{} is listed in read-only mode",
            tool.name
        );
    }
    assert!(tools.iter().all(|t| t.name != "write_env"));
    let refused = call(
        &client,
        "write_env",
        Value::Object(sample_args("write_env")),
    )
    .await;
    assert!(
        refused.is_err(),
        "write_env ran in read-only mode: {refused:?}"
    );
    assert!(!home.env_file().exists());
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn the_env_resource_shows_the_fingerprint_never_the_token() -> Result {
    let home = Home::new()?;
    let (client, stderr) = support::stdio(&home, &[]).await?;
    assert!(read_env(&client).await?.contains("no worker env file"));
    let written = call(
        &client,
        "write_env",
        Value::Object(sample_args("write_env")),
    )
    .await?;
    let fingerprint = written
        .structured_content
        .as_ref()
        .map(|s| s["key_fingerprint"].clone());
    let text = read_env(&client).await?;
    let token = token_in(&home.env_file())?;
    assert!(!text.contains(&token), "the resource shows the token");
    assert!(
        text.contains(
            fingerprint
                .and_then(|f| f.as_str().map(str::to_owned))
                .unwrap_or_default()
                .as_str()
        )
    );
    assert!(text.contains(WALLET));
    client.cancel().await?;
    assert!(!stderr.text().contains(&token));
    Ok(())
}

#[tokio::test]
async fn both_resources_are_listed_and_the_log_reads_without_a_worker() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let uris: Vec<String> = client
        .list_all_resources()
        .await?
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert!(
        uris.contains(&basis::fronts::mcp::ENV_URI.to_owned()),
        "{uris:?}"
    );
    assert!(
        uris.contains(&basis::fronts::mcp::LOG_URI.to_owned()),
        "{uris:?}"
    );
    let log = client
        .read_resource(ReadResourceRequestParams::new(basis::fronts::mcp::LOG_URI))
        .await?;
    assert_eq!(log.contents.len(), 1);
    let missing = client
        .read_resource(ReadResourceRequestParams::new("basis://nothing"))
        .await;
    assert!(
        missing.is_err(),
        "an unknown resource was read: {missing:?}"
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn the_onboarding_prompt_and_runtime_completion() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let prompts = client.list_all_prompts().await?;
    assert!(prompts.iter().any(|p| p.name == "onboard_gpu_worker"));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("onboard_gpu_worker"))
        .await?;
    let text = serde_json::to_string(&prompt)?;
    for step in [
        "check_hardware",
        "write_env",
        "register_worker",
        "network_status",
    ] {
        assert!(text.contains(step), "the prompt skips {step}");
    }
    let completion = client
        .complete(CompleteRequestParams::new(
            Reference::for_prompt("onboard_gpu_worker"),
            ArgumentInfo::new("runtime", "v"),
        ))
        .await?;
    assert_eq!(completion.completion.values, vec!["vllm"]);
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn log_notifications_follow_the_level_the_client_sets() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let logs = client.service().logs.clone();
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await?;
    call(
        &client,
        "write_env",
        Value::Object(sample_args("write_env")),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        support::lock(&logs).is_empty(),
        "an info notification passed an error level"
    );
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await?;
    call(
        &client,
        "write_env",
        Value::Object(sample_args("write_env")),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = support::lock(&logs).clone();
    assert!(got.iter().any(|l| l.data["tool"] == "write_env"), "{got:?}");
    let token = token_in(&home.env_file())?;
    assert!(!serde_json::to_string(&got)?.contains(&token));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn long_tools_report_progress_when_asked() -> Result {
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let token = ProgressToken(NumberOrString::String("hw-1".into()));
    let mut params = CallToolRequestParams::new("check_hardware");
    params.meta = Some(RequestMetaObject::with_progress_token(token));
    let result = client.call_tool(params).await?;
    assert_ne!(
        result.is_error,
        Some(true),
        "{:?}",
        result.structured_content
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let progress = support::lock(&client.service().progress).clone();
    // The rmcp client puts its own token on the request; what matters is start and end.
    assert!(
        progress
            .iter()
            .any(|p| p.progress == 0.0 && p.message.is_some()),
        "{progress:?}"
    );
    assert!(progress.iter().any(|p| p.progress >= 1.0), "{progress:?}");
    client.cancel().await?;
    Ok(())
}

async fn read_env(client: &support::Client) -> Result<String> {
    let request = ReadResourceRequestParams::new(basis::fronts::mcp::ENV_URI);
    let result = client.read_resource(request).await?;
    match result.contents.first() {
        Some(ResourceContents::TextResourceContents { text, .. }) => Ok(text.clone()),
        other => Err(format!("unexpected contents {other:?}").into()),
    }
}

#[tokio::test]
async fn a_refused_secret_never_reaches_the_log_at_any_level() -> Result {
    let home = Home::new()?;
    let (client, stderr) = support::stdio_with_env(&home, &[], &[("RUST_LOG", "trace")]).await?;
    let key = private_key();
    let bare = key.trim_start_matches("0x").to_owned();
    for args in [
        json!({"wallet": key, "worker_id": "box-1"}),
        json!({"wallet": WALLET, "worker_id": "box-1", "models": [MNEMONIC]}),
    ] {
        let result = call(&client, "write_env", args).await?;
        assert_eq!(result.is_error, Some(true));
    }
    client.cancel().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logged = stderr.text();
    // rmcp logs every request's arguments at debug and trace: the lines are there, redacted.
    assert!(
        logged.contains("write_env"),
        "no trace of the calls:\n{logged}"
    );
    assert!(
        logged.contains("[REDACTED"),
        "nothing was redacted:\n{logged}"
    );
    assert!(
        !logged.contains(&bare),
        "the key reached the log:\n{logged}"
    );
    assert!(
        !logged.contains("legal winner"),
        "the mnemonic reached the log"
    );
    Ok(())
}

#[tokio::test]
async fn a_secret_as_a_tool_name_uri_prompt_or_method_is_not_echoed() -> Result {
    let home = Home::new()?;
    // Default log level (warn for dependencies) and a session listening at debug.
    let (client, stderr) = support::stdio(&home, &[]).await?;
    let logs = client.service().logs.clone();
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await?;
    let key = private_key();
    let bare = key.trim_start_matches("0x").to_owned();
    let answers = [
        format!(
            "{:?}",
            client
                .call_tool(CallToolRequestParams::new(key.clone()))
                .await
        ),
        format!(
            "{:?}",
            client
                .read_resource(ReadResourceRequestParams::new(format!("basis://{key}")))
                .await
        ),
        format!(
            "{:?}",
            client
                .get_prompt(GetPromptRequestParams::new(key.clone()))
                .await
        ),
        format!(
            "{:?}",
            client
                .send_request(rmcp::model::ClientRequest::CustomRequest(
                    rmcp::model::CustomRequest::new(key.clone(), None)
                ))
                .await
        ),
    ];
    for answer in &answers {
        assert!(!answer.contains(&bare), "echoed: {answer}");
        assert!(answer.contains("rror"), "not refused: {answer}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let notified = serde_json::to_string(&support::lock(&logs).clone())?;
    assert!(!notified.contains(&bare), "a log notification echoed it");
    assert!(!stderr.text().contains(&bare), "stderr echoed it");
    client.cancel().await?;
    Ok(())
}
