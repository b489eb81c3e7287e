//! steadfast's `schema` feature is additive: it is on in this build (steadfast's
//! default, and steadfast-examples derives `JsonSchema` for its `Model`), yet a
//! service whose types derive only serde compiles and serves, and `Describe`
//! reports a schema exactly for the types that implement `JsonSchema`.

use std::time::Duration;

use steadfast::Context;
use steadfast::dispatch::{DispatchServer, FunctionInfo, IntoFunctions};
use steadfast_examples::model::{HelloParams, Prediction};
use tonic::Status;
use tonic::transport::Server;

/// Generous bound for anything a test waits for, so a hang fails instead of CI.
const PATIENCE: Duration = Duration::from_secs(20);

/// Params with no `JsonSchema`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Plain {
    /// Some text.
    pub text: String,
}

/// A service mixing types with and without `JsonSchema`.
#[steadfast::service]
pub trait Mixed {
    /// Neither type has a schema.
    async fn shout(&self, params: Plain) -> Result<Plain, Status>;

    /// Both types have one (steadfast-examples derives it).
    async fn hello(&self, params: HelloParams) -> Result<Prediction, Status>;

    /// Params with a schema, a result without.
    async fn wrap(&self, ctx: Context, params: HelloParams) -> Result<Plain, Status>;
}

struct Service;

impl Mixed for Service {
    async fn shout(&self, params: Plain) -> Result<Plain, Status> {
        Ok(Plain {
            text: params.text.to_uppercase(),
        })
    }

    async fn hello(&self, params: HelloParams) -> Result<Prediction, Status> {
        Ok(Prediction {
            size: 0,
            sha256_hex: String::new(),
            served_by: params.name,
        })
    }

    async fn wrap(&self, ctx: Context, params: HelloParams) -> Result<Plain, Status> {
        Ok(Plain {
            text: format!("{}: {}", ctx.function(), params.name),
        })
    }
}

fn described(name: &str) -> FunctionInfo {
    MixedServer::new(Service)
        .into_functions()
        .into_iter()
        .find(|function| function.name() == name)
        .expect("the function is listed")
        .info()
}

#[test]
fn types_without_json_schema_are_described_with_empty_schemas() {
    let shout = described("shout");
    assert_eq!(
        (shout.params_schema.as_str(), shout.result_schema.as_str()),
        ("", "")
    );
    let wrap = described("wrap");
    assert!(wrap.params_schema.contains("\"name\""), "{wrap:?}");
    assert_eq!(wrap.result_schema, "");
}

#[test]
fn types_with_json_schema_keep_their_schemas() {
    let hello = described("hello");
    let params: serde_json::Value =
        serde_json::from_str(&hello.params_schema).expect("params schema is JSON");
    assert_eq!(params["properties"]["name"]["type"], "string");
    assert!(hello.result_schema.contains("served_by"), "{hello:?}");
}

#[tokio::test]
async fn a_function_whose_types_lack_json_schema_serves() {
    let server = DispatchServer::new()
        .mount(MixedServer::new(Service))
        .expect("mounts");
    let addr = steadfast_tests::serve::spawn(Server::builder().add_service(server)).await;
    let mut client = tokio::time::timeout(PATIENCE, MixedClient::connect(format!("http://{addr}")))
        .await
        .expect("connect in time")
        .expect("connect");
    let plain = Plain {
        text: "quiet".to_owned(),
    };
    let reply = tokio::time::timeout(PATIENCE, client.shout(plain))
        .await
        .expect("answers in time")
        .expect("shouts");
    assert_eq!(reply.text, "QUIET");
}
