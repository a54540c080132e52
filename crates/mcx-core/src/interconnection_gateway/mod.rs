//! The interconnection gateway: the one endpoint partners know (the topology-hiding
//! address of TS 23.280 §10.2.7.1 NOTE 1), routing inbound flows to the right entity and
//! outbound flows to the right partner. Built by the interconnection issue.
