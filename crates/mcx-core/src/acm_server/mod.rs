//! The ACM (administrative configuration management) server: store-and-forward of
//! interconnection group IDs between authorised users of partner systems (TR 23.700-38,
//! flows in `mcx_model::flows::acm`). Built by the ACM issue; the flows exist already.
