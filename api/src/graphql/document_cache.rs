//! Parsed and validated documents kept in process, by the SHA-256 of their
//! text, so that a persisted or repeated operation is neither parsed nor
//! validated again (SPEC §7).
//!
//! async-graphql has no prepared documents; its extension hooks do the work.
//! [`DocumentCacheExtension`] is the schema's innermost extension: its
//! `parse_query` answers a known text with the cached document without
//! parsing, so every check the outer extensions make on the parsed document
//! (variables, depth, the operation limits) still runs on each request, hit
//! or miss. A document enters the cache only once the library's own
//! parse-time checks (recursion, directives) passed on it.
//!
//! Validation is kept per operation name, and only where its answer cannot
//! change: a list's cost multiplies by its `first`/`last`, so an operation
//! that passes a variable to a field whose cost is computed from its
//! arguments is validated again on every request (a cached `$first: 1` must
//! not let `$first: 100` through). Variable values themselves are checked
//! by `request_errors` on every request. Errors are never cached.
//!
//! The cache holds no tenant data: a document is text every caller sends
//! in full at least once, and the schema is the same for every agency.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use async_graphql::{
    ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextValidation},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
    registry::{MetaType, Registry},
};
use lru::LruCache;
use sha2::{Digest as _, Sha256};

/// The SHA-256 of a document's text.
pub type DocumentKey = [u8; 32];

pub fn key_of(text: &str) -> DocumentKey {
    Sha256::digest(text.as_bytes()).into()
}

/// What validating one operation of a document found.
#[derive(Clone, Copy)]
enum Validated {
    /// The same for every request: kept.
    Fixed(ValidationResult),
    /// Its cost reads variables: validated on every request.
    PerRequest,
}

/// One parsed document and what validating its operations found.
pub struct CachedDocument {
    pub document: ExecutableDocument,
    weight: usize,
    validated: Mutex<Vec<(Option<String>, Validated)>>,
}

impl CachedDocument {
    fn validated(&self, operation: Option<&str>) -> Option<Validated> {
        let known = self.validated.lock().unwrap_or_else(PoisonError::into_inner);
        known.iter().find(|(name, _)| name.as_deref() == operation).map(|(_, v)| *v)
    }

    fn remember(&self, operation: Option<String>, validated: Validated) {
        let mut known = self.validated.lock().unwrap_or_else(PoisonError::into_inner);
        if !known.iter().any(|(name, _)| *name == operation) {
            known.push((operation, validated));
        }
    }
}

struct Entries {
    lru: LruCache<DocumentKey, Arc<CachedDocument>>,
    /// The text bytes of the entries, against `max_bytes`.
    bytes: usize,
}

/// The cache. `max_bytes` of document text at most (least recently used
/// first out), each document at most `max_document_bytes`; `max_bytes` 0
/// turns it off.
pub struct DocumentCache {
    entries: Option<Mutex<Entries>>,
    max_bytes: usize,
    max_document_bytes: usize,
    /// Fields whose cost is computed from their arguments (connections),
    /// by name, read from the schema on first use.
    costed_fields: OnceLock<HashSet<String>>,
    hits: AtomicU64,
    misses: AtomicU64,
    reused: AtomicU64,
}

/// What the cache has saved so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Documents answered without parsing.
    pub hits: u64,
    /// Documents parsed.
    pub misses: u64,
    /// Validations answered without validating.
    pub validations_reused: u64,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache").field("max_bytes", &self.max_bytes).finish_non_exhaustive()
    }
}

impl DocumentCache {
    pub fn new(max_bytes: usize, max_document_bytes: usize) -> Self {
        let entries = (max_bytes > 0).then(|| Mutex::new(Entries { lru: LruCache::unbounded(), bytes: 0 }));
        Self {
            entries,
            max_bytes,
            max_document_bytes,
            costed_fields: OnceLock::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.entries.is_some()
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            validations_reused: self.reused.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, Entries>> {
        self.entries.as_ref().map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn get(&self, key: &DocumentKey) -> Option<Arc<CachedDocument>> {
        self.lock()?.lru.get(key).cloned()
    }

    fn insert(&self, key: DocumentKey, text_len: usize, document: ExecutableDocument) -> Option<Arc<CachedDocument>> {
        if text_len > self.max_document_bytes {
            return None;
        }
        let mut entries = self.lock()?;
        let entry = Arc::new(CachedDocument { document, weight: text_len, validated: Mutex::default() });
        if let Some(old) = entries.lru.put(key, entry.clone()) {
            entries.bytes -= old.weight;
        }
        entries.bytes += text_len;
        while entries.bytes > self.max_bytes {
            let Some((_, gone)) = entries.lru.pop_lru() else { break };
            entries.bytes -= gone.weight;
        }
        Some(entry)
    }

    fn costed_fields(&self, registry: &Registry) -> &HashSet<String> {
        self.costed_fields.get_or_init(|| {
            registry
                .types
                .values()
                .filter_map(|ty| match ty {
                    MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => Some(fields),
                    _ => None,
                })
                .flat_map(|fields| fields.values().filter(|f| f.compute_complexity.is_some()).map(|f| f.name.clone()))
                .collect()
        })
    }
}

/// Whether some field whose cost is computed from its arguments is passed
/// a variable anywhere in `doc`. Read by name, whatever its parent type: it
/// may say yes where the answer is no, never the reverse.
fn cost_reads_variables(costed: &HashSet<String>, doc: &ExecutableDocument) -> bool {
    fn walk(costed: &HashSet<String>, set: &SelectionSet) -> bool {
        set.items.iter().any(|selection| match &selection.node {
            Selection::Field(field) => {
                let reads = costed.contains(field.node.name.node.as_str())
                    && field.node.arguments.iter().any(|(_, value)| value.node.clone().into_const_with(|_| Err(())).is_err());
                reads || walk(costed, &field.node.selection_set.node)
            }
            Selection::InlineFragment(inline) => walk(costed, &inline.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    doc.operations.iter().any(|(_, op)| walk(costed, &op.node.selection_set.node))
        || doc.fragments.values().any(|f| walk(costed, &f.node.selection_set.node))
}

/// The schema extension over a [`DocumentCache`]; register it last.
pub struct DocumentCacheExtension(pub Arc<DocumentCache>);

impl ExtensionFactory for DocumentCacheExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest { cache: self.0.clone(), operation_name: Mutex::default(), entry: Mutex::default() })
    }
}

/// One request's: the operation it names and its document's entry.
struct PerRequest {
    cache: Arc<DocumentCache>,
    operation_name: Mutex<Option<String>>,
    entry: Mutex<Option<Arc<CachedDocument>>>,
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        *self.operation_name.lock().unwrap_or_else(PoisonError::into_inner) = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if !self.cache.is_enabled() {
            return next.run(ctx, query, variables).await;
        }
        let key = key_of(query);
        if let Some(entry) = self.cache.get(&key) {
            self.cache.hits.fetch_add(1, Ordering::Relaxed);
            let document = entry.document.clone();
            *self.entry.lock().unwrap_or_else(PoisonError::into_inner) = Some(entry);
            return Ok(document);
        }
        self.cache.misses.fetch_add(1, Ordering::Relaxed);
        let document = next.run(ctx, query, variables).await?;
        let entry = self.cache.insert(key, query.len(), document.clone());
        *self.entry.lock().unwrap_or_else(PoisonError::into_inner) = entry;
        Ok(document)
    }

    async fn validation(&self, ctx: &ExtensionContext<'_>, next: NextValidation<'_>) -> Result<ValidationResult, Vec<ServerError>> {
        let Some(entry) = self.entry.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return next.run(ctx).await;
        };
        let operation = self.operation_name.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match entry.validated(operation.as_deref()) {
            Some(Validated::Fixed(result)) => {
                self.cache.reused.fetch_add(1, Ordering::Relaxed);
                return Ok(result);
            }
            Some(Validated::PerRequest) => return next.run(ctx).await,
            None => {}
        }
        let result = next.run(ctx).await?;
        let costed = self.cache.costed_fields(&ctx.schema_env.registry);
        let validated = if cost_reads_variables(costed, &entry.document) { Validated::PerRequest } else { Validated::Fixed(result) };
        entry.remember(operation, validated);
        Ok(result)
    }
}
