//! A typed client for the mcx client API, used by the CLI, the tests, the demo and the
//! load generator. Errors keep the server's problem document, so callers can match on its
//! stable `code`.

#![warn(missing_docs, unreachable_pub)]

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::Eventsource as _;
use futures_util::{Stream, StreamExt as _};
use mcx_model::api::{
    AffiliationChangeRecord, ChangeAnswer, ChangeDecision, CreateGroupRequest, GroupAffiliations,
    GroupList, InterconnectionStatus, LogOnRequest, LogOnResponse, Problem, SessionInfo,
    ShareRequest, SubscriptionInfo, SystemInfo, UserAffiliations,
};
use mcx_model::events::{ClientEvent, DeliveredEvent};
use mcx_model::flows::affiliation::{
    GroupAffiliationChangeRequest, GroupAffiliationRequest, GroupAffiliationResponse,
    GroupDeaffiliationRequest, GroupDeaffiliationResponse,
};
use mcx_model::group::{GroupConfiguration, GroupRecord};
use mcx_model::{ClientId, McService, McServiceGroupId, McServiceId, NonEmpty, SystemDomain};
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem document.
    #[error("{} ({}): {}", problem.code, problem.status, problem.detail)]
    Api {
        /// The problem document.
        problem: Box<Problem>,
    },
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach the mcx server at {url}: {message}")]
    Transport {
        /// The URL requested.
        url: String,
        /// Why.
        message: String,
    },
    /// The server answered something this client does not understand.
    #[error("unexpected answer from {url}: {message}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The call needs a token and the client has none.
    #[error("not logged on: run 'mcx login' first")]
    NotLoggedOn,
}

impl ClientError {
    /// The problem document, when the server answered with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ClientError::Api { problem } => Some(problem),
            _ => None,
        }
    }

    /// The stable problem code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        self.problem().map(|p| p.code.as_str())
    }

    /// The HTTP status, when the server answered with a problem.
    pub fn status(&self) -> Option<u16> {
        self.problem().map(|p| p.status)
    }
}

/// A call's result.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Which version an update or delete applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// Whatever is stored (`If-Match: *`).
    Any,
    /// Only this version.
    Version(u64),
}

/// A stream of the session's events.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<DeliveredEvent>> + Send>>;

/// A client of one mcx server, optionally logged on.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Whose token it is, when the client logged on itself (saves asking the server).
    user: Option<McServiceId>,
}

/// Percent-encodes an identifier for a path segment.
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:7400`).
    pub fn new(base_url: &str) -> Result<Self> {
        // reqwest is built without a default crypto provider; mcx uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Transport {
                url: base,
                message: "the server URL must start with http:// or https://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Transport {
                url: base.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            http,
            base,
            token: None,
            user: None,
        })
    }

    /// The same client, using this bearer token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self.user = None;
        self
    }

    /// The bearer token, if logged on.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .timeout(Duration::from_secs(30));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    fn authed(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        if self.token.is_none() {
            return Err(ClientError::NotLoggedOn);
        }
        Ok(self.request(method, path))
    }

    async fn send(&self, builder: RequestBuilder) -> Result<Response> {
        let request = builder.build().map_err(|e| ClientError::Transport {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let url = request.url().to_string();
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                message: error_chain(&e),
            })?;
        if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
            return Ok(response);
        }
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        match serde_json::from_slice::<Problem>(&body) {
            Ok(problem) => Err(ClientError::Api {
                problem: Box::new(problem),
            }),
            Err(_) => Err(ClientError::Protocol {
                url,
                message: format!(
                    "status {status} without a problem document: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            }),
        }
    }

    async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T> {
        let response = self.send(builder).await?;
        let url = response.url().to_string();
        response.json().await.map_err(|e| ClientError::Protocol {
            url,
            message: e.to_string(),
        })
    }

    async fn with_body<B: Serialize, T: DeserializeOwned>(
        &self,
        builder: RequestBuilder,
        body: &B,
    ) -> Result<T> {
        self.json(builder.json(body)).await
    }

    /// Which system the server is.
    pub async fn system(&self) -> Result<SystemInfo> {
        self.json(self.request(Method::GET, "/v1/system")).await
    }

    /// What the server process uses (group administrators).
    pub async fn resources(&self) -> Result<mcx_model::api::SystemResources> {
        self.json(self.authed(Method::GET, "/v1/system/resources")?)
            .await
    }

    /// The server's OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.json(self.request(Method::GET, "/v1/openapi.json"))
            .await
    }

    /// Logs on; the returned client carries the new token.
    pub async fn log_on(
        &self,
        mc_service_id: &McServiceId,
        password: &str,
        client_id: &ClientId,
    ) -> Result<(Client, LogOnResponse)> {
        let request = LogOnRequest {
            mc_service_id: mc_service_id.clone(),
            password: password.to_string(),
            client_id: client_id.clone(),
        };
        let response: LogOnResponse = self
            .with_body(self.request(Method::POST, "/v1/session"), &request)
            .await?;
        let mut client = self.clone().with_token(response.token.clone());
        client.user = Some(response.session.mc_service_id.clone());
        Ok((client, response))
    }

    /// The current session.
    pub async fn session(&self) -> Result<SessionInfo> {
        self.json(self.authed(Method::GET, "/v1/session")?).await
    }

    /// Logs off.
    pub async fn log_off(&self) -> Result<()> {
        self.send(self.authed(Method::DELETE, "/v1/session")?)
            .await?;
        Ok(())
    }

    /// The groups the user may see.
    pub async fn groups(&self) -> Result<Vec<GroupRecord>> {
        let list: GroupList = self.json(self.authed(Method::GET, "/v1/groups")?).await?;
        Ok(list.groups)
    }

    /// One group.
    pub async fn group(&self, id: &McServiceGroupId) -> Result<GroupRecord> {
        let path = format!("/v1/groups/{}", segment(id.as_str()));
        self.json(self.authed(Method::GET, &path)?).await
    }

    /// Defines a group.
    pub async fn create_group(
        &self,
        id: &McServiceGroupId,
        configuration: &GroupConfiguration,
    ) -> Result<GroupRecord> {
        let request = CreateGroupRequest {
            mc_service_group_id: id.clone(),
            configuration: configuration.clone(),
        };
        self.with_body(self.authed(Method::POST, "/v1/groups")?, &request)
            .await
    }

    /// Replaces a group's configuration.
    pub async fn update_group(
        &self,
        id: &McServiceGroupId,
        configuration: &GroupConfiguration,
        if_match: IfMatch,
    ) -> Result<GroupRecord> {
        let path = format!("/v1/groups/{}", segment(id.as_str()));
        let builder = self
            .authed(Method::PUT, &path)?
            .header(header::IF_MATCH, if_match_value(if_match));
        self.with_body(builder, configuration).await
    }

    /// Deletes a group.
    pub async fn delete_group(
        &self,
        id: &McServiceGroupId,
        if_match: Option<IfMatch>,
    ) -> Result<()> {
        let path = format!("/v1/groups/{}", segment(id.as_str()));
        let mut builder = self.authed(Method::DELETE, &path)?;
        if let Some(if_match) = if_match {
            builder = builder.header(header::IF_MATCH, if_match_value(if_match));
        }
        self.send(builder).await?;
        Ok(())
    }

    /// Subscribes this client to a group's configuration.
    pub async fn subscribe(&self, id: &McServiceGroupId) -> Result<SubscriptionInfo> {
        let path = format!("/v1/groups/{}/subscription", segment(id.as_str()));
        self.json(self.authed(Method::PUT, &path)?).await
    }

    /// Ends this client's subscription to a group.
    pub async fn unsubscribe(&self, id: &McServiceGroupId) -> Result<()> {
        let path = format!("/v1/groups/{}/subscription", segment(id.as_str()));
        self.send(self.authed(Method::DELETE, &path)?).await?;
        Ok(())
    }

    /// Provides a group's configuration to a partner system (§10.2.7.2).
    pub async fn share_group(
        &self,
        id: &McServiceGroupId,
        partner: &SystemDomain,
    ) -> Result<InterconnectionStatus> {
        let path = format!("/v1/groups/{}/shares", segment(id.as_str()));
        let request = ShareRequest {
            partner: partner.clone(),
        };
        self.with_body(self.authed(Method::POST, &path)?, &request)
            .await
    }

    /// Generates new key material for a group.
    pub async fn rekey_group(&self, id: &McServiceGroupId) -> Result<GroupRecord> {
        let path = format!("/v1/groups/{}/rekey", segment(id.as_str()));
        self.json(self.authed(Method::POST, &path)?).await
    }

    /// Requests a partner-homed group's configuration from its primary (§10.2.7.3).
    pub async fn fetch_group(&self, id: &McServiceGroupId) -> Result<InterconnectionStatus> {
        let path = format!("/v1/groups/{}/fetch", segment(id.as_str()));
        self.json(self.authed(Method::POST, &path)?).await
    }

    /// How a group is shared between systems.
    pub async fn interconnection_status(
        &self,
        id: &McServiceGroupId,
    ) -> Result<InterconnectionStatus> {
        let path = format!("/v1/groups/{}/interconnection", segment(id.as_str()));
        self.json(self.authed(Method::GET, &path)?).await
    }

    /// The logged-on user's MC service ID, from the session.
    async fn me(&self) -> Result<McServiceId> {
        if let Some(user) = &self.user {
            return Ok(user.clone());
        }
        Ok(self.session().await?.mc_service_id)
    }

    /// Affiliates this client to groups (§10.8.3).
    pub async fn affiliate(
        &self,
        service: McService,
        groups: &[McServiceGroupId],
    ) -> Result<GroupAffiliationResponse> {
        let request = GroupAffiliationRequest {
            mc_service_id: self.me().await?,
            mc_service_group_id_list: non_empty(groups)?,
            mc_service: service,
        };
        self.with_body(self.authed(Method::POST, "/v1/affiliations")?, &request)
            .await
    }

    /// De-affiliates this client from groups (§10.8.4).
    pub async fn deaffiliate(
        &self,
        service: McService,
        groups: &[McServiceGroupId],
    ) -> Result<GroupDeaffiliationResponse> {
        let request = GroupDeaffiliationRequest {
            mc_service_id: self.me().await?,
            mc_service_group_id_list: non_empty(groups)?,
            mc_service: service,
        };
        self.with_body(self.authed(Method::POST, "/v1/deaffiliations")?, &request)
            .await
    }

    /// The logged-on user's affiliations.
    pub async fn affiliations(&self) -> Result<UserAffiliations> {
        self.json(self.authed(Method::GET, "/v1/affiliations")?)
            .await
    }

    /// Another user's affiliations.
    pub async fn user_affiliations(&self, user: &McServiceId) -> Result<UserAffiliations> {
        let path = format!("/v1/users/{}/affiliations", segment(user.as_str()));
        self.json(self.authed(Method::GET, &path)?).await
    }

    /// A group's affiliated members.
    pub async fn group_affiliations(&self, group: &McServiceGroupId) -> Result<GroupAffiliations> {
        let path = format!("/v1/groups/{}/affiliations", segment(group.as_str()));
        self.json(self.authed(Method::GET, &path)?).await
    }

    /// Asks for a remote change of other users' affiliations (§10.8.5).
    pub async fn request_change(
        &self,
        request: &GroupAffiliationChangeRequest,
    ) -> Result<AffiliationChangeRecord> {
        self.with_body(
            self.authed(Method::POST, "/v1/affiliation-changes")?,
            request,
        )
        .await
    }

    /// A remote change.
    pub async fn change(&self, change_id: &str) -> Result<AffiliationChangeRecord> {
        let path = format!("/v1/affiliation-changes/{}", segment(change_id));
        self.json(self.authed(Method::GET, &path)?).await
    }

    /// Answers a remote change addressed to the logged-on user.
    pub async fn answer_change(
        &self,
        change_id: &str,
        decision: ChangeDecision,
        reason: Option<String>,
    ) -> Result<AffiliationChangeRecord> {
        let path = format!("/v1/affiliation-changes/{}/response", segment(change_id));
        self.with_body(
            self.authed(Method::POST, &path)?,
            &ChangeAnswer { decision, reason },
        )
        .await
    }

    /// Regroups groups (§10.15.3.3.1); the record holds the request return and response.
    pub async fn regroup(
        &self,
        request: &mcx_model::flows::regroup::PreconfiguredRegroupRequest,
    ) -> Result<mcx_model::api::RegroupRecord> {
        self.with_body(self.authed(Method::POST, "/v1/regroups")?, request)
            .await
    }

    /// The regroups in effect that the server takes part in.
    pub async fn regroups(&self) -> Result<mcx_model::api::RegroupList> {
        self.json(self.authed(Method::GET, "/v1/regroups")?).await
    }

    /// One regroup.
    pub async fn regroup_status(
        &self,
        regroup: &McServiceGroupId,
    ) -> Result<mcx_model::api::RegroupRecord> {
        let path = format!("/v1/regroups/{}", segment(regroup.as_str()));
        self.json(self.authed(Method::GET, &path)?).await
    }

    /// Cancels a regroup.
    pub async fn cancel_regroup(
        &self,
        regroup: &McServiceGroupId,
    ) -> Result<mcx_model::flows::regroup::PreconfiguredRegroupCancelResponse> {
        let path = format!("/v1/regroups/{}", segment(regroup.as_str()));
        self.json(self.authed(Method::DELETE, &path)?).await
    }

    /// Acknowledges a regroup this client was affiliated to (step 9).
    pub async fn acknowledge_regroup(
        &self,
        regroup: &McServiceGroupId,
    ) -> Result<mcx_model::api::RegroupRecord> {
        let path = format!("/v1/regroups/{}/response", segment(regroup.as_str()));
        self.json(self.authed(Method::POST, &path)?).await
    }

    /// Provides interconnection group IDs to a partner system's user through the ACM servers.
    pub async fn acm_provide(
        &self,
        order: &mcx_model::api::AcmProvisionOrder,
    ) -> Result<mcx_model::api::AcmExchange> {
        self.with_body(self.authed(Method::POST, "/v1/acm/provisions")?, order)
            .await
    }

    /// The ACM exchanges this user sent.
    pub async fn acm_sent(&self) -> Result<mcx_model::api::AcmExchangeList> {
        self.json(self.authed(Method::GET, "/v1/acm/provisions")?)
            .await
    }

    /// The ACM exchanges addressed to this user.
    pub async fn acm_received(&self) -> Result<mcx_model::api::AcmExchangeList> {
        self.json(self.authed(Method::GET, "/v1/acm/requests")?)
            .await
    }

    /// Downloads pending ACM data.
    pub async fn acm_pending(
        &self,
    ) -> Result<mcx_model::flows::acm::DownloadPendingAcmDataResponse> {
        self.json(self.authed(Method::GET, "/v1/acm/pending")?)
            .await
    }

    /// Accepts or rejects an ACM request addressed to this user.
    pub async fn acm_respond(
        &self,
        request_id: &mcx_model::flows::acm::AcmRequestId,
        decision: &mcx_model::flows::acm::AcmDecision,
    ) -> Result<mcx_model::api::AcmExchange> {
        let path = format!("/v1/acm/requests/{request_id}/response");
        self.with_body(self.authed(Method::POST, &path)?, decision)
            .await
    }

    /// Applies an accepted ACM request's group IDs to local users' profiles.
    pub async fn acm_apply(
        &self,
        request_id: &mcx_model::flows::acm::AcmRequestId,
        apply: &mcx_model::api::AcmApplyRequest,
    ) -> Result<mcx_model::api::AcmExchange> {
        let path = format!("/v1/acm/requests/{request_id}/apply");
        self.with_body(self.authed(Method::POST, &path)?, apply)
            .await
    }

    /// The server's flow trace after position `after` (group administrators).
    pub async fn trace(&self, after: u64, limit: usize) -> Result<mcx_model::api::TraceList> {
        let path = format!("/v1/trace?after={after}&limit={limit}");
        self.json(self.authed(Method::GET, &path)?).await
    }

    /// Opens the session's event stream, resuming after `last_event_id` if given. The
    /// stream ends when the session ends or the server stops.
    pub async fn events(&self, last_event_id: Option<i64>) -> Result<EventStream> {
        let mut builder = self
            .authed(Method::GET, "/v1/events")?
            .timeout(Duration::from_secs(365 * 24 * 3600));
        if let Some(id) = last_event_id {
            builder = builder.header("last-event-id", id.to_string());
        }
        let response = self.send(builder).await?;
        let url = response.url().to_string();
        let stream = response
            .bytes_stream()
            .eventsource()
            .map(move |item| match item {
                Ok(event) => decode_event(&url, &event.id, &event.data),
                Err(e) => Err(ClientError::Transport {
                    url: url.clone(),
                    message: e.to_string(),
                }),
            });
        Ok(Box::pin(stream))
    }
}

fn decode_event(url: &str, id: &str, data: &str) -> Result<DeliveredEvent> {
    let protocol = |message: String| ClientError::Protocol {
        url: url.to_string(),
        message,
    };
    let id = id
        .parse::<i64>()
        .map_err(|_| protocol(format!("event id '{id}' is not a number")))?;
    let event: ClientEvent =
        serde_json::from_str(data).map_err(|e| protocol(format!("event {id}: {e}")))?;
    Ok(DeliveredEvent { id, event })
}

fn non_empty<T: Clone>(items: &[T]) -> Result<NonEmpty<T>> {
    NonEmpty::new(items.to_vec()).map_err(|_| ClientError::Protocol {
        url: String::new(),
        message: "at least one group is needed".into(),
    })
}

fn if_match_value(if_match: IfMatch) -> String {
    match if_match {
        IfMatch::Any => "*".to_string(),
        IfMatch::Version(v) => format!("\"{v}\""),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
