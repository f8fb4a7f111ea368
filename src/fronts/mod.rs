//! The fronts: the CLI (`cli`) and, later, the MCP server. Thin: parse, call an operation, render.

pub mod cli;
pub mod mcp;
