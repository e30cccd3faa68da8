//! Idempotent and transactional producers: InitProducerId (and, as they are served, the
//! transaction APIs) at every advertised version.

use kafka_protocol::messages::{self, ApiKey};

use super::{NONE, Sweep};

pub(super) async fn init_producer_id(sweep: &mut Sweep, version: i16) {
    let request = messages::InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let request = if version >= 3 {
        request
            .with_producer_id(messages::ProducerId(-1))
            .with_producer_epoch(-1)
    } else {
        request
    };
    let response: messages::InitProducerIdResponse =
        sweep.call(ApiKey::InitProducerId, version, &request).await;
    let at = format!("InitProducerId v{version}");
    assert_eq!(response.error_code, NONE, "{at}");
    assert!(response.producer_id.0 >= 0, "{at}: {response:?}");
    assert_eq!(response.producer_epoch, 0, "{at}");
    assert!(
        sweep.producer_ids.insert(response.producer_id.0),
        "{at}: producer id handed out twice"
    );
}
