//! What exactly a write changed.
//!
//! For each write to an object (create, update, patch, delete and their subresources) a
//! [`Trail`] gives a [`Step`]: the field-level [`Change`]s against the object's previous
//! known state, as JSON Pointer paths (RFC 6901) with old and new values; whether the write
//! was a no-op (an empty diff) or a dry run (`dryRun=All`); and how the changes are known
//! ([`Basis`]): the object after the write (the response object at RequestResponse level, the
//! request object of a create or update at Request level) compared with the state before, or
//! the patch body decoded ([`PatchKind`]) when only the patch is known.
//!
//! Noise is not a change ([`normalize`]): the server's metadata bookkeeping, the
//! last-applied annotation, and `status` unless the write is to the `status` subresource.
//!
//! Pure: no I/O, no store.

mod change;
mod noise;
mod patch;
mod trail;

pub use change::{ApplyError, Change, ChangeKind, apply, diff, get, push_token, set, tokens};
pub use noise::{LAST_APPLIED, SERVER_METADATA, normalize};
pub use patch::{PatchKind, apply_exact, listing};
pub use trail::{Basis, Step, Trail, is_dry_run};

#[cfg(test)]
mod tests;
