//! DescribeUserScramCredentials (key 50, v0): users' SCRAM mechanisms and iterations, never a
//! secret; a requested user without credentials gets RESOURCE_NOT_FOUND, one asked twice
//! DUPLICATE_RESOURCE.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages;
use kafka_protocol::messages::describe_user_scram_credentials_response as describe;
use kafka_protocol::protocol::StrBytes;

use crate::auth::acl::Operation;
use crate::auth::sasl::ScramHash;
use crate::kafka::Context;
use crate::kafka::error_code;

pub(crate) async fn handle(
    ctx: &Context,
    _version: i16,
    request: messages::DescribeUserScramCredentialsRequest,
) -> messages::DescribeUserScramCredentialsResponse {
    if !ctx.allowed_on_cluster(Operation::Describe) {
        return messages::DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let response =
        messages::DescribeUserScramCredentialsResponse::default().with_error_code(error_code::NONE);
    let requested: Option<Vec<String>> = request
        .users
        .filter(|users| !users.is_empty())
        .map(|users| users.iter().map(|u| u.name.to_string()).collect());
    let Some(names) = requested else {
        let results = ctx
            .broker
            .describe_users(None)
            .into_iter()
            .map(|user| described(&user.name, &user.credentials))
            .collect();
        return response.with_results(results);
    };
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<&String> = names.iter().filter(|n| !seen.insert(*n)).collect();
    let found: BTreeMap<String, Vec<(ScramHash, u32)>> = ctx
        .broker
        .describe_users(Some(&names))
        .into_iter()
        .map(|user| (user.name, user.credentials))
        .collect();
    let mut listed = BTreeSet::new();
    let results = names
        .iter()
        .filter(|name| listed.insert(*name))
        .map(|name| {
            if duplicates.contains(name) {
                return failed(
                    name,
                    ResponseError::DuplicateResource,
                    "Cannot describe SCRAM credentials for the same user twice in a single request",
                );
            }
            match found.get(name) {
                Some(credentials) => described(name, credentials),
                None => failed(
                    name,
                    ResponseError::ResourceNotFound,
                    "Attempt to describe a user credential that does not exist",
                ),
            }
        })
        .collect();
    response.with_results(results)
}

fn described(
    name: &str,
    credentials: &[(ScramHash, u32)],
) -> describe::DescribeUserScramCredentialsResult {
    describe::DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(name.to_owned()))
        .with_error_code(error_code::NONE)
        .with_credential_infos(
            credentials
                .iter()
                .map(|(hash, iterations)| {
                    describe::CredentialInfo::default()
                        .with_mechanism(hash.code())
                        .with_iterations(i32::try_from(*iterations).unwrap_or(i32::MAX))
                })
                .collect(),
        )
}

fn failed(
    name: &str,
    error: ResponseError,
    message: &str,
) -> describe::DescribeUserScramCredentialsResult {
    describe::DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(name.to_owned()))
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.to_owned())))
}
