//! Combining partners' answers to a preconfigured regroup (§10.15.3.3.1 steps 11–12) at
//! the initiator: a pure function of the answers so far and whom the regroup was asked of.

use std::collections::BTreeSet;

use mcx_model::SystemDomain;
use mcx_model::api::RegroupRecord;
use mcx_model::flows::FlowResult;
use mcx_model::flows::regroup::RegroupCause;

use crate::error::{ErrorKind, codes};

/// Where a forming regroup stands after an answer (or its deadline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Some partners have not answered, and none homing a group refused: wait.
    Waiting,
    /// Every partner homing a regrouped group took part: make it (steps 6–10 here, 12).
    Make,
    /// A partner homing a regrouped group did not take part: undo everything.
    Abandon {
        /// Why, for the initiator.
        cause: RegroupCause,
        /// A sentence naming the partner and its reason.
        why: String,
    },
}

/// The verdict on `record` (its answers so far) at the initiator `system`, which asked
/// `asked_of`. `deadline_passed`: partners that have not answered are given up on
/// (their answers recorded as failures before this is called).
pub(super) fn regroup_verdict(
    system: &SystemDomain,
    record: &RegroupRecord,
    asked_of: &[SystemDomain],
    deadline_passed: bool,
) -> Verdict {
    // A partner homing one of the regrouped groups must take part; one that only serves
    // members may fail without stopping the regroup.
    let required: BTreeSet<SystemDomain> = record
        .mc_service_group_id_list
        .iter()
        .map(|g| g.home_system())
        .filter(|h| h != system)
        .collect();
    let refusal = record.answers.iter().find_map(|answer| {
        let FlowResult::Failure { cause, reason } = &answer.result else {
            return None;
        };
        if !required.contains(&answer.system) {
            return None;
        }
        let regroup_cause = match cause.as_str().parse::<RegroupCause>() {
            Ok(
                known @ (RegroupCause::PartnerUnreachable
                | RegroupCause::UnknownGroup
                | RegroupCause::AlreadyRegrouped),
            ) => known,
            _ => RegroupCause::PartnerRefused,
        };
        Some(Verdict::Abandon {
            cause: regroup_cause,
            why: format!(
                "partner '{}' did not take part ({cause}): {reason}",
                answer.system
            ),
        })
    });
    if let Some(abandon) = refusal {
        return abandon;
    }
    let all_answered = asked_of
        .iter()
        .all(|p| record.answers.iter().any(|a| &a.system == p));
    if all_answered || deadline_passed {
        Verdict::Make
    } else {
        Verdict::Waiting
    }
}

/// The stable code and kind of error an abandoned regroup is reported with.
pub(super) fn abandoned_error(cause: &RegroupCause) -> (ErrorKind, &'static str) {
    match cause {
        RegroupCause::PartnerUnreachable => (ErrorKind::Unavailable, codes::PARTNER_UNREACHABLE),
        RegroupCause::UnknownGroup => (ErrorKind::NotFound, codes::UNKNOWN_GROUP),
        RegroupCause::AlreadyRegrouped => (ErrorKind::Conflict, codes::ALREADY_REGROUPED),
        _ => (ErrorKind::Conflict, codes::PARTNER_REFUSED),
    }
}

#[cfg(test)]
mod tests {
    use mcx_model::api::RegroupState;
    use mcx_model::flows::FailureCause;
    use mcx_model::flows::regroup::SystemRegroupResult;
    use mcx_model::{McService, McServiceGroupId, McServiceId};

    use super::*;

    fn domain(text: &str) -> SystemDomain {
        SystemDomain::parse(text).expect("a valid domain")
    }

    fn gid(text: &str) -> McServiceGroupId {
        McServiceGroupId::parse(text).expect("a valid group ID")
    }

    fn forming(groups: &[&str]) -> RegroupRecord {
        RegroupRecord {
            regroup_group_id: gid("sip:regroup-1@police.example"),
            primary_system: domain("police.example"),
            initiator: McServiceId::parse("sip:chief@police.example").expect("a valid user"),
            preconfigured_group_id: gid("sip:pre@police.example"),
            mc_service_group_id_list: groups.iter().map(|g| gid(g)).collect(),
            mc_service: McService::Mcptt,
            state: RegroupState::Forming,
            members: Vec::new(),
            request_return: None,
            response: None,
            answers: Vec::new(),
            answers_due: None,
        }
    }

    fn answer(system: &str, result: FlowResult) -> SystemRegroupResult {
        SystemRegroupResult {
            system: domain(system),
            result,
            affiliated_member_count: 0,
        }
    }

    #[test]
    fn a_serving_partner_may_fail_a_homing_partner_may_not() {
        let police = domain("police.example");
        let asked = [domain("fire.example"), domain("ambulance.example")];
        let mut record = forming(&["sip:ops@police.example", "sip:harbour@fire.example"]);
        assert_eq!(
            regroup_verdict(&police, &record, &asked, false),
            Verdict::Waiting
        );
        // Ambulance homes no regrouped group: its failure does not stop the regroup.
        let unreachable =
            FlowResult::failure(FailureCause::Other("partner-unreachable".into()), "down");
        record
            .answers
            .push(answer("ambulance.example", unreachable.clone()));
        assert_eq!(
            regroup_verdict(&police, &record, &asked, false),
            Verdict::Waiting
        );
        // Given up on fire at the deadline: it homes harbour, so everything is undone.
        record.answers.push(answer("fire.example", unreachable));
        let Verdict::Abandon { cause, why } = regroup_verdict(&police, &record, &asked, true)
        else {
            panic!("a regroup without the host of one of its groups is abandoned");
        };
        assert_eq!(cause, RegroupCause::PartnerUnreachable);
        assert!(why.contains("fire.example"), "{why}");
        // Had fire taken part, the regroup is made.
        record.answers.pop();
        record
            .answers
            .push(answer("fire.example", FlowResult::Success));
        assert_eq!(
            regroup_verdict(&police, &record, &asked, false),
            Verdict::Make
        );
    }

    #[test]
    fn an_unknown_refusal_from_a_homing_partner_is_a_partner_refusal() {
        let police = domain("police.example");
        let asked = [domain("fire.example")];
        let mut record = forming(&["sip:harbour@fire.example"]);
        record.answers.push(answer(
            "fire.example",
            FlowResult::failure(FailureCause::Other("a-newer-cause".into()), "busy"),
        ));
        let verdict = regroup_verdict(&police, &record, &asked, false);
        assert!(matches!(
            verdict,
            Verdict::Abandon {
                cause: RegroupCause::PartnerRefused,
                ..
            }
        ));
    }
}
