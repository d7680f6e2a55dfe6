//! `kubetrail install`: turning auditing on in a cluster and deploying kubetrail.
//!
//! - [`apiserver`] edits a kube-apiserver static-pod manifest (flags, volumes, mounts) on its
//!   text, keeping everything else as it was;
//! - [`policy`] holds the recommended audit policy and writes a policy in the apiVersion the
//!   apiserver accepts, after checking that it loads there;
//! - [`kubeadm`] writes the same settings as kubeadm ClusterConfiguration, so upgrades keep them;
//! - [`backup`] keeps what an install replaced outside the manifests directory and restores it;
//! - [`manifests`] renders what runs kubetrail itself in a cluster, [`tls`] the certificate
//!   its agents check the server by;
//! - [`webhook`] writes the kubeconfig of the apiserver's webhook backend.

pub mod apiserver;
pub mod backup;
pub mod kubeadm;
pub mod manifests;
pub mod policy;
pub mod tls;
pub mod webhook;
