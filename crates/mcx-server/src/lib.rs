//! mcx-server
