//! Params types with lifetimes that deserialize into owned data are fine, and
//! an undocumented method compiles without `missing_docs` (its client method
//! gets a doc line of its own): the server mounts and answers.
use std::borrow::Cow;

use steadfast::dispatch::IntoFunctions;
use tonic::Status;

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Named<'a> {
    pub name: Cow<'a, str>,
}

#[steadfast::service]
pub trait Greeter {
    async fn hello(&self, params: Named<'static>) -> Result<String, Status>;
    async fn shout(&self, params: Cow<'static, str>) -> Result<String, Status>;
    #[steadfast::func(name = "gruesse")]
    async fn grüße(&self, params: String) -> Result<String, Status>;
}

struct Impl;

impl Greeter for Impl {
    async fn hello(&self, params: Named<'static>) -> Result<String, Status> {
        Ok(format!("hello, {}", params.name))
    }

    async fn shout(&self, params: Cow<'static, str>) -> Result<String, Status> {
        Ok(params.to_uppercase())
    }

    async fn grüße(&self, params: String) -> Result<String, Status> {
        Ok(format!("grüße, {params}"))
    }
}

fn main() {
    let names: Vec<String> = GreeterServer::new(Impl)
        .into_functions()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    assert_eq!(names, ["hello", "shout", "gruesse"]);
}
