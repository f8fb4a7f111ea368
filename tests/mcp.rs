//! End-to-end tests of `basis mcp` through a real rmcp client: over a child process on stdio
//! (`stdio`), over streamable HTTP with its security rules (`http`), the onboarding flow
//! against a real `basis orchestrator` (`onboarding`), `tracing` events forwarded as log
//! notifications (`logging`), the task market's Worker and Evaluator Agent flows (`tasks`,
//! with its helpers in `market`), and a task that tries to make the agent publish host files
//! (`exfiltration`).

#[path = "common/mcp.rs"]
mod support;

#[path = "mcp/exfiltration.rs"]
mod exfiltration;
#[path = "mcp/http.rs"]
mod http;
#[path = "mcp/logging.rs"]
mod logging;
#[path = "mcp/market.rs"]
mod market;
#[path = "mcp/onboarding.rs"]
mod onboarding;
#[path = "mcp/stdio.rs"]
mod stdio;
#[path = "mcp/tasks.rs"]
mod tasks;
