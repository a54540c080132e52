//! Migrations embedded in the binary, one list per backend.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The migrations of one backend directory, in order. Each backend has its own SQL files
/// because auto-increment keys and a few types differ; the queries are shared.
macro_rules! migrations {
    ($backend:literal) => {
        &[
            (
                1,
                "foundation",
                include_str!(concat!("../migrations/", $backend, "/0001_foundation.sql")),
            ),
            (
                2,
                "interconnection",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0002_interconnection.sql"
                )),
            ),
            (
                3,
                "affiliation",
                include_str!(concat!("../migrations/", $backend, "/0003_affiliation.sql")),
            ),
            (
                4,
                "regroup",
                include_str!(concat!("../migrations/", $backend, "/0004_regroup.sql")),
            ),
            (
                5,
                "acm",
                include_str!(concat!("../migrations/", $backend, "/0005_acm.sql")),
            ),
            (
                6,
                "regroup claims",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0006_regroup_claims.sql"
                )),
            ),
            (
                7,
                "hosted generations",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0007_hosted_generations.sql"
                )),
            ),
            (
                8,
                "outbox lanes",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0008_outbox_lanes.sql"
                )),
            ),
            (
                9,
                "sip state",
                include_str!(concat!("../migrations/", $backend, "/0009_sip_state.sql")),
            ),
            (
                10,
                "ending clients",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0010_ending_clients.sql"
                )),
            ),
            (
                11,
                "outbox leases",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0011_outbox_leases.sql"
                )),
            ),
            (
                12,
                "duty leases",
                include_str!(concat!("../migrations/", $backend, "/0012_duty_leases.sql")),
            ),
            (
                13,
                "answer waits",
                include_str!(concat!(
                    "../migrations/",
                    $backend,
                    "/0013_answer_waits.sql"
                )),
            ),
        ]
    };
}

const SQLITE: &[(i64, &str, &str)] = migrations!("sqlite");
const POSTGRES: &[(i64, &str, &str)] = migrations!("postgres");

/// The migrator for a backend (`true` for PostgreSQL).
pub(crate) fn migrator(postgres: bool) -> Migrator {
    let list = if postgres { POSTGRES } else { SQLITE };
    Migrator::with_migrations(
        list.iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
