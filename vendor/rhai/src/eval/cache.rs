//! System caches.

use crate::func::{RhaiFunc, StraightHashMap};
use crate::types::BloomFilterU64;
use crate::{ImmutableString, StaticVec};
#[cfg(feature = "no_std")]
use std::prelude::v1::*;

/// _(internals)_ An entry in a function resolution cache.
/// Exported under the `internals` feature only.
#[derive(Debug, Clone)]
pub struct FnResolutionCacheEntry {
    /// Function.
    pub func: RhaiFunc,
    /// Optional source.
    pub source: Option<ImmutableString>,
}

/// _(internals)_ A function resolution cache with a bloom filter.
/// Exported under the `internals` feature only.
///
/// The [bloom filter][`BloomFilterU64`] is used to rapidly check whether a function hash has never been encountered.
/// It enables caching a hash only during the second encounter to avoid "one-hit wonders".
#[derive(Debug, Clone, Default)]
pub struct FnResolutionCache {
    /// Hash map containing cached functions.
    pub dict: StraightHashMap<Option<FnResolutionCacheEntry>>,
    /// Bloom filter to avoid caching "one-hit wonders".
    ///
    /// Default to 64 bytes (512 bits) which hopefully is enough for different function calls in a script.
    pub bloom_filter: BloomFilterU64<64>,
    /// (Patched) Calls known to resolve to a native function that no script function
    /// overrides, keyed by `native_call_key`: such a call skips the script-function and
    /// keyword checks of `Engine::exec_fn_call`. Cleared and scoped with the rest of the cache.
    pub native_calls: StraightHashMap<FnResolutionCacheEntry>,
    /// (Patched) Namespace-qualified calls made while no module is imported (so each
    /// namespace is one of the engine's static modules) that found a native function, keyed
    /// by the qualified hash, the root module's name and the argument types; the entry's
    /// source is the module's id.
    pub qualified_calls: StraightHashMap<FnResolutionCacheEntry>,
}

impl FnResolutionCache {
    /// Clear the [`FnResolutionCache`].
    #[inline(always)]
    #[allow(dead_code)]
    pub fn clear(&mut self) {
        self.dict.clear();
        self.bloom_filter.clear();
        self.native_calls.clear();
        self.qualified_calls.clear();
    }
}

/// _(internals)_ A type containing system-wide caches.
/// Exported under the `internals` feature only.
///
/// The following caches are contained inside this type:
/// * A stack of [function resolution caches][FnResolutionCache]
#[derive(Debug, Clone, Default)]
pub struct Caches {
    fn_resolution: StaticVec<FnResolutionCache>,
    /// (Patched) Typed-method hash seeds of receiver types seen by method calls, keyed by the
    /// `&'static str` that [`Dynamic::type_name`][crate::Dynamic::type_name] returns (compared by
    /// address; equal addresses mean equal names, so a stale key is impossible, and two addresses
    /// for one name only cost a second entry).
    ///
    /// The seed depends on the engine's display name of the type, which only changes when the
    /// [`Engine`][crate::Engine] is mutated; that cannot happen while an evaluation holds these
    /// caches (the same assumption as the function resolution caches above).
    #[cfg(not(feature = "no_object"))]
    #[cfg(not(feature = "no_function"))]
    typed_method_seeds: StaticVec<(&'static str, u64)>,
}

impl Caches {
    /// Create an empty [`Caches`].
    #[inline(always)]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fn_resolution: StaticVec::new_const(),
            #[cfg(not(feature = "no_object"))]
            #[cfg(not(feature = "no_function"))]
            typed_method_seeds: StaticVec::new_const(),
        }
    }
    /// (Patched) The typed-method hash seed
    /// ([`calc_typed_method_seed`][crate::func::calc_typed_method_seed]) of the display name of
    /// the Rust type `type_name`, computing it with `compute` the first time a type is seen.
    ///
    /// Saves [`Engine::map_type_name`][crate::Engine::map_type_name] (a search of every
    /// registered module's custom types) on every method call.
    #[cfg(not(feature = "no_object"))]
    #[cfg(not(feature = "no_function"))]
    #[inline]
    #[must_use]
    pub fn typed_method_seed(
        &mut self,
        type_name: &'static str,
        compute: impl FnOnce(&'static str) -> u64,
    ) -> u64 {
        /// Receiver types remembered; a script uses few, and the search is linear.
        const MAX_TYPES: usize = 16;

        if let Some(&(_, seed)) = self
            .typed_method_seeds
            .iter()
            .find(|(name, _)| core::ptr::eq(*name, type_name))
        {
            return seed;
        }
        let seed = compute(type_name);
        if self.typed_method_seeds.len() < MAX_TYPES {
            self.typed_method_seeds.push((type_name, seed));
        }
        seed
    }
    /// Get the number of function resolution cache(s) in the stack.
    #[inline(always)]
    #[must_use]
    pub fn fn_resolution_caches_len(&self) -> usize {
        self.fn_resolution.len()
    }
    /// Get a mutable reference to the current function resolution cache.
    ///
    /// A new function resolution cache is pushed onto the stack if the stack is empty.
    #[inline]
    #[must_use]
    pub fn fn_resolution_cache_mut(&mut self) -> &mut FnResolutionCache {
        // Push a new function resolution cache if the stack is empty
        if self.fn_resolution.is_empty() {
            self.push_fn_resolution_cache();
        }
        self.fn_resolution.last_mut().unwrap()
    }
    /// Push an empty function resolution cache onto the stack and make it current.
    #[inline(always)]
    pub fn push_fn_resolution_cache(&mut self) {
        self.fn_resolution.push(<_>::default());
    }
    /// Rewind the function resolution caches stack to a particular size.
    #[inline(always)]
    pub fn rewind_fn_resolution_caches(&mut self, len: usize) {
        self.fn_resolution.truncate(len);
    }
}
