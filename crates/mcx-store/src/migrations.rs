//! Migrations embedded in the binary, one list per backend.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "interconnection",
        include_str!("../migrations/sqlite/0002_interconnection.sql"),
    ),
];

const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "interconnection",
        include_str!("../migrations/postgres/0002_interconnection.sql"),
    ),
];

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
