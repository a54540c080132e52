//! The web console in a real browser (headless Chromium through chromedriver) against two
//! real interconnected systems: log on, a partner going down and coming back, a live
//! affiliation, a remote change, a regroup made and cancelled, an ACM request answered,
//! and refusals shown with the problem's own sentence. Each page is photographed
//! (`MCX_UPDATE_SCREENSHOTS=1` writes the pictures to `docs/console/`).

mod browser;

use mcx_model::McService;
use mcx_model::NonEmpty;
use mcx_model::group::GroupConfiguration;
use mcx_model::profile::Permission;

use crate::federation::*;
use crate::support::{gid, id};
use browser::Browser;

const CHIEF: &str = "sip:chief@police.example";
const OFFICER: &str = "sip:officer@police.example";
const OPS: &str = "sip:ops@police.example";
const PRE: &str = "sip:pre@police.example";
const MCPTT: McService = McService::Mcptt;

/// What the API answers `request` with: the problem's sentence the console must show.
async fn problem_detail(request: reqwest::RequestBuilder) -> String {
    let answer = request.send().await.expect("the API answers");
    assert!(answer.status().is_client_error(), "the API refuses");
    let problem: serde_json::Value = answer.json().await.expect("a problem document");
    problem["detail"]
        .as_str()
        .expect("the problem has a detail")
        .to_string()
}

#[tokio::test]
async fn the_console_shows_and_does_what_an_operator_needs_in_a_real_browser() {
    let (mut federation, _) = police_and_fire_with_harbour(
        vec![
            profiled_user(CHIEF, &[(MCPTT, &[OPS, PRE], 4)], &Permission::ALL),
            profiled_user(
                OFFICER,
                &[(MCPTT, &[OPS, HARBOUR_GROUP], 4)],
                &[Permission::AffiliationChangeNegotiated],
            ),
        ],
        &[OFFICER],
    )
    .await;
    let chief = federation.log_on(CHIEF, "desk").await;
    let officer = federation.log_on(OFFICER, "handset").await;
    let ops = GroupConfiguration::new("Operations", [id(CHIEF), id(OFFICER)], NonEmpty::one(MCPTT));
    chief.create_group(&gid(OPS), &ops).await.unwrap();
    let mut pre = GroupConfiguration::new("Regroup template", [id(CHIEF)], NonEmpty::one(MCPTT));
    pre.preconfigured_group_use_only = true;
    chief.create_group(&gid(PRE), &pre).await.unwrap();
    officer
        .affiliate(MCPTT, &[gid(HARBOUR_GROUP)])
        .await
        .unwrap();
    let police = federation.node(POLICE).base_url();
    let http = reqwest::Client::new();

    let browser = Browser::start().await;
    browser.goto(&format!("{police}/console")).await;

    // Log on: a wrong password shows the API's sentence; the right one opens the overview.
    browser
        .wait_for("the log-on page", "#logon-title", |t| t == "Log on")
        .await;
    browser.assert_accessible("log-on").await;
    // The check sees what it checks: an unnamed control is a fault.
    browser
        .run("document.querySelector('main').append(document.createElement('input'))")
        .await;
    assert_eq!(browser.accessibility_faults().await.len(), 1);
    browser
        .run("document.querySelector('main > input').remove()")
        .await;
    browser.screenshot("logon").await;
    let wrong = problem_detail(http.post(format!("{police}/v1/session")).json(
        &serde_json::json!({
            "mc-service-id": CHIEF, "password": "not-the-password", "client-id": "console",
        }),
    ))
    .await;
    browser.type_into("#logon-user", CHIEF).await;
    browser
        .type_into("#logon-password", "not-the-password")
        .await;
    browser.click("#logon-submit").await;
    browser
        .wait_for("a refused log-on", "#message", |t| t.contains(&wrong))
        .await;
    // Without a mouse: the form is sent with Enter.
    browser.type_into("#logon-password", "chief").await;
    browser.press_enter("#logon-password").await;
    browser
        .wait_for("the partner link", r#"[data-link="fire.example"]"#, |t| {
            t == "up"
        })
        .await;
    browser.assert_accessible("overview").await;
    browser.mark_document().await;
    browser.resize(820, 1180).await;
    browser.screenshot("overview-tablet").await;
    browser.resize(1280, 960).await;

    // Fire goes down: what police owes it waits, and the overview says so by itself.
    federation.stop(FIRE).await;
    officer
        .deaffiliate(MCPTT, &[gid(HARBOUR_GROUP)])
        .await
        .unwrap();
    browser
        .wait_for(
            "the link shown down",
            r#"[data-link="fire.example"]"#,
            |t| t == "down",
        )
        .await;
    let waiting = browser.text(r#"[data-depth="fire.example"]"#).await;
    assert!(
        waiting.parse::<u64>().unwrap_or(0) >= 1,
        "flows wait: '{waiting}'"
    );
    browser.screenshot("overview-partner-down").await;
    federation.start(FIRE).await;
    browser
        .wait_for("the link back up", r#"[data-link="fire.example"]"#, |t| {
            t == "up"
        })
        .await;
    browser
        .wait_for(
            "the outbox drained",
            r#"[data-depth="fire.example"]"#,
            |t| t == "0",
        )
        .await;
    browser.screenshot("overview").await;

    // An affiliation made elsewhere appears on the open page without a reload.
    browser
        .open(&format!("#/affiliations/group/{}", enc(OPS)))
        .await;
    browser
        .wait_for("the group's members", "#affiliation-result", |t| {
            t.contains("No member is affiliated")
        })
        .await;
    officer.affiliate(MCPTT, &[gid(OPS)]).await.unwrap();
    let member = format!(r#"[data-member="{OFFICER}"]"#);
    browser
        .wait_for("the new member", &member, |t| t == OFFICER)
        .await;
    let row = browser.text("#affiliation-result tbody tr").await;
    assert!(
        row.contains("handset") && row.contains("affiliated"),
        "client and state: {row}"
    );
    assert!(
        browser.document_marked().await,
        "the page updated without a reload"
    );
    browser.screenshot("affiliations").await;

    // A mandatory remote change from the page: the officer is de-affiliated.
    browser.type_into("#change-targets", OFFICER).await;
    browser.type_into("#change-group", OPS).await;
    browser.select("#change-action", "deaffiliate").await;
    browser.click("#change-submit").await;
    browser
        .wait_for("the change done", "#message", |t| {
            t.contains("Remote change: done")
        })
        .await;
    browser.wait_gone("the member leaving", &member).await;
    browser
        .wait_for("the change listed", "#changes tbody", |t| {
            t.contains(OFFICER)
        })
        .await;
    let held = officer.affiliations().await.unwrap();
    assert!(
        held.affiliations
            .iter()
            .all(|a| a.mc_service_group_id != gid(OPS)),
        "the API shows the change: {held:?}"
    );

    // A negotiated change: pending until the officer accepts.
    browser.select("#change-action", "affiliate").await;
    browser.select("#change-mode", "negotiated").await;
    browser.click("#change-submit").await;
    let pending = browser
        .wait_for(
            "the negotiated change",
            "#changes tbody tr:first-child [data-change]",
            |t| t == "pending",
        )
        .await;
    assert_eq!(pending, "pending");
    let change = browser
        .attribute("#changes tbody tr:first-child [data-change]", "data-change")
        .await;
    officer
        .answer_change(&change, mcx_model::api::ChangeDecision::Accept, None)
        .await
        .unwrap();
    browser
        .wait_for(
            "the accepted change",
            &format!(r#"[data-change="{change}"]"#),
            |t| t == "completed",
        )
        .await;
    browser
        .wait_for("the member back", &member, |t| t == OFFICER)
        .await;
    browser.assert_accessible("affiliations").await;
    browser.screenshot("affiliation-change").await;

    // A change asked of the console's own user, answered from the page.
    let asked = officer
        .request_change(
            &mcx_model::flows::affiliation::GroupAffiliationChangeRequest {
                mc_service_id: id(OFFICER),
                mc_service_id_list: NonEmpty::one(id(CHIEF)),
                mc_service_group_id_list: NonEmpty::one(
                    mcx_model::flows::affiliation::GroupAffiliationChange {
                        mc_service_group_id: gid(OPS),
                        action: mcx_model::flows::affiliation::AffiliationChangeAction::Affiliate,
                    },
                ),
                change_request_type: mcx_model::flows::affiliation::ChangeRequestType::Negotiated,
                mc_service: MCPTT,
                generation: None,
            },
        )
        .await
        .unwrap();
    let accept = format!(r#"[data-accept-change="{}"]"#, asked.change_id);
    browser
        .wait_for("the change asked of the chief", &accept, |t| t == "Accept")
        .await;
    browser.click(&accept).await;
    browser
        .wait_for(
            "the chief affiliated",
            &format!(r#"[data-member="{CHIEF}"]"#),
            |t| t == CHIEF,
        )
        .await;

    // A group, and a refused edit of a partner's group with the API's sentence.
    browser.open(&format!("#/groups/{}", enc(OPS))).await;
    browser
        .wait_for("the group", "#group-name", |t| t == "Operations")
        .await;
    browser
        .wait_for("the XCAP document", "#group-xcap", |t| {
            t.contains("Operations")
        })
        .await;
    browser.assert_accessible("group").await;
    browser.screenshot("group").await;
    browser
        .open(&format!("#/groups/{}", enc(HARBOUR_GROUP)))
        .await;
    browser
        .wait_for("police's copy", "#group-name", |t| t == "Harbour")
        .await;
    browser.screenshot("group-partner-copy").await;
    let harbour_copy = chief.group(&gid(HARBOUR_GROUP)).await.unwrap();
    let refused = problem_detail(
        http.put(format!("{police}/v1/groups/{}", enc(HARBOUR_GROUP)))
            .bearer_auth(chief.token().unwrap())
            .header("if-match", "*")
            .json(&harbour_copy.configuration),
    )
    .await;
    browser.click("#edit-group").await;
    browser.click("#edit-form button[type=submit]").await;
    browser
        .wait_for("the refused edit", "#message", |t| t.contains(&refused))
        .await;
    assert_eq!(
        chief.group(&gid(HARBOUR_GROUP)).await.unwrap(),
        harbour_copy,
        "the refused edit changed nothing"
    );
    browser.open("#/groups").await;
    browser
        .wait_for("the group list", "#group-list", |t| t.contains(OPS))
        .await;
    browser.screenshot("groups").await;

    // A regroup made and cancelled from the page.
    browser.open("#/regroups").await;
    browser
        .wait_for("no regroup", "#regroup-list", |t| t.contains("No regroup"))
        .await;
    browser.type_into("#regroup-preconfigured", PRE).await;
    browser.type_into("#regroup-groups", OPS).await;
    browser.click("#regroup-submit").await;
    browser
        .wait_for("the regroup in effect", "[data-regroup]", |t| !t.is_empty())
        .await;
    let regroups = chief.regroups().await.unwrap().regroups;
    assert_eq!(regroups.len(), 1, "the API shows the regroup");
    browser.assert_accessible("regroups").await;
    browser.screenshot("regroups").await;
    browser.click("[data-cancel]").await;
    browser
        .wait_gone("the cancelled regroup", "[data-regroup]")
        .await;
    assert!(chief.regroups().await.unwrap().regroups.is_empty());

    // An ACM request from fire's administrator, answered from the page (fire restarted
    // on another port: frank logs on again).
    let frank = federation.log_on(HARBOUR_ADMIN, "console").await;
    frank
        .acm_provide(&mcx_model::api::AcmProvisionOrder {
            target_mc_service_id: id(CHIEF),
            interconnection_group_id_list: NonEmpty::one(gid(HARBOUR_GROUP)),
        })
        .await
        .unwrap();
    browser.open("#/acm").await;
    browser
        .wait_for("the request", "[data-accept]", |t| t == "Accept")
        .await;
    browser.assert_accessible("acm").await;
    browser.screenshot("acm").await;
    browser.click("[data-accept]").await;
    browser
        .wait_for("the answer", "[data-acm-state]", |t| t == "answered")
        .await;
    eventually("fire hears the acceptance", || async {
        let sent = frank.acm_sent().await.unwrap();
        sent.exchanges
            .iter()
            .any(|x| x.response.is_some())
            .then_some(())
    })
    .await;
    // Applied to a local user's profile from the page.
    let profile = |user| {
        let federation = &federation;
        async move {
            federation
                .log_on(user, "profile-check")
                .await
                .session()
                .await
                .unwrap()
                .profile
        }
    };
    assert!(!profile(CHIEF).await.lists_group(MCPTT, &gid(HARBOUR_GROUP)));
    browser.type_into("[data-apply] input", CHIEF).await;
    browser.click("[data-apply] button").await;
    browser
        .wait_for("the application", "#acm-inbox tbody", |t| {
            t.contains(&format!("applied to {CHIEF}"))
        })
        .await;
    assert!(
        profile(CHIEF).await.lists_group(MCPTT, &gid(HARBOUR_GROUP)),
        "the chief's profile holds the group"
    );
    browser.screenshot("acm-answered").await;

    // The flows of all that, as a sequence chart.
    browser.open("#/flows").await;
    browser
        .wait_for("the chart", "#flow-chart", |t| {
            t.contains("MC service group affiliation request")
        })
        .await;
    browser.assert_accessible("flows").await;
    browser.screenshot("flows").await;
    assert!(
        browser.document_marked().await,
        "one page load from log-on to the end"
    );
    browser.close().await;
}

/// The console's own documents: served with a policy that runs only its own script.
#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let system = crate::support::TestSystem::example().await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/console", system.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self'") && policy.contains("default-src 'none'"));
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"content="/xcap-root""#),
        "the page knows the XCAP root"
    );
    for (asset, kind) in [
        ("console.js", "text/javascript"),
        ("console.css", "text/css"),
    ] {
        let answer = http
            .get(format!("{}/console/{asset}", system.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    let missing = http
        .get(format!("{}/console/nothing.js", system.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

fn enc(id: &str) -> String {
    id.replace(':', "%3A").replace('@', "%40")
}
