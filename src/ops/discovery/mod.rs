//! Discovery and reputation on the worker's side (docs/DISCOVERY.md): `leaderboard`
//! (get_leaderboard, `basis leaderboard`), `erc8004` (`basis erc8004 prepare | link`: the
//! worker's registration file and the unsigned `register(agentURI)` calldata for the owner's
//! own wallet, then the agent id it got) and `feedback` (`basis erc8004 feedback`: an
//! evaluator attestation as an ERC-8004 reputation feedback payload).
//!
//! Nothing here signs or sends a transaction: basis holds no key. Calldata is prepared for the
//! owner to send from their own wallet.

pub mod erc8004;
pub mod feedback;
pub mod leaderboard;

use crate::domain::{AgentRegistry, ErrorCode, Problem};

/// The Identity (or Reputation) Registry: `--registry` and `--chain-id` when given, else the
/// default (the registry the network itself is registered in).
pub(crate) fn registry(
    address: Option<&str>,
    chain_id: Option<u64>,
    default: Option<AgentRegistry>,
    what: &str,
) -> Result<AgentRegistry, Problem> {
    match (address, chain_id, default) {
        (Some(address), Some(chain_id), _) => {
            AgentRegistry::new(chain_id, address.trim()).map_err(|e| {
                Problem::new(ErrorCode::InvalidArgument, format!("{what}: {e}"))
                    .with_fix("Give the registry's 0x address and the chain id it is on.")
            })
        }
        (None, None, Some(default)) => Ok(default),
        (Some(_), None, _) | (None, Some(_), _) => Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("{what}: give both the registry address and its chain id"),
        )
        .with_fix("Pass --registry 0x… together with --chain-id N.")),
        (None, None, None) => Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("{what}: no registry given, and the network names none"),
        )
        .with_fix(
            "Pass the ERC-8004 registry's address and chain id (--registry 0x… --chain-id N); \
             the registries' addresses are published with the ERC-8004 contracts.",
        )),
    }
}
