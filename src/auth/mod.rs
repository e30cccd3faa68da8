//! Who a client is: the principal a connection authenticated as (today from its TLS client
//! certificate) and Kafka's `ssl.principal.mapping.rules`. Pure logic; no sockets, no Kafka types.

mod principal;
mod x509_name;

pub(crate) use principal::{MappingRules, Principal};
pub(crate) use x509_name::{NameError, subject_dn};
