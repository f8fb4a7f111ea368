//! End-to-end tests of `basis mcp` through a real rmcp client: over a child process on stdio
//! (`stdio`), over streamable HTTP with its security rules (`http`), and the onboarding flow
//! against a real `basis orchestrator` (`onboarding`).

#[path = "common/mcp.rs"]
mod support;

#[path = "mcp/http.rs"]
mod http;
#[path = "mcp/onboarding.rs"]
mod onboarding;
#[path = "mcp/stdio.rs"]
mod stdio;
