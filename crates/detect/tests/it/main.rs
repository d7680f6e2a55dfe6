//! kubetrail-detect integration tests: the default pack's own examples, and the upstream
//! rule tests of Falco and Panther replayed through it.

mod falco;
mod pack;
mod panther;
mod prefilter;
