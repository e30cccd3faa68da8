//! ListTransactions (key 66), v0-v1: the transactional ids of the coordinator, filtered by state
//! names and producer ids, and (v1, KIP-994) by how long their transaction has run. Unknown
//! state names are echoed back and match nothing.

use kafka_protocol::messages;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::broker::TxnState;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    version: i16,
    request: messages::ListTransactionsRequest,
) -> messages::ListTransactionsResponse {
    let states: Vec<String> = request
        .state_filters
        .iter()
        .map(|s| s.to_string())
        .collect();
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|name| TxnState::from_name(name).is_none())
        .cloned()
        .collect();
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let duration_filter_ms = if version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let response =
        messages::ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    match ctx
        .broker
        .list_transactions(&states, &producer_ids, duration_filter_ms)
    {
        Ok(listed) => response
            .with_error_code(error_code::NONE)
            .with_transaction_states(
                listed
                    .into_iter()
                    // ACLs: only the transactional ids the principal may Describe.
                    .filter(|txn| {
                        ctx.allowed_on_transactional_id(
                            Operation::Describe,
                            &txn.transactional_id,
                        )
                    })
                    .map(|txn| {
                        TransactionState::default()
                            .with_transactional_id(messages::TransactionalId(
                                StrBytes::from_string(txn.transactional_id),
                            ))
                            .with_producer_id(messages::ProducerId(txn.producer_id))
                            .with_transaction_state(StrBytes::from_static_str(txn.state.name()))
                    })
                    .collect(),
            ),
        Err(err) => response.with_error_code(error_code::code(&err)),
    }
}
