//! Discovery: registration files, the agent link, the leaderboard. Only the agent link needs
//! a credential: the worker's ([`WorkerAuth`]).

use reqwest::Method;

use super::{ClientError, OrchestratorClient, WorkerAuth};
use crate::domain::WorkerId;
use crate::wire::{
    AgentLinkRequest, AgentRegistration, LEADERBOARD, Leaderboard, LeaderboardQuery,
    NETWORK_REGISTRATION, agent_link_path, worker_registration_path,
};

impl OrchestratorClient {
    /// `GET /.well-known/agent-registration.json`.
    pub async fn network_registration(&self) -> Result<AgentRegistration, ClientError> {
        let rb = self.request(Method::GET, NETWORK_REGISTRATION)?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// `GET /api/workers/{id}/agent-registration.json`.
    pub async fn worker_registration(
        &self,
        id: &WorkerId,
    ) -> Result<AgentRegistration, ClientError> {
        let rb = self.request(Method::GET, &worker_registration_path(id))?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// `POST /api/workers/{id}/agent-link`, made as the worker (`auth`).
    pub async fn link_agent(
        &self,
        body: &AgentLinkRequest,
        auth: WorkerAuth<'_>,
    ) -> Result<AgentRegistration, ClientError> {
        let path = agent_link_path(&body.worker_id);
        let rb = self.worker_request(Method::POST, &path, Some(body), auth)?;
        self.as_worker(rb, auth).await
    }

    /// `GET /api/leaderboard?window=&by=&family=&worker=&limit=`.
    pub async fn leaderboard(&self, q: &LeaderboardQuery) -> Result<Leaderboard, ClientError> {
        let path = leaderboard_path(q);
        let rb = self.request(Method::GET, &path)?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }
}

/// `/api/leaderboard` with the query, form-encoded.
fn leaderboard_path(q: &LeaderboardQuery) -> String {
    {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        if let Some(w) = q.window {
            form.append_pair("window", w.as_str());
        }
        if let Some(by) = q.by {
            form.append_pair("by", by.as_str());
        }
        if let Some(f) = &q.family {
            form.append_pair("family", f);
        }
        if let Some(w) = &q.worker {
            form.append_pair("worker", w.as_str());
        }
        if let Some(l) = q.limit {
            form.append_pair("limit", &l.to_string());
        }
        let encoded = form.finish();
        if encoded.is_empty() {
            LEADERBOARD.to_owned()
        } else {
            format!("{LEADERBOARD}?{encoded}")
        }
    }
}
