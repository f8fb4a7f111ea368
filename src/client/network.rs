//! The orchestrator itself: `health()` and `onboarding_status()`.

use reqwest::{Method, StatusCode};

use super::{ClientError, OrchestratorClient};
use crate::wire::{HEALTH, Health, ONBOARDING_STATUS, OnboardingStatus};

impl OrchestratorClient {
    /// `GET /health`. A degraded orchestrator (503 with a health body) is an `Ok` whose
    /// `status` says so.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let rb = self.request(Method::GET, HEALTH)?;
        let (_, health) = self
            .send(rb, &[StatusCode::SERVICE_UNAVAILABLE], &[])
            .await?;
        Ok(health)
    }

    /// `GET /api/workers/onboarding/status`: registration mode, routing, settlement, timings.
    pub async fn onboarding_status(&self) -> Result<OnboardingStatus, ClientError> {
        let rb = self.request(Method::GET, ONBOARDING_STATUS)?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }
}
