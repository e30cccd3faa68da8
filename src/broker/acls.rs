//! ACLs: created, listed and deleted by Create/Describe/DeleteAcls and read by every authorized
//! request. In cluster mode they are the controller's replicated state (a change is a proposed
//! command, answered once applied here); a standalone broker keeps them in its data dir
//! (`storage::save_acls`), replaced durably before a change is answered. Readers get a shared
//! snapshot rebuilt only when the ACLs changed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::Broker;
use super::error::{Error, Result, load_state_file};
use crate::auth::acl::{
    AclBinding, BindingFilter, Operation, PatternType, Permission, ResourceType,
};
use crate::metadata::{AclMeta, Command};
use crate::{limits, storage};

/// A standalone broker's ACLs, and the snapshot readers get (both modes).
#[derive(Debug)]
pub(super) struct Acls {
    /// Standalone: the data dir's ACLs.
    local: Mutex<BTreeSet<AclMeta>>,
    /// The bindings of the ACLs last read, with the state they came from (cluster: the
    /// applied index; standalone: a change counter).
    snapshot: Mutex<(u64, Arc<Vec<AclBinding>>)>,
}

impl Acls {
    pub(super) fn open(data_dir: &Path) -> Result<Acls> {
        let local: BTreeSet<AclMeta> =
            load_state_file(data_dir, storage::load_acls, "acls.json", |bytes| {
                serde_json::from_slice(bytes).map_err(|_| "the ACL file does not hold ACLs")
            })?
            .unwrap_or_default();
        let bindings = Arc::new(local.iter().filter_map(from_meta).collect());
        Ok(Acls {
            local: Mutex::new(local),
            snapshot: Mutex::new((0, bindings)),
        })
    }

    fn local(&self) -> std::sync::MutexGuard<'_, BTreeSet<AclMeta>> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> std::sync::MutexGuard<'_, (u64, Arc<Vec<AclBinding>>)> {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn to_meta(binding: &AclBinding) -> AclMeta {
    AclMeta {
        resource_type: binding.resource_type.code(),
        resource_name: binding.resource_name.clone(),
        pattern_type: binding.pattern_type.code(),
        principal: binding.principal.clone(),
        host: binding.host.clone(),
        operation: binding.operation.code(),
        permission: binding.permission.code(),
    }
}

/// The binding of a stored ACL; `None` for codes this version does not know (never written).
fn from_meta(meta: &AclMeta) -> Option<AclBinding> {
    Some(AclBinding {
        resource_type: ResourceType::from_code(meta.resource_type)?,
        resource_name: meta.resource_name.clone(),
        pattern_type: PatternType::from_code(meta.pattern_type)?,
        principal: meta.principal.clone(),
        host: meta.host.clone(),
        operation: Operation::from_code(meta.operation)?,
        permission: Permission::from_code(meta.permission)?,
    })
}

impl Broker {
    /// Every ACL, as one shared snapshot.
    pub(crate) fn acl_bindings(&self) -> Arc<Vec<AclBinding>> {
        let Some(link) = self.cluster.get() else {
            return Arc::clone(&self.acls.snapshot().1);
        };
        let published = link.node.published();
        let (index, state) = {
            let published = published.borrow();
            (published.applied_index, Arc::clone(&published.state))
        };
        let mut snapshot = self.acls.snapshot();
        if snapshot.0 != index {
            *snapshot = (
                index,
                Arc::new(state.acls.iter().filter_map(from_meta).collect()),
            );
        }
        Arc::clone(&snapshot.1)
    }

    /// The ACLs `filter` selects.
    pub(crate) fn describe_acls(&self, filter: &BindingFilter) -> Vec<AclBinding> {
        self.acl_bindings()
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Adds `bindings`, durably (cluster: committed and applied on this broker).
    pub(crate) async fn create_acls(&self, bindings: &[AclBinding]) -> Result<()> {
        let metas: Vec<AclMeta> = bindings.iter().map(to_meta).collect();
        if self.acl_bindings().len() + metas.len() > limits::ACLS_MAX {
            return Err(Error::InvalidRequest {
                reason: format!("no more than {} ACLs", limits::ACLS_MAX),
            });
        }
        self.change_acls(Command::CreateAcls { acls: metas }).await
    }

    /// Deletes the ACLs each filter selects; returns them per filter.
    pub(crate) async fn delete_acls(
        &self,
        filters: &[BindingFilter],
    ) -> Result<Vec<Vec<AclBinding>>> {
        let current = self.acl_bindings();
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| current.iter().filter(|b| f.matches(b)).cloned().collect())
            .collect();
        let metas: BTreeSet<AclMeta> = matched.iter().flatten().map(to_meta).collect();
        if !metas.is_empty() {
            self.change_acls(Command::DeleteAcls {
                acls: metas.into_iter().collect(),
            })
            .await?;
        }
        Ok(matched)
    }

    async fn change_acls(&self, command: Command) -> Result<()> {
        match self.cluster.get() {
            Some(link) => {
                let applied = command.clone();
                self.propose_and_await(link, &command, move |state| match &applied {
                    Command::CreateAcls { acls } => acls.iter().all(|a| state.acls.contains(a)),
                    Command::DeleteAcls { acls } => acls.iter().all(|a| !state.acls.contains(a)),
                    _ => true,
                })
                .await
            }
            None => {
                let mut local = self.acls.local();
                let mut next = local.clone();
                match &command {
                    Command::CreateAcls { acls } => next.extend(acls.iter().cloned()),
                    Command::DeleteAcls { acls } => {
                        for acl in acls {
                            next.remove(acl);
                        }
                    }
                    _ => {}
                }
                let bytes = serde_json::to_vec(&next).map_err(|error| Error::InvalidRequest {
                    reason: error.to_string(),
                })?;
                storage::save_acls(&self.settings.data_dir, &bytes)
                    .map_err(|source| Error::Catalog { source })?;
                let bindings = Arc::new(next.iter().filter_map(from_meta).collect());
                *local = next;
                let mut snapshot = self.acls.snapshot();
                *snapshot = (snapshot.0 + 1, bindings);
                Ok(())
            }
        }
    }
}
