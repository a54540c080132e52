//! The ACM servers' decisions on what a partner sends (TR 23.700-38 steps 3–4b at the
//! partner, 10–11 at the primary), as pure functions of what was read.

use mcx_model::SystemDomain;
use mcx_model::api::{AcmExchange, AcmState};
use mcx_model::flows::acm::{
    AcmGroupInformationProvisionRequest, AcmGroupInformationProvisionResponse,
};
use mcx_model::flows::{FailureCause, FlowResult};

/// What the partner ACM server does with a provision request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ProvisionVerdict {
    /// Stored before (a copy): acknowledged, nothing changes.
    AlreadyStored,
    /// Refused, with the result the primary records.
    Refuse(FlowResult),
    /// Stored for its target (step 4a), acknowledged (4b).
    Store,
}

/// Step 4 at the partner `system`: only a partner's own users may send, only groups
/// defined in the sender's system may be offered, and only to a user here authorised
/// for ACM (`target_authorised`, read from the target's profile).
pub(super) fn provision_verdict(
    system: &SystemDomain,
    from: &SystemDomain,
    request: &AcmGroupInformationProvisionRequest,
    already_stored: bool,
    target_authorised: bool,
) -> ProvisionVerdict {
    if already_stored {
        return ProvisionVerdict::AlreadyStored;
    }
    if request.mc_service_id.domain() != *from {
        return ProvisionVerdict::Refuse(FlowResult::failure(
            FailureCause::NotAuthorized,
            format!(
                "the sender {} is not a user of {from}",
                request.mc_service_id
            ),
        ));
    }
    if let Some(foreign) = request
        .interconnection_group_id_list
        .iter()
        .find(|g| g.home_system() != *from)
    {
        return ProvisionVerdict::Refuse(FlowResult::failure(
            FailureCause::GroupNotHomedHere,
            format!("'{foreign}' is not a group of {from}: a system provides only its own groups"),
        ));
    }
    let target = &request.target_mc_service_id;
    if target.domain() != *system || !target_authorised {
        return ProvisionVerdict::Refuse(FlowResult::failure(
            FailureCause::UnknownUser,
            format!("{target} is not a user of {system} authorised for ACM"),
        ));
    }
    ProvisionVerdict::Store
}

/// What the primary ACM server does with the target's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ResponseVerdict {
    /// Refused, with the result the partner records.
    Refuse(FlowResult),
    /// A response came before: the first one stands; this one is acknowledged.
    /// `different`: it does not repeat the first.
    Answered {
        /// It differs from the first.
        different: bool,
    },
    /// Recorded (step 11), the sender told.
    Record,
}

/// Step 11 at the primary `system`: the response must answer a request this system sent
/// (`exchange`, read by its request ID) to that user of that partner.
pub(super) fn response_verdict(
    system: &SystemDomain,
    from: &SystemDomain,
    response: &AcmGroupInformationProvisionResponse,
    exchange: Option<&AcmExchange>,
) -> ResponseVerdict {
    let request_id = response.request_id;
    let Some(exchange) = exchange else {
        return ResponseVerdict::Refuse(FlowResult::failure(
            FailureCause::InvalidRequest,
            format!("there is no ACM request {request_id} in {system}"),
        ));
    };
    if &exchange.partner_system != from
        || exchange.request.target_mc_service_id != response.mc_service_id
    {
        return ResponseVerdict::Refuse(FlowResult::failure(
            FailureCause::NotAuthorized,
            format!(
                "ACM request {request_id} was not sent to {} of {from}",
                response.mc_service_id
            ),
        ));
    }
    if exchange.state == AcmState::Answered {
        return ResponseVerdict::Answered {
            different: exchange.response.as_ref() != Some(response),
        };
    }
    ResponseVerdict::Record
}

#[cfg(test)]
mod tests {
    use mcx_model::flows::acm::AcmDecision;
    use mcx_model::{McServiceGroupId, McServiceId, NonEmpty};

    use super::*;

    fn domain(text: &str) -> SystemDomain {
        SystemDomain::parse(text).expect("a valid domain")
    }

    fn user(text: &str) -> McServiceId {
        McServiceId::parse(text).expect("a valid user ID")
    }

    fn provision(sender: &str, groups: &[&str]) -> AcmGroupInformationProvisionRequest {
        AcmGroupInformationProvisionRequest {
            mc_service_id: user(sender),
            target_mc_service_id: user("sip:admin@fire.example"),
            interconnection_group_id_list: NonEmpty::try_from(
                groups
                    .iter()
                    .map(|g| McServiceGroupId::parse(g).expect("a valid group"))
                    .collect::<Vec<_>>(),
            )
            .expect("one group or more"),
            request_id: None,
        }
    }

    fn cause(verdict: ProvisionVerdict) -> Option<FailureCause> {
        match verdict {
            ProvisionVerdict::Refuse(FlowResult::Failure { cause, .. }) => Some(cause),
            _ => None,
        }
    }

    #[test]
    fn a_partner_offers_only_its_own_groups_from_its_own_users_to_an_authorised_user() {
        let (fire, police) = (domain("fire.example"), domain("police.example"));
        let good = provision("sip:chief@police.example", &["sip:ops@police.example"]);
        assert_eq!(
            provision_verdict(&fire, &police, &good, false, true),
            ProvisionVerdict::Store
        );
        assert_eq!(
            provision_verdict(&fire, &police, &good, true, true),
            ProvisionVerdict::AlreadyStored
        );
        assert_eq!(
            cause(provision_verdict(&fire, &police, &good, false, false)),
            Some(FailureCause::UnknownUser)
        );
        let foreign_sender = provision("sip:ann@ambulance.example", &["sip:ops@police.example"]);
        assert_eq!(
            cause(provision_verdict(
                &fire,
                &police,
                &foreign_sender,
                false,
                true
            )),
            Some(FailureCause::NotAuthorized)
        );
        let foreign_group = provision("sip:chief@police.example", &["sip:ops@ambulance.example"]);
        assert_eq!(
            cause(provision_verdict(
                &fire,
                &police,
                &foreign_group,
                false,
                true
            )),
            Some(FailureCause::GroupNotHomedHere)
        );
    }

    #[test]
    fn the_first_response_stands() {
        let (fire, police) = (domain("fire.example"), domain("police.example"));
        let mut request = provision("sip:chief@police.example", &["sip:ops@police.example"]);
        let request_id = uuid::Uuid::from_u128(7);
        request.request_id = Some(request_id);
        let response = AcmGroupInformationProvisionResponse {
            mc_service_id: user("sip:admin@fire.example"),
            request_id,
            decision: AcmDecision::Accepted,
        };
        let mut exchange = AcmExchange {
            request,
            primary_system: police.clone(),
            partner_system: fire.clone(),
            state: AcmState::Stored,
            detail: None,
            response: None,
            applied_to: Vec::new(),
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(
            response_verdict(&police, &fire, &response, None),
            ResponseVerdict::Refuse(FlowResult::failure(
                FailureCause::InvalidRequest,
                format!(
                    "there is no ACM request {} in police.example",
                    response.request_id
                ),
            ))
        );
        assert_eq!(
            response_verdict(&police, &fire, &response, Some(&exchange)),
            ResponseVerdict::Record
        );
        // From another partner than the one asked: refused.
        assert!(matches!(
            response_verdict(
                &police,
                &domain("ambulance.example"),
                &response,
                Some(&exchange)
            ),
            ResponseVerdict::Refuse(_)
        ));
        exchange.state = AcmState::Answered;
        exchange.response = Some(response.clone());
        assert_eq!(
            response_verdict(&police, &fire, &response, Some(&exchange)),
            ResponseVerdict::Answered { different: false }
        );
        let rejected = AcmGroupInformationProvisionResponse {
            decision: AcmDecision::Rejected { reason: None },
            ..response
        };
        assert_eq!(
            response_verdict(&police, &fire, &rejected, Some(&exchange)),
            ResponseVerdict::Answered { different: true }
        );
    }
}
