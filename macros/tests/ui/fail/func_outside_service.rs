// `#[steadfast::func]` outside a `#[steadfast::service]` trait.
#[steadfast::func(name = "hello")]
fn hello() {}

fn main() {}
