mod config;
mod driver;
mod net;
mod policy;
