//! Helpers shared by the integration test binaries. Each binary uses a subset, so unused
//! helpers are expected here.
#![allow(dead_code)]

pub mod orchestrator;
