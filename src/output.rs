//! Human-readable and JSON output of the client commands.

use mcx_model::api::{InterconnectionStatus, SessionInfo};
use mcx_model::events::{ClientEvent, DeliveredEvent};
use mcx_model::group::{GroupOrigin, GroupRecord};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::sessions::StoredSession;

pub(crate) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A time as the CLI prints it: RFC 3339 in UTC to the second, and how far from now.
pub(crate) fn when(t: OffsetDateTime) -> String {
    when_from(t, OffsetDateTime::now_utc())
}

fn when_from(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let at = t
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string());
    let seconds = (t - now).whole_seconds();
    let span = seconds.unsigned_abs();
    // Rounded to the nearest unit: a fresh 24-hour session reads "in 24 h", not 23.
    let span = match span {
        0..=59 => format!("{span} s"),
        60..=3569 => format!("{} min", (span + 30) / 60),
        3570..=172_799 => format!("{} h", (span + 1800) / 3600),
        _ => format!("{} days", (span + 43_200) / 86_400),
    };
    if seconds >= 0 {
        format!("{at} (in {span})")
    } else {
        format!("{at} ({span} ago)")
    }
}

pub(crate) fn session(session: &SessionInfo, as_json: bool, verb: &str) -> anyhow::Result<()> {
    if as_json {
        return json(session);
    }
    println!(
        "{verb} as {} from client '{}' at {}; session ends {}",
        session.mc_service_id,
        session.client_id,
        session.system,
        when(session.expires_at)
    );
    let profile = &session.profile;
    if !profile.permissions.is_empty() {
        let names: Vec<&str> = profile.permissions.iter().map(|p| p.as_str()).collect();
        println!("  permissions: {}", names.join(", "));
    }
    for (service, p) in &profile.services {
        let groups: Vec<&str> = p.groups.iter().map(|g| g.as_str()).collect();
        println!(
            "  {service}: N2 {}, groups: {}",
            p.max_affiliations_n2,
            groups.join(", ")
        );
    }
    Ok(())
}

/// Every session kept for a server: as the server knows it, or ended there.
pub(crate) fn sessions(
    sessions: &[Result<SessionInfo, StoredSession>],
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        let list: Vec<serde_json::Value> = sessions
            .iter()
            .map(|s| match s {
                Ok(info) => serde_json::to_value(info),
                Err(ended) => Ok(serde_json::json!({
                    "mc-service-id": ended.mc_service_id,
                    "client-id": ended.client_id,
                    "ended": true,
                })),
            })
            .collect::<Result<_, _>>()?;
        return json(&list);
    }
    for s in sessions {
        match s {
            Ok(info) => println!(
                "{} from client '{}'; session ends {}",
                info.mc_service_id,
                info.client_id,
                when(info.expires_at)
            ),
            Err(ended) => println!(
                "{} from client '{}': the session has ended; log on again",
                ended.mc_service_id, ended.client_id
            ),
        }
    }
    println!("choose one with --user <MC service ID> or MCX_USER");
    Ok(())
}

pub(crate) fn groups(groups: &[GroupRecord], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(&groups);
    }
    if groups.is_empty() {
        println!("no groups");
    }
    for g in groups {
        println!(
            "{:<40} v{:<4} {:<20} {}",
            g.mc_service_group_id.as_str(),
            g.version,
            origin(g),
            g.configuration.display_name
        );
    }
    Ok(())
}

fn origin(group: &GroupRecord) -> String {
    match group.origin {
        GroupOrigin::Local => "local".into(),
        GroupOrigin::Partner { .. } => format!("from {}", group.mc_service_group_id.home_system()),
    }
}

pub(crate) fn group(g: &GroupRecord, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(g);
    }
    let c = &g.configuration;
    println!(
        "{}  \"{}\"  version {} ({})",
        g.mc_service_group_id,
        c.display_name,
        g.version,
        origin(g)
    );
    let services: Vec<&str> = c.supported_services.iter().map(|s| s.as_str()).collect();
    println!("  supported services: {}", services.join(", "));
    if let Some(p) = c.on_network_group_priority {
        println!("  group priority: {p}");
    }
    if c.on_network_disabled {
        println!("  disabled on network");
    }
    if c.preconfigured_group_use_only {
        println!("  preconfigured group (for regroup only)");
    }
    if !c.permitted_locations.is_empty() {
        println!(
            "  permitted locations: {}",
            c.permitted_locations.join(", ")
        );
    }
    println!("  members ({}):", c.list.len());
    for m in &c.list {
        let mut extra = Vec::new();
        if let Some(t) = &m.participant_type {
            extra.push(t.clone());
        }
        if let Some(p) = m.user_priority {
            extra.push(format!("priority {p}"));
        }
        if extra.is_empty() {
            println!("    {}", m.uri);
        } else {
            println!("    {} ({})", m.uri, extra.join(", "));
        }
    }
    if let Some(k) = &g.key_material {
        println!(
            "  key material: generation {}, GMK-ID {}",
            k.generation, k.gmk_id
        );
    }
    Ok(())
}

pub(crate) fn event(delivered: &DeliveredEvent, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string(delivered)?);
        return Ok(());
    }
    match &delivered.event {
        ClientEvent::GroupConfigurationChanged { group, .. } => println!(
            "[{}] group-configuration-changed {} now version {}",
            delivered.id, group.mc_service_group_id, group.version
        ),
        ClientEvent::AffiliationStatusChanged { mc_service, status } => println!(
            "[{}] affiliation-status-changed {} {mc_service}: {}",
            delivered.id,
            status.mc_service_group_id,
            status_text(status.status, status.cause.as_ref())
        ),
        ClientEvent::GroupDeleted {
            mc_service_group_id,
        } => {
            println!("[{}] group-deleted {mc_service_group_id}", delivered.id)
        }
        ClientEvent::GroupCopyBehind {
            mc_service_group_id,
            primary_version,
            reason,
        } => println!(
            "[{}] group-copy-behind {mc_service_group_id}: version {primary_version} of its primary was refused here ({reason})",
            delivered.id
        ),
        ClientEvent::AffiliationChangeRequested { change_id, request } => {
            let groups: Vec<String> = request
                .mc_service_group_id_list
                .iter()
                .map(|c| format!("{} {}", text(&c.action), c.mc_service_group_id))
                .collect();
            println!(
                "[{}] affiliation-change-requested {change_id} by {} ({}): {}",
                delivered.id,
                request.mc_service_id,
                text(&request.change_request_type),
                groups.join(", ")
            );
        }
        ClientEvent::AffiliationChangeCompleted {
            change_id,
            response,
        } => {
            println!(
                "[{}] affiliation-change-completed {change_id}",
                delivered.id
            );
            for s in &response.affiliation_status_per_mc_service_group_id {
                println!(
                    "    {} {} {}",
                    s.mc_service_id,
                    s.mc_service_group_id,
                    status_text(s.status, s.cause.as_ref())
                );
            }
        }
        ClientEvent::AcmPendingData(n) => {
            println!(
                "[{}] acm-pending-data: {} item(s) wait for {}; run 'mcx acm pending'",
                delivered.id, n.pending_count, n.mc_service_id
            )
        }
        ClientEvent::AcmProvisionStored(i) => {
            println!(
                "[{}] acm-provision-stored: request {} {}",
                delivered.id,
                i.request_id,
                if i.result.is_success() {
                    "stored by the partner"
                } else {
                    "refused by the partner"
                }
            )
        }
        ClientEvent::RegroupRequestReturn(r) => {
            println!(
                "[{}] regroup-request-return: {}",
                delivered.id,
                serde_json::to_string(&r.authorization)?
            )
        }
        ClientEvent::RegroupCompleted { response } => println!(
            "[{}] regroup-completed {}: {}",
            delivered.id,
            response.regroup_group_id,
            if response.result.is_success() {
                "in effect".to_string()
            } else {
                format!("abandoned ({})", serde_json::to_string(&response.result)?)
            }
        ),
        ClientEvent::RegroupRequested { request } => {
            let groups: Vec<&str> = request
                .mc_service_group_id_list
                .iter()
                .map(|g| g.as_str())
                .collect();
            println!(
                "[{}] regroup-requested: affiliated to {} (regrouping {})",
                delivered.id,
                request.regroup_group_id,
                groups.join(", ")
            );
        }
        ClientEvent::RegroupCancelled { request } => {
            println!(
                "[{}] regroup-cancelled: {} ended",
                delivered.id, request.regroup_group_id
            )
        }
        ClientEvent::AffiliationChangeAcknowledged {
            change_id,
            mc_service_id,
        } => {
            println!(
                "[{}] affiliation-change-acknowledged {change_id} by {mc_service_id}",
                delivered.id
            )
        }
    }
    Ok(())
}

/// The wire name of a kebab-case enum value.
fn text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn interconnection(status: &InterconnectionStatus, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(status);
    }
    println!(
        "{} (primary system {})",
        status.mc_service_group_id, status.home_system
    );
    if let Some(link) = &status.primary {
        let state = serde_json::to_value(link.state)?;
        match &link.detail {
            Some(detail) => println!(
                "  link to primary: {} ({detail})",
                state.as_str().unwrap_or("?")
            ),
            None => println!("  link to primary: {}", state.as_str().unwrap_or("?")),
        }
    }
    if status.partners.is_empty() && status.primary.is_none() {
        println!("  not shared with any partner system");
    }
    for p in &status.partners {
        let state = serde_json::to_value(p.state)?;
        let subscribed = if p.subscribed { ", subscribed" } else { "" };
        let detail = p
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        println!(
            "  {}: version {} {}{subscribed}{detail}",
            p.partner,
            p.version,
            state.as_str().unwrap_or("?")
        );
    }
    for r in &status.certificate_refusals {
        println!(
            "  refused a certificate from {} ({}): subject {}, issuer {}: {}; {}",
            r.peer_address,
            if r.names.is_empty() {
                "no DNS name".to_string()
            } else {
                r.names.join(", ")
            },
            r.subject,
            r.issuer,
            r.reason,
            when(r.at)
        );
    }
    Ok(())
}

fn status_text(
    status: mcx_model::flows::affiliation::AffiliationStatus,
    cause: Option<&mcx_model::flows::affiliation::AffiliationCause>,
) -> String {
    let status = match status {
        mcx_model::flows::affiliation::AffiliationStatus::Affiliated => "affiliated",
        mcx_model::flows::affiliation::AffiliationStatus::NotAffiliated => "not affiliated",
        mcx_model::flows::affiliation::AffiliationStatus::Affiliating => "affiliating",
    };
    match cause {
        Some(cause) => format!("{status} ({cause})"),
        None => status.to_string(),
    }
}

pub(crate) fn affiliation_statuses(
    statuses: &[mcx_model::flows::affiliation::GroupAffiliationStatus],
) -> anyhow::Result<()> {
    for s in statuses {
        println!(
            "{:<40} {}",
            s.mc_service_group_id.as_str(),
            status_text(s.status, s.cause.as_ref())
        );
    }
    Ok(())
}

pub(crate) fn user_affiliations(
    a: &mcx_model::api::UserAffiliations,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        return json(a);
    }
    if a.affiliations.is_empty() {
        println!("{} is not affiliated to any group", a.mc_service_id);
    }
    for g in &a.affiliations {
        let clients: Vec<&str> = g.clients.iter().map(|c| c.as_str()).collect();
        println!(
            "{:<8} {:<40} clients: {}",
            g.mc_service.as_str(),
            g.mc_service_group_id.as_str(),
            clients.join(", ")
        );
    }
    Ok(())
}

pub(crate) fn group_affiliations(
    a: &mcx_model::api::GroupAffiliations,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        return json(a);
    }
    if a.members.is_empty() {
        println!("no member of {} is affiliated", a.mc_service_group_id);
    }
    for m in &a.members {
        println!("{:<8} {}", m.mc_service.as_str(), m.mc_service_id);
    }
    Ok(())
}

pub(crate) fn change(
    record: &mcx_model::api::AffiliationChangeRecord,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        return json(record);
    }
    println!("change {} ({})", record.change_id, text(&record.state));
    for t in &record.targets {
        println!("  target {}: {}", t.mc_service_id, text(&t.state));
    }
    if let Some(response) = &record.response {
        for s in &response.affiliation_status_per_mc_service_group_id {
            println!(
                "    {} {} {}",
                s.mc_service_id,
                s.mc_service_group_id,
                status_text(s.status, s.cause.as_ref())
            );
        }
    }
    Ok(())
}

pub(crate) fn regroup(r: &mcx_model::api::RegroupRecord, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(r);
    }
    let groups: Vec<&str> = r
        .mc_service_group_id_list
        .iter()
        .map(|g| g.as_str())
        .collect();
    println!(
        "regroup {} ({}) by {} at {}: {}",
        r.regroup_group_id,
        text(&r.state),
        r.initiator,
        r.primary_system,
        groups.join(", ")
    );
    if let Some(response) = &r.response {
        for s in &response.systems {
            println!(
                "  {}: {} ({} members affiliated)",
                s.system,
                if s.result.is_success() {
                    "took part"
                } else {
                    "failed"
                },
                s.affiliated_member_count
            );
        }
    }
    for m in &r.members {
        println!(
            "  member {} client {}{}",
            m.mc_service_id,
            m.client_id,
            if m.acknowledged {
                " (acknowledged)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub(crate) fn acm_exchange(x: &mcx_model::api::AcmExchange, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(x);
    }
    let groups: Vec<&str> = x
        .request
        .interconnection_group_id_list
        .iter()
        .map(|g| g.as_str())
        .collect();
    println!(
        "{} {} -> {}: {} [{}]",
        x.request
            .request_id
            .map(|i| i.to_string())
            .unwrap_or_default(),
        x.request.mc_service_id,
        x.request.target_mc_service_id,
        groups.join(", "),
        text(&x.state)
    );
    if let Some(detail) = &x.detail {
        println!("  {detail}");
    }
    if let Some(r) = &x.response {
        println!(
            "  answered by {}: {}",
            r.mc_service_id,
            serde_json::to_value(&r.decision)?["decision"]
                .as_str()
                .unwrap_or("?")
        );
    }
    if !x.applied_to.is_empty() {
        let users: Vec<&str> = x.applied_to.iter().map(|u| u.as_str()).collect();
        println!("  applied to {}", users.join(", "));
    }
    Ok(())
}

pub(crate) fn acm_exchanges(
    list: &mcx_model::api::AcmExchangeList,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        return json(list);
    }
    if list.exchanges.is_empty() {
        println!("no ACM exchanges");
    }
    for x in &list.exchanges {
        acm_exchange(x, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_in_utc_to_the_second_with_how_far_from_now() {
        let now = time::macros::datetime!(2026-12-01 08:17:26.597776281 UTC);
        let later = time::macros::datetime!(2026-12-02 09:17:26.597776281 +01:00);
        assert_eq!(when_from(later, now), "2026-12-02T08:17:26Z (in 24 h)");
        let almost_a_day = now + time::Duration::seconds(86_399);
        assert_eq!(
            when_from(almost_a_day, now),
            "2026-12-02T08:17:25Z (in 24 h)"
        );
        let earlier = now - time::Duration::minutes(5);
        assert_eq!(when_from(earlier, now), "2026-12-01T08:12:26Z (5 min ago)");
        assert_eq!(
            when_from(now + time::Duration::days(30), now),
            "2026-12-31T08:17:26Z (in 30 days)"
        );
    }
}
