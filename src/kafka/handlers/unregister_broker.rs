//! UnregisterBroker (key 64), v0: removes a stopped broker's registration once it holds no
//! replica (the last step of draining it: its replicas are reassigned away first).

use kafka_protocol::ResponseError;
use kafka_protocol::messages;

use crate::auth::acl::Operation;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::UnregisterBrokerRequest,
) -> messages::UnregisterBrokerResponse {
    if !ctx.allowed_on_cluster(Operation::Alter) {
        return messages::UnregisterBrokerResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let response = messages::UnregisterBrokerResponse::default().with_throttle_time_ms(0);
    match ctx.broker.unregister_broker(request.broker_id.0).await {
        Ok(()) => response.with_error_code(error_code::NONE),
        Err(err) => response
            .with_error_code(error_code::code(&err))
            .with_error_message(error_code::message(&err)),
    }
}
