//! The server-to-server flows as one request enum and one response enum, so that a
//! durable outbox can hold any of them and the interconnection gateway can route them.
//! Each variant wraps the flow type unchanged; the wire carries the flow's own JSON.

use serde::{Deserialize, Serialize};

use super::acm::*;
use super::affiliation::*;
use super::group_configuration::*;
use super::regroup::*;
use crate::interconnection::Capability;

/// A request from one system to a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flow", content = "body", rename_all = "kebab-case")]
pub enum PartnerRequest {
    /// Group information provision request (§10.2.7.2).
    GroupInformationProvision(GroupInformationProvisionRequest),
    /// Group information request (§10.2.7.3).
    GroupInformationRequest(GroupInformationRequest),
    /// Group information subscribe request (§10.2.7.4).
    GroupInformationSubscribe(GroupInformationSubscribeRequest),
    /// Group information notify request (§10.2.7.5).
    GroupInformationNotify(GroupInformationNotifyRequest),
    /// Group information withdraw request (mcx: a deleted group).
    GroupInformationWithdraw(GroupInformationWithdrawRequest),
    /// MC service group affiliation request, server to server (§10.8.3.2).
    GroupAffiliation(ServerGroupAffiliationRequest),
    /// MC service group de-affiliation request, server to server (§10.8.4.3).
    GroupDeaffiliation(ServerGroupDeaffiliationRequest),
    /// MC service group affiliation change request to the group's host, mandatory mode
    /// (§10.8.5.2.1 step 3).
    GroupAffiliationChange(GroupAffiliationChangeRequest),
    /// Preconfigured regroup request, server to server (§10.15.3.3.1 step 5).
    PreconfiguredRegroup(ServerPreconfiguredRegroupRequest),
    /// Preconfigured regroup cancel request, server to server.
    PreconfiguredRegroupCancel(PreconfiguredRegroupCancelRequest),
    /// ACM group information provision request, primary ACM server → partner ACM server
    /// (TR 23.700-38 step 3).
    AcmGroupInformationProvision(AcmGroupInformationProvisionRequest),
    /// ACM group information provision response, partner ACM server → primary ACM server
    /// (step 10).
    AcmGroupInformationProvisionResponse(AcmGroupInformationProvisionResponse),
}

/// The answer to a [`PartnerRequest`], same variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flow", content = "body", rename_all = "kebab-case")]
pub enum PartnerResponse {
    /// Group information provision response.
    GroupInformationProvision(GroupInformationProvisionResponse),
    /// Group information response.
    GroupInformationRequest(GroupInformationResponse),
    /// Group information subscribe response.
    GroupInformationSubscribe(GroupInformationSubscribeResponse),
    /// Group information notify response.
    GroupInformationNotify(GroupInformationNotifyResponse),
    /// Group information withdraw response.
    GroupInformationWithdraw(GroupInformationWithdrawResponse),
    /// MC service group affiliation response, server to server.
    GroupAffiliation(ServerGroupAffiliationResponse),
    /// MC service group de-affiliation response, server to server.
    GroupDeaffiliation(ServerGroupDeaffiliationResponse),
    /// MC service group affiliation change response from the group's host.
    GroupAffiliationChange(GroupAffiliationChangeResponse),
    /// Preconfigured regroup response, server to server (step 11).
    PreconfiguredRegroup(ServerPreconfiguredRegroupResponse),
    /// Preconfigured regroup cancel response, server to server.
    PreconfiguredRegroupCancel(PreconfiguredRegroupCancelResponse),
    /// The partner ACM server stored the request (step 4b).
    AcmGroupInformationProvision(AcmProvisionStoredIndication),
    /// The primary ACM server stored the response (step 11).
    AcmGroupInformationProvisionResponse(AcmProvisionStoredIndication),
}

impl PartnerRequest {
    /// Which requests to one partner must arrive in the order they were decided: those
    /// of one lane. (De-)affiliation requests are ordered per user (the host applies the
    /// latest decision about a user and a group); a regroup and its cancellation per
    /// regroup group; every other flow shares one lane.
    pub fn ordering_lane(&self) -> String {
        match self {
            PartnerRequest::PreconfiguredRegroup(r) => format!("regroup {}", r.regroup_group_id),
            PartnerRequest::PreconfiguredRegroupCancel(r) => {
                format!("regroup {}", r.regroup_group_id)
            }
            PartnerRequest::GroupAffiliation(r) => r.mc_service_id.to_string(),
            PartnerRequest::GroupDeaffiliation(r) => r.mc_service_id.to_string(),
            PartnerRequest::GroupAffiliationChange(r) if r.mc_service_id_list.len() == 1 => {
                r.mc_service_id_list.first().to_string()
            }
            _ => String::new(),
        }
    }

    /// The flow's name as TS 23.280 titles it (kebab-case): also its route on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            PartnerRequest::GroupInformationProvision(_) => "group-information-provision",
            PartnerRequest::GroupInformationRequest(_) => "group-information-request",
            PartnerRequest::GroupInformationSubscribe(_) => "group-information-subscribe",
            PartnerRequest::GroupInformationNotify(_) => "group-information-notify",
            PartnerRequest::GroupInformationWithdraw(_) => "group-information-withdraw",
            PartnerRequest::GroupAffiliation(_) => "group-affiliation",
            PartnerRequest::GroupDeaffiliation(_) => "group-deaffiliation",
            PartnerRequest::GroupAffiliationChange(_) => "group-affiliation-change",
            PartnerRequest::PreconfiguredRegroup(_) => "preconfigured-regroup",
            PartnerRequest::PreconfiguredRegroupCancel(_) => "preconfigured-regroup-cancel",
            PartnerRequest::AcmGroupInformationProvision(_) => "acm-group-information-provision",
            PartnerRequest::AcmGroupInformationProvisionResponse(_) => {
                "acm-group-information-provision-response"
            }
        }
    }

    /// The capability the receiving system must grant the sender.
    pub fn capability(&self) -> Capability {
        match self {
            PartnerRequest::GroupInformationProvision(_)
            | PartnerRequest::GroupInformationWithdraw(_) => Capability::ProvideGroupConfiguration,
            PartnerRequest::GroupInformationRequest(_) => Capability::RequestGroupConfiguration,
            PartnerRequest::GroupInformationSubscribe(_)
            | PartnerRequest::GroupInformationNotify(_) => Capability::SubscribeGroupConfiguration,
            PartnerRequest::GroupAffiliation(_)
            | PartnerRequest::GroupDeaffiliation(_)
            | PartnerRequest::GroupAffiliationChange(_) => Capability::Affiliation,
            PartnerRequest::PreconfiguredRegroup(_)
            | PartnerRequest::PreconfiguredRegroupCancel(_) => Capability::Regroup,
            PartnerRequest::AcmGroupInformationProvision(_)
            | PartnerRequest::AcmGroupInformationProvisionResponse(_) => Capability::Acm,
        }
    }

    /// Decodes a request body received on the route named `name`.
    pub fn decode(name: &str, body: &[u8]) -> Result<Self, DecodeError> {
        Ok(match name {
            "group-information-provision" => {
                PartnerRequest::GroupInformationProvision(tolerant(body)?)
            }
            "group-information-request" => PartnerRequest::GroupInformationRequest(tolerant(body)?),
            "group-information-subscribe" => {
                PartnerRequest::GroupInformationSubscribe(tolerant(body)?)
            }
            "group-information-notify" => PartnerRequest::GroupInformationNotify(tolerant(body)?),
            "group-information-withdraw" => {
                PartnerRequest::GroupInformationWithdraw(tolerant(body)?)
            }
            "group-affiliation" => PartnerRequest::GroupAffiliation(tolerant(body)?),
            "group-deaffiliation" => PartnerRequest::GroupDeaffiliation(tolerant(body)?),
            "group-affiliation-change" => PartnerRequest::GroupAffiliationChange(tolerant(body)?),
            "preconfigured-regroup" => PartnerRequest::PreconfiguredRegroup(tolerant(body)?),
            "preconfigured-regroup-cancel" => {
                PartnerRequest::PreconfiguredRegroupCancel(tolerant(body)?)
            }
            "acm-group-information-provision" => {
                PartnerRequest::AcmGroupInformationProvision(tolerant(body)?)
            }
            "acm-group-information-provision-response" => {
                PartnerRequest::AcmGroupInformationProvisionResponse(tolerant(body)?)
            }
            other => return Err(DecodeError::UnknownFlow(other.to_string())),
        })
    }

    /// The flow's own JSON body.
    pub fn body(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            PartnerRequest::GroupInformationProvision(r) => serde_json::to_vec(r),
            PartnerRequest::GroupInformationRequest(r) => serde_json::to_vec(r),
            PartnerRequest::GroupInformationSubscribe(r) => serde_json::to_vec(r),
            PartnerRequest::GroupInformationNotify(r) => serde_json::to_vec(r),
            PartnerRequest::GroupInformationWithdraw(r) => serde_json::to_vec(r),
            PartnerRequest::GroupAffiliation(r) => serde_json::to_vec(r),
            PartnerRequest::GroupDeaffiliation(r) => serde_json::to_vec(r),
            PartnerRequest::GroupAffiliationChange(r) => serde_json::to_vec(r),
            PartnerRequest::PreconfiguredRegroup(r) => serde_json::to_vec(r),
            PartnerRequest::PreconfiguredRegroupCancel(r) => serde_json::to_vec(r),
            PartnerRequest::AcmGroupInformationProvision(r) => serde_json::to_vec(r),
            PartnerRequest::AcmGroupInformationProvisionResponse(r) => serde_json::to_vec(r),
        }
    }
}

impl PartnerResponse {
    /// The name of the request this answers (see [`PartnerRequest::name`]).
    pub fn name(&self) -> &'static str {
        match self {
            PartnerResponse::GroupInformationProvision(_) => "group-information-provision",
            PartnerResponse::GroupInformationRequest(_) => "group-information-request",
            PartnerResponse::GroupInformationSubscribe(_) => "group-information-subscribe",
            PartnerResponse::GroupInformationNotify(_) => "group-information-notify",
            PartnerResponse::GroupInformationWithdraw(_) => "group-information-withdraw",
            PartnerResponse::GroupAffiliation(_) => "group-affiliation",
            PartnerResponse::GroupDeaffiliation(_) => "group-deaffiliation",
            PartnerResponse::GroupAffiliationChange(_) => "group-affiliation-change",
            PartnerResponse::PreconfiguredRegroup(_) => "preconfigured-regroup",
            PartnerResponse::PreconfiguredRegroupCancel(_) => "preconfigured-regroup-cancel",
            PartnerResponse::AcmGroupInformationProvision(_) => "acm-group-information-provision",
            PartnerResponse::AcmGroupInformationProvisionResponse(_) => {
                "acm-group-information-provision-response"
            }
        }
    }

    /// The flow's own JSON body.
    pub fn body(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            PartnerResponse::GroupInformationProvision(r) => serde_json::to_vec(r),
            PartnerResponse::GroupInformationRequest(r) => serde_json::to_vec(r),
            PartnerResponse::GroupInformationSubscribe(r) => serde_json::to_vec(r),
            PartnerResponse::GroupInformationNotify(r) => serde_json::to_vec(r),
            PartnerResponse::GroupInformationWithdraw(r) => serde_json::to_vec(r),
            PartnerResponse::GroupAffiliation(r) => serde_json::to_vec(r),
            PartnerResponse::GroupDeaffiliation(r) => serde_json::to_vec(r),
            PartnerResponse::GroupAffiliationChange(r) => serde_json::to_vec(r),
            PartnerResponse::PreconfiguredRegroup(r) => serde_json::to_vec(r),
            PartnerResponse::PreconfiguredRegroupCancel(r) => serde_json::to_vec(r),
            PartnerResponse::AcmGroupInformationProvision(r) => serde_json::to_vec(r),
            PartnerResponse::AcmGroupInformationProvisionResponse(r) => serde_json::to_vec(r),
        }
    }

    /// Decodes the answer to `request` from its JSON body.
    pub fn decode_for(request: &PartnerRequest, body: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(request.name(), body)
    }
}

/// A flow as it is sent and as it is kept (the outbox, the answers given to partners):
/// its name and its own JSON body, decoded through the same tolerant decoder as the
/// wire. A row written by one release is read by the next however its types grew, and
/// what is stored never depends on how the in-memory enums are laid out.
#[derive(Debug, Serialize, Deserialize)]
struct StoredFlow {
    flow: String,
    body: serde_json::Value,
}

impl StoredFlow {
    fn write(name: &str, body: &[u8]) -> serde_json::Result<String> {
        serde_json::to_string(&StoredFlow {
            flow: name.to_string(),
            body: serde_json::from_slice(body)?,
        })
    }

    fn read(text: &str) -> Result<(String, Vec<u8>), DecodeError> {
        let invalid = |e: serde_json::Error| DecodeError::Invalid(e.to_string());
        let stored: StoredFlow = serde_json::from_str(text).map_err(invalid)?;
        Ok((
            stored.flow,
            serde_json::to_vec(&stored.body).map_err(invalid)?,
        ))
    }
}

impl PartnerRequest {
    /// The stored form: `{"flow": <name>, "body": <the flow's own JSON>}`.
    pub fn to_stored(&self) -> serde_json::Result<String> {
        StoredFlow::write(self.name(), &self.body()?)
    }

    /// Reads the stored form back, tolerating fields this release does not know.
    pub fn from_stored(text: &str) -> Result<Self, DecodeError> {
        let (name, body) = StoredFlow::read(text)?;
        Self::decode(&name, &body)
    }
}

impl PartnerResponse {
    /// The stored form: `{"flow": <name>, "body": <the flow's own JSON>}`.
    pub fn to_stored(&self) -> serde_json::Result<String> {
        StoredFlow::write(self.name(), &self.body()?)
    }

    /// Reads the stored form back, tolerating fields this release does not know.
    pub fn from_stored(text: &str) -> Result<Self, DecodeError> {
        let (name, body) = StoredFlow::read(text)?;
        Self::decode(&name, &body)
    }

    /// Decodes the answer to the request named `name` from its JSON body.
    pub fn decode(name: &str, body: &[u8]) -> Result<Self, DecodeError> {
        Ok(match name {
            "group-information-provision" => {
                PartnerResponse::GroupInformationProvision(tolerant(body)?)
            }
            "group-information-request" => {
                PartnerResponse::GroupInformationRequest(tolerant(body)?)
            }
            "group-information-subscribe" => {
                PartnerResponse::GroupInformationSubscribe(tolerant(body)?)
            }
            "group-information-notify" => PartnerResponse::GroupInformationNotify(tolerant(body)?),
            "group-information-withdraw" => {
                PartnerResponse::GroupInformationWithdraw(tolerant(body)?)
            }
            "group-affiliation" => PartnerResponse::GroupAffiliation(tolerant(body)?),
            "group-deaffiliation" => PartnerResponse::GroupDeaffiliation(tolerant(body)?),
            "group-affiliation-change" => PartnerResponse::GroupAffiliationChange(tolerant(body)?),
            "preconfigured-regroup" => PartnerResponse::PreconfiguredRegroup(tolerant(body)?),
            "preconfigured-regroup-cancel" => {
                PartnerResponse::PreconfiguredRegroupCancel(tolerant(body)?)
            }
            "acm-group-information-provision" => {
                PartnerResponse::AcmGroupInformationProvision(tolerant(body)?)
            }
            "acm-group-information-provision-response" => {
                PartnerResponse::AcmGroupInformationProvisionResponse(tolerant(body)?)
            }
            other => return Err(DecodeError::UnknownFlow(other.to_string())),
        })
    }
}

/// A server-to-server body that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No flow has that name.
    #[error("there is no interconnection flow named '{0}'")]
    UnknownFlow(String),
    /// The body is not a valid instance of the flow.
    #[error("the body is not a valid flow: {0}")]
    Invalid(String),
}

/// Decodes a flow from a partner that may run a newer release: a field this release
/// does not know is ignored, at any depth (systems are upgraded one at a time by
/// different operators, and an older one must tolerate what a newer one adds). The types
/// stay strict for the client API, where an unknown field is a client's mistake;
/// everything else in a flow is checked as strictly as ever.
fn tolerant<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Invalid(e.to_string()))?;
    // Each pass drops one unknown field; a document with more than this is refused.
    for _ in 0..64 {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(decoded) => return Ok(decoded),
            Err(error) => error,
        };
        let message = error.inner().to_string();
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string);
        let dropped = unknown
            .as_deref()
            .is_some_and(|field| drop_field(&mut value, error.path(), field));
        if !dropped {
            let at = error.path().to_string();
            return Err(DecodeError::Invalid(if at == "." {
                message
            } else {
                format!("{at}: {message}")
            }));
        }
    }
    Err(DecodeError::Invalid(
        "too many fields this release does not know".into(),
    ))
}

/// Removes `field` from the object at `path` (or, when the path names the field itself,
/// from its parent). `false` when there is no such object.
fn drop_field(
    value: &mut serde_json::Value,
    path: &serde_path_to_error::Path,
    field: &str,
) -> bool {
    use serde_path_to_error::Segment;
    let mut segments: Vec<&Segment> = path.iter().collect();
    if matches!(segments.last(), Some(Segment::Map { key }) if key == field) {
        segments.pop();
    }
    let mut here = value;
    for segment in segments {
        let next = match segment {
            Segment::Map { key } => here.get_mut(key.as_str()),
            Segment::Seq { index } => here.get_mut(*index),
            Segment::Enum { variant } => here.get_mut(variant.as_str()),
            Segment::Unknown => None,
        };
        match next {
            Some(next) => here = next,
            None => return false,
        }
    }
    here.as_object_mut()
        .is_some_and(|object| object.remove(field).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::FailureCause;

    /// The group information response as the first release read it: `result` was a
    /// `FailureReason` (`cause`, `reason`), with unknown fields refused by serde.
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    struct FirstReleaseGroupInformationResponse {
        #[allow(dead_code)]
        mc_service_group_id: crate::McServiceGroupId,
        #[serde(default)]
        #[allow(dead_code)]
        mc_service_group_configuration_information: Option<serde_json::Value>,
        #[serde(default)]
        result: Option<FailureReason>,
    }

    /// A partner one release behind reads the result this release writes in the shape of
    /// every flow's result (`outcome` added): its decoder drops the field it does not
    /// know, as every release's since the first does.
    #[test]
    fn a_first_release_partner_reads_the_group_information_result_written_now() {
        let refusal = GroupInformationResponse {
            mc_service_group_id: crate::McServiceGroupId::parse("sip:ops@police.example").unwrap(),
            outcome: GroupInformationOutcome::NotProvided(FailureReason {
                cause: FailureCause::UnknownGroup,
                reason: "no such group".into(),
            }),
        };
        let body = serde_json::to_vec(&refusal).unwrap();
        assert!(
            serde_json::from_slice::<FirstReleaseGroupInformationResponse>(&body).is_err(),
            "serde alone refuses the new field"
        );
        let read: FirstReleaseGroupInformationResponse = tolerant(&body).unwrap();
        let result = read.result.expect("the result is read");
        assert_eq!(result.cause, FailureCause::UnknownGroup);
        assert_eq!(result.reason, "no such group");
    }
}
