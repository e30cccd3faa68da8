//! Who a client is: the principal a connection authenticated as (from its TLS client certificate
//! with Kafka's `ssl.principal.mapping.rules`, or from SASL: PLAIN and SCRAM exchanges in `sasl`).
//! Pure logic; no sockets, no Kafka types.

pub(crate) mod acl;
#[cfg(fuzzing)]
pub(crate) mod fuzzing;
mod principal;
pub(crate) mod sasl;
mod x509_name;

pub(crate) use principal::{MappingRules, Principal};
pub(crate) use x509_name::{NameError, subject_dn};
