//! mcx-store
