//! mcx-client
