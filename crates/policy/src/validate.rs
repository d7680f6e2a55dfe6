//! `ValidatePolicy`: kube-apiserver's validation of a decoded policy, with its field paths,
//! error types and messages. Errors are aggregated over all rules.

use kubetrail_model::policy::{GroupResources, Policy, PolicyRule};
use kubetrail_model::{Level, Stage};

use crate::field::FieldError;
use crate::version::KubeVersion;

const VALID_LEVELS: [&str; 4] = ["None", "Metadata", "Request", "RequestResponse"];

/// What validation accepts beyond the oldest rules: the group `"*"` arrived in 1.36.
#[derive(Debug, Clone, Copy)]
pub struct ValidationOptions {
    /// Accept `group: "*"` (any group).
    pub allow_wildcard_group: bool,
}

impl ValidationOptions {
    /// The validation of a given kube-apiserver version, or the most permissive one.
    pub fn for_version(version: Option<KubeVersion>) -> Self {
        ValidationOptions {
            allow_wildcard_group: version.is_none_or(|v| v.minor >= 36),
        }
    }
}

/// Validates a policy; an empty list means it is valid. Policy-level `omitStages` are checked
/// first, then each rule in order.
pub fn validate(policy: &Policy, options: ValidationOptions) -> Vec<FieldError> {
    let mut errs = validate_omit_stages(&policy.omit_stages, "omitStages");
    for (i, rule) in policy.rules.iter().enumerate() {
        errs.extend(validate_rule(rule, &format!("rules[{i}]"), options));
    }
    errs
}

fn validate_rule(rule: &PolicyRule, path: &str, options: ValidationOptions) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(validate_level(&rule.level, &format!("{path}.level")));
    errs.extend(validate_non_resource_urls(
        &rule.non_resource_urls,
        &format!("{path}.nonResourceURLs"),
    ));
    errs.extend(validate_resources(
        &rule.resources,
        &format!("{path}.resources"),
        options,
    ));
    errs.extend(validate_omit_stages(
        &rule.omit_stages,
        &format!("{path}.omitStages"),
    ));
    if !rule.non_resource_urls.is_empty()
        && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
    {
        errs.push(FieldError::invalid(
            &format!("{path}.nonResourceURLs"),
            rule.non_resource_urls.clone(),
            "rules cannot apply to both regular resources and non-resource URLs",
        ));
    }
    errs
}

fn validate_level(level: &str, path: &str) -> Option<FieldError> {
    if level.is_empty() {
        return Some(FieldError::required(path, ""));
    }
    match level.parse::<Level>() {
        Ok(_) => None,
        Err(_) => Some(FieldError::not_supported(path, level, &VALID_LEVELS)),
    }
}

fn validate_non_resource_urls(urls: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        let at = format!("{path}[{i}]");
        if !url.starts_with('/') {
            errs.push(FieldError::invalid(
                &at,
                url.as_str(),
                "non-resource URL rules must begin with a '/' character",
            ));
        }
        if !url.is_empty() && url[..url.len() - 1].contains('*') {
            errs.push(FieldError::invalid(
                &at,
                url.as_str(),
                "non-resource URL wildcards '*' must be the final character of the rule",
            ));
        }
    }
    errs
}

fn validate_resources(
    groups: &[GroupResources],
    path: &str,
    options: ValidationOptions,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, gr) in groups.iter().enumerate() {
        // Upstream's path has no index here; the index only serves to find the line.
        let wildcard = options.allow_wildcard_group && gr.group == "*";
        if !gr.group.is_empty() && !wildcard {
            let msgs = dns1123_subdomain_errors(&gr.group);
            if !msgs.is_empty() {
                errs.push(
                    FieldError::invalid(
                        &format!("{path}.group"),
                        gr.group.as_str(),
                        msgs.join(","),
                    )
                    .located_at(format!("{path}[{i}].group")),
                );
            }
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errs.push(
                FieldError::invalid(
                    &format!("{path}.resourceNames"),
                    gr.resource_names.clone(),
                    "using resourceNames requires at least one resource",
                )
                .located_at(format!("{path}[{i}].resourceNames")),
            );
        }
    }
    errs
}

fn validate_omit_stages(stages: &[String], path: &str) -> Vec<FieldError> {
    let allowed: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    stages
        .iter()
        .enumerate()
        .filter(|(_, s)| s.parse::<Stage>().is_err())
        .map(|(i, s)| {
            FieldError::invalid(
                &format!("{path}[{i}]"),
                s.as_str(),
                format!("allowed stages are {}", allowed.join(",")),
            )
            .with_hint(crate::field::closest(s, &allowed))
        })
        .collect()
}

const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERROR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// `validation.IsDNS1123Subdomain`: the messages for a value that is not a lowercase RFC 1123
/// subdomain.
pub(crate) fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters"
        ));
    }
    if !is_dns1123_subdomain(value) {
        errs.push(format!(
            "{DNS1123_SUBDOMAIN_ERROR_MSG} (e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN_FMT}')"
        ));
    }
    errs
}

/// The regex `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`, by hand: every
/// dot-separated label is non-empty, made of `[-a-z0-9]`, and starts and ends alphanumeric.
fn is_dns1123_subdomain(value: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    value.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && alnum(b[0])
            && alnum(b[b.len() - 1])
            && b.iter().all(|&c| alnum(c) || c == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomain_matches_the_regex() {
        for ok in ["apps", "rbac.authorization.k8s.io", "a-b.c1", "0"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in [
            "Apps",
            "rbac.authorization.k8s.io/v1beta1",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "*",
            "a_b",
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }
}
