//! [`BasisMcp`]: the MCP server handler. The tool router and the operations' [`Context`] are
//! built once and shared by every session (one for stdio, one per client over HTTP); a session
//! only adds its own logging (level, and the forwarding of `tracing` events once set).
// MCP logging is deprecated by SEP-2577 in rmcp, but the spec versions clients use today have it.
#![allow(deprecated)]

use std::sync::{Arc, OnceLock};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    CustomRequest, CustomResult, ErrorCode as RpcErrorCode, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio::runtime::Handle;

use super::logging::SessionLevel;
use super::{prompts, resources, tools};
use crate::ops::Context;

const INSTRUCTIONS: &str = "\
basis turns this machine into a worker of a compute network. To onboard, follow the prompt \
onboard_gpu_worker, or call check_hardware, write_env, register_worker, network_status, \
start_worker, verify_online in that order. Then earn from the task market: fetch_tasks, \
claim_task, execute_task (or produce the output yourself), submit_output, get_submission; an \
Evaluator Agent judges submissions with verify_output. The reward wallet is a PUBLIC address; \
never ask for or pass a private key, seed phrase, token or key (tools refuse them with \
SECRET_REFUSED). \
Failures come back as isError results whose text is a JSON object {code, message, fix}: apply \
the fix and retry.";

/// The MCP server. Cheap to clone: clones share everything but the logging level.
#[derive(Debug, Clone)]
pub struct BasisMcp {
    shared: Arc<Shared>,
    level: SessionLevel,
    /// Where tool calls run when the session loop is single-threaded (stdio): the process's
    /// multi-threaded runtime, so a probe's blocking work never stalls the protocol.
    work: Option<Handle>,
}

#[derive(Debug)]
struct Shared {
    ctx: Context,
    read_only: bool,
    /// The tools, built once: on a helper thread started when the client confirms the
    /// handshake (`notifications/initialized`), or by the first request that needs them.
    catalogue: OnceLock<Catalogue>,
    /// The `initialize` answer, computed once.
    info: ServerConfig,
}

#[derive(Debug)]
struct Catalogue {
    router: ToolRouter<BasisMcp>,
    /// `tools/list`: the router's visible tools, sorted by name.
    listed: Vec<Tool>,
}

impl Shared {
    fn catalogue(&self) -> &Catalogue {
        self.catalogue.get_or_init(|| {
            let router = tools::router(self.read_only);
            let listed = router.list_all();
            Catalogue { router, listed }
        })
    }
}

impl BasisMcp {
    /// A server for `ctx`. With `read_only`, every tool whose `read_only_hint` is not true is
    /// hidden from `tools/list` and refused by `tools/call`.
    pub fn new(ctx: Context, read_only: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                ctx,
                read_only,
                catalogue: OnceLock::new(),
                info: server_config(),
            }),
            level: SessionLevel::default(),
            work: None,
        }
    }

    /// Runs tool calls on `work` instead of the runtime that serves the session.
    #[must_use]
    pub fn with_work_runtime(mut self, work: Handle) -> Self {
        self.work = Some(work);
        self
    }

    /// Builds the tool catalogue on a helper thread unless it exists. Generating every tool's
    /// schemas takes milliseconds: the `initialize` answer does not wait for it.
    fn warm_catalogue(&self) {
        if self.shared.catalogue.get().is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let _ = std::thread::Builder::new()
            .name("basis-mcp-tools".to_owned())
            .spawn(move || {
                shared.catalogue();
            });
    }

    /// A handle for a new session: the same context and tools, its own logging level.
    #[must_use]
    pub fn session(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            level: SessionLevel::default(),
            work: self.work.clone(),
        }
    }

    /// The operations' context.
    pub fn ctx(&self) -> &Context {
        &self.shared.ctx
    }

    pub fn read_only(&self) -> bool {
        self.shared.read_only
    }

    /// The tools this server lists, sorted by name.
    pub fn tools(&self) -> &[Tool] {
        &self.shared.catalogue().listed
    }

    /// Dispatches a tool call through the router on the current runtime.
    async fn call_here(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        self.shared.catalogue().router.call(call).await
    }

    /// One `notifications/message` per tool call: the tool and its outcome, never its data.
    async fn log_call(
        &self,
        peer: &Peer<RoleServer>,
        tool: &str,
        result: &Result<CallToolResponse, ErrorData>,
    ) {
        let (level, data) = match result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                let code = problem_code(r);
                (
                    LoggingLevel::Warning,
                    json!({"tool": tool, "outcome": "refused", "code": code}),
                )
            }
            Ok(_) => (LoggingLevel::Info, json!({"tool": tool, "outcome": "ok"})),
            Err(e) => (
                LoggingLevel::Error,
                json!({"tool": tool, "outcome": "protocol_error", "code": e.code.0}),
            ),
        };
        self.level.notify(peer, level, data).await;
    }
}

/// What `initialize` answers: the capabilities, who we are, how to start.
fn server_config() -> ServerConfig {
    let capabilities = ServerCapabilities::builder()
        .enable_tools()
        .enable_resources()
        .enable_prompts()
        .enable_logging()
        .enable_completions()
        .build();
    ServerConfig::new(capabilities)
        .with_server_info(
            Implementation::new("basis", env!("CARGO_PKG_VERSION"))
                .with_title("basis GPU worker")
                .with_description(env!("CARGO_PKG_DESCRIPTION")),
        )
        .with_instructions(INSTRUCTIONS)
}

impl ServerHandler for BasisMcp {
    fn get_info(&self) -> ServerConfig {
        self.shared.info.clone()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Shown in a log notification: a name that is a secret is not echoed.
        let tool = crate::guard::redact_line(&request.name).into_owned();
        let peer = context.peer.clone();
        // Events the call emits go to this session only (see `logging`).
        let result = match &self.work {
            None => self.level.scope(self.call_here(request, context)).await,
            Some(work) => {
                let this = self.clone();
                work.spawn(async move { this.level.scope(this.call_here(request, context)).await })
                    .await
                    .unwrap_or_else(|e| {
                        Err(ErrorData::internal_error(
                            format!("the tool call failed: {e}"),
                            None,
                        ))
                    })
            }
        };
        self.log_call(&peer, &tool, &result).await;
        result
    }

    /// An unknown method: rmcp's default answer quotes the method; this one does not when it
    /// looks like a secret.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(ErrorData::new(
            RpcErrorCode::METHOD_NOT_FOUND,
            format!(
                "method not found: {}",
                crate::guard::redact_line(&request.method)
            ),
            None,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.shared.catalogue().router.get(name).cloned()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(resources::list())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(self.ctx(), &request.uri)
            .await
            .map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(prompts::list())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        prompts::get(&request.name, request.arguments.as_ref()).map(Into::into)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(prompts::complete(&request))
    }

    async fn on_initialized(&self, _context: NotificationContext<RoleServer>) {
        self.warm_catalogue();
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.level.set(request.level, &context.peer);
        Ok(())
    }
}

/// The stable code of an `isError` result written by [`super::args::problem_result`].
fn problem_code(result: &CallToolResult) -> Option<Value> {
    let text = &result.content.first()?.as_text()?.text;
    serde_json::from_str::<Value>(text)
        .ok()?
        .get("code")
        .cloned()
}
