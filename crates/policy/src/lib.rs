//! Audit policies with kube-apiserver's exact semantics: loading (YAML or JSON, v1, v1beta1,
//! v1alpha1), validation with the apiserver's field paths and messages, evaluation (first match
//! wins), RequestInfo resolution of HTTP requests, and the tooling on top: lint, explain and
//! convert.
//!
//! This crate knows nothing of storage, HTTP servers or command lines.

mod checker;
pub mod convert;
pub mod explain;
mod field;
pub mod lint;
mod load;
mod matcher;
pub mod requestinfo;
mod rule;
pub mod selector;
pub mod simulate;
pub mod traffic;
mod validate;
mod version;
pub mod yaml;

pub use checker::{Decision, Policy, RequestAttributes, authenticated_groups};
pub use field::{ErrorType, FieldError};
pub use load::{LoadOptions, Loaded, Warning, load_str};
pub use rule::{Attributes, GroupResources, Mismatch, Rule, StageSet};
pub use validate::{ValidationOptions, validate};
pub use version::KubeVersion;
