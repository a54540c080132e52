//! mcx-core
