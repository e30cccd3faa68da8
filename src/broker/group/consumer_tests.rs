//! Unit tests of KIP-848 consumer groups: assignors, reconciliation (revoke before grant) and
//! epoch fencing.
