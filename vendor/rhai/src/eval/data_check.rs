//! Data size checks during evaluation.
#![cfg(not(feature = "unchecked"))]

use super::GlobalRuntimeState;
use crate::types::dynamic::Union;
use crate::{Dynamic, Engine, Position, RhaiResultOf, ERR};
use std::borrow::Borrow;
#[cfg(feature = "no_std")]
use std::prelude::v1::*;

/// (Patched) Add the sizes of the items of `container` (an array or map) to `sizes`, and
/// of the items of every array and map inside it, with an explicit stack instead of
/// recursion (stock Rhai recursed once per level of nesting).
fn add_item_sizes(container: &Dynamic, sizes: &mut (usize, usize, usize)) {
    let mut stack = vec![container];
    while let Some(container) = stack.pop() {
        let (items, is_map): (Box<dyn Iterator<Item = &Dynamic>>, bool) = match container.0 {
            #[cfg(not(feature = "no_index"))]
            Union::Array(ref a, ..) => (Box::new(a.iter()), false),
            #[cfg(not(feature = "no_object"))]
            Union::Map(ref m, ..) => (Box::new(m.values()), true),
            _ => unreachable!("not an array or map"),
        };
        for value in items {
            if is_map {
                sizes.1 += 1;
            } else {
                sizes.0 += 1;
            }
            match value.0 {
                #[cfg(not(feature = "no_index"))]
                Union::Array(..) => stack.push(value),
                #[cfg(not(feature = "no_index"))]
                Union::Blob(ref a, ..) => sizes.0 += 1 + a.len(),
                #[cfg(not(feature = "no_object"))]
                Union::Map(..) => stack.push(value),
                Union::Str(ref s, ..) => sizes.2 += s.len(),
                #[cfg(not(feature = "no_closure"))]
                Union::Shared(..) => {
                    unreachable!("shared values discovered within data")
                }
                _ => (),
            }
        }
    }
}

/// Calculate the sizes of an array, including every array and map inside it.
///
/// Sizes returned are `(` [`Array`][crate::Array], [`Map`][crate::Map] and [`String`] `)`.
///
/// # Panics
///
/// Panics if any interior data is shared (should never happen).
#[cfg(not(feature = "no_index"))]
#[inline]
pub fn calc_array_sizes(array: &crate::Array) -> (usize, usize, usize) {
    // (Patched) Iterative; `add_item_sizes` walks a `Dynamic`, so borrow the array as one
    // only when it holds arrays or maps (a flat array is counted here).
    let mut sizes = (0, 0, 0);
    for value in array {
        sizes.0 += 1;
        match value.0 {
            Union::Array(..) => add_item_sizes(value, &mut sizes),
            Union::Blob(ref a, ..) => sizes.0 += 1 + a.len(),
            #[cfg(not(feature = "no_object"))]
            Union::Map(..) => add_item_sizes(value, &mut sizes),
            Union::Str(ref s, ..) => sizes.2 += s.len(),
            #[cfg(not(feature = "no_closure"))]
            Union::Shared(..) => {
                unreachable!("shared values discovered within data")
            }
            _ => (),
        }
    }
    sizes
}
/// Calculate the sizes of a map, including every array and map inside it.
///
/// Sizes returned are `(` [`Array`][crate::Array], [`Map`][crate::Map] and [`String`] `)`.
///
/// # Panics
///
/// Panics if any interior data is shared (should never happen).
#[cfg(not(feature = "no_object"))]
#[inline]
pub fn calc_map_sizes(map: &crate::Map) -> (usize, usize, usize) {
    // (Patched) Iterative, as `calc_array_sizes`.
    let mut sizes = (0, 0, 0);
    for value in map.values() {
        sizes.1 += 1;
        match value.0 {
            #[cfg(not(feature = "no_index"))]
            Union::Array(..) => add_item_sizes(value, &mut sizes),
            #[cfg(not(feature = "no_index"))]
            Union::Blob(ref a, ..) => sizes.0 += 1 + a.len(),
            Union::Map(..) => add_item_sizes(value, &mut sizes),
            Union::Str(ref s, ..) => sizes.2 += s.len(),
            #[cfg(not(feature = "no_closure"))]
            Union::Shared(..) => {
                unreachable!("shared values discovered within data")
            }
            _ => (),
        }
    }
    sizes
}

/// Recursively calculate the sizes of a value.
///
/// Sizes returned are `(` [`Array`][crate::Array], [`Map`][crate::Map] and [`String`] `)`.
///
/// # Panics
///
/// Panics if any interior data is shared (should never happen).
#[inline]
pub fn calc_data_sizes(value: &Dynamic, _top: bool) -> (usize, usize, usize) {
    match value.0 {
        #[cfg(not(feature = "no_index"))]
        Union::Array(ref arr, ..) => calc_array_sizes(arr),
        #[cfg(not(feature = "no_index"))]
        Union::Blob(ref blob, ..) => (blob.len(), 0, 0),
        #[cfg(not(feature = "no_object"))]
        Union::Map(ref map, ..) => calc_map_sizes(map),
        Union::Str(ref s, ..) => (0, 0, s.len()),
        #[cfg(not(feature = "no_closure"))]
        Union::Shared(..) if _top => calc_data_sizes(&value.read_lock::<Dynamic>().unwrap(), true),
        #[cfg(not(feature = "no_closure"))]
        Union::Shared(..) => {
            unreachable!("shared values discovered within data: {}", value)
        }
        _ => (0, 0, 0),
    }
}

impl Engine {
    /// (Patched) Add `value`, the next item of an array literal (at `pos()`), to `total` (the
    /// data sizes so far) and raise an error if they pass the limits. Shared by the
    /// evaluator and the pre-resolved loop bodies (`eval/fast.rs`).
    #[cfg(not(feature = "unchecked"))]
    #[inline]
    pub(crate) fn check_array_item_size(
        &self,
        total: &mut (usize, usize, usize),
        value: &Dynamic,
        pos: impl FnOnce() -> Position,
    ) -> RhaiResultOf<()> {
        if !self.has_data_size_limit() {
            return Ok(());
        }
        let sizes = calc_data_sizes(value, true);
        *total = (total.0 + sizes.0 + 1, total.1 + sizes.1, total.2 + sizes.2);
        self.throw_on_size(*total).map_err(|err| err.fill_position(pos()))
    }

    /// Raise an error if any data size exceeds limit.
    ///
    /// [`Position`] in [`EvalAltResult`][crate::EvalAltResult] is always [`NONE`][Position::NONE]
    /// and should be set afterwards.
    #[cfg(not(feature = "unchecked"))]
    pub(crate) fn throw_on_size(&self, (_arr, _map, s): (usize, usize, usize)) -> RhaiResultOf<()> {
        if self.limits.string_len.map_or(false, |max| s > max.get()) {
            return Err(
                ERR::ErrorDataTooLarge("Length of string".to_string(), Position::NONE).into(),
            );
        }

        #[cfg(not(feature = "no_index"))]
        if self.limits.array_size.map_or(false, |max| _arr > max.get()) {
            return Err(
                ERR::ErrorDataTooLarge("Size of array/BLOB".to_string(), Position::NONE).into(),
            );
        }

        #[cfg(not(feature = "no_object"))]
        if self.limits.map_size.map_or(false, |max| _map > max.get()) {
            return Err(
                ERR::ErrorDataTooLarge("Size of object map".to_string(), Position::NONE).into(),
            );
        }

        Ok(())
    }

    /// Check whether the size of a [`Dynamic`] is within limits.
    #[cfg(not(feature = "unchecked"))]
    #[inline]
    pub(crate) fn check_data_size<T: Borrow<Dynamic>>(
        &self,
        value: T,
        pos: Position,
    ) -> RhaiResultOf<T> {
        // If no data size limits, just return
        if !self.has_data_size_limit() {
            return Ok(value);
        }

        let sizes = calc_data_sizes(value.borrow(), true);

        self.throw_on_size(sizes)
            .map_err(|err| err.fill_position(pos))?;

        Ok(value)
    }

    /// Raise an error if the size of a [`Dynamic`] is out of limits (if any).
    ///
    /// Not available under `unchecked`.
    #[cfg(not(feature = "unchecked"))]
    #[inline(always)]
    pub fn ensure_data_size_within_limits(&self, value: &Dynamic) -> RhaiResultOf<()> {
        self.check_data_size(value, Position::NONE).map(|_| ())
    }

    /// Check if the number of operations stay within limit.
    #[inline(always)]
    pub(crate) fn track_operation(
        &self,
        global: &mut GlobalRuntimeState,
        pos: Position,
    ) -> RhaiResultOf<()> {
        let mut num_ops = None;

        let mut num_operations = || {
            *num_ops.get_or_insert_with(|| {
                // Increment operations count
                #[cfg(atomic_ops_count)]
                return global
                    .num_operations
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    + 1;

                #[cfg(not(atomic_ops_count))]
                {
                    global.num_operations += 1;
                    return global.num_operations;
                }
            })
        };

        // Guard against too many operations
        #[cfg(not(feature = "unchecked"))]
        if self.max_operations() > 0 && num_operations() > self.max_operations() {
            return Err(ERR::ErrorTooManyOperations(pos).into());
        }

        if let Some(progress) = self.progress.as_ref() {
            // (Patched) Only every `set_progress_interval` operations.
            let num = num_operations();
            if num & self.progress_mask != 0 {
                return Ok(());
            }
            return progress(num)
                .map(|token| Err(ERR::ErrorTerminated(token, pos).into()))
                .unwrap_or(Ok(()));
        }

        Ok(())
    }
}
