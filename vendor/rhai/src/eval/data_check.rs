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
    // (Patched) Iterative.
    let mut sizes = (0, 0, 0);
    for value in array {
        add_array_item_sizes(value, &mut sizes);
    }
    sizes
}

/// (Patched) Add the sizes of `value`, an item of an array, to `sizes`.
#[cfg(not(feature = "no_index"))]
#[inline]
fn add_array_item_sizes(value: &Dynamic, sizes: &mut (usize, usize, usize)) {
    sizes.0 += 1;
    match value.0 {
        Union::Array(..) => add_item_sizes(value, sizes),
        Union::Blob(ref a, ..) => sizes.0 += 1 + a.len(),
        #[cfg(not(feature = "no_object"))]
        Union::Map(..) => add_item_sizes(value, sizes),
        Union::Str(ref s, ..) => sizes.2 += s.len(),
        #[cfg(not(feature = "no_closure"))]
        Union::Shared(..) => {
            unreachable!("shared values discovered within data")
        }
        _ => (),
    }
}

// (Patched) The array measured by the last size check after a native call: its address,
// length and sizes, so that a `push` onto it right after measures only the pushed item
// (stock Rhai re-measured the whole array after every push: quadratic). Every other size
// check forgets it (`throw_on_size`), and so does freeing or unboxing an array at that
// address (`Drop` and `Dynamic::into_union`), so it always describes that array as the
// check left it: every change to an array's data is followed by a size check.
#[cfg(not(feature = "no_index"))]
#[cfg(not(feature = "no_std"))]
std::thread_local! {
    static MEASURED: std::cell::Cell<Option<(usize, usize, (usize, usize, usize))>> =
        const { std::cell::Cell::new(None) };
}

/// (Patched) Forget the measured array if it is the one at `addr` (any, for `None`).
#[cfg(not(feature = "no_index"))]
#[inline(always)]
pub(crate) fn forget_measured(_addr: Option<*const crate::Array>) {
    #[cfg(not(feature = "no_std"))]
    MEASURED.with(|m| match (m.get(), _addr) {
        (None, _) => (),
        (Some((a, ..)), Some(addr)) if a != addr as usize => (),
        _ => m.set(None),
    });
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
    pub(crate) fn throw_on_size(&self, sizes: (usize, usize, usize)) -> RhaiResultOf<()> {
        // (Patched) Any other check may follow a change the measured array did not see.
        #[cfg(not(feature = "no_index"))]
        forget_measured(None);
        self.throw_on_size_only(sizes)
    }

    /// (Patched) [`throw_on_size`][Self::throw_on_size] keeping the measured array: for
    /// checks that cannot follow a change to it.
    #[cfg(not(feature = "unchecked"))]
    fn throw_on_size_only(&self, (_arr, _map, s): (usize, usize, usize)) -> RhaiResultOf<()> {
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

    /// (Patched) [`check_data_size`][Self::check_data_size] of `value`, the first argument of
    /// the native function `fn_name` just called with `num_args` arguments: after `push` of
    /// one item onto the array measured by the previous such check, only that item is
    /// measured (see `MEASURED`). Same results as measuring the whole array.
    #[cfg(not(feature = "unchecked"))]
    #[inline]
    pub(crate) fn check_data_size_after_call(
        &self,
        fn_name: &str,
        num_args: usize,
        value: &Dynamic,
        pos: Position,
    ) -> RhaiResultOf<()> {
        if !self.has_data_size_limit() {
            return Ok(());
        }
        #[cfg(not(feature = "no_index"))]
        #[cfg(not(feature = "no_std"))]
        if let Union::Array(ref array, ..) = value.0 {
            let addr = &**array as *const crate::Array as usize;
            let sizes = match MEASURED.with(std::cell::Cell::take) {
                Some((a, len, mut sizes))
                    if a == addr && len + 1 == array.len() && fn_name == "push" && num_args == 2 =>
                {
                    add_array_item_sizes(array.last().unwrap(), &mut sizes);
                    sizes
                }
                _ => calc_array_sizes(array),
            };
            self.throw_on_size_only(sizes).map_err(|err| err.fill_position(pos))?;
            MEASURED.with(|m| m.set(Some((addr, array.len(), sizes))));
            return Ok(());
        }
        let _ = (fn_name, num_args);
        self.check_data_size(value, pos).map(|_| ())
    }

    /// (Patched) [`check_data_size`][Self::check_data_size] of the value a native function
    /// returned, keeping the measured array: a native function changes no array but its
    /// first argument, which `check_data_size_after_call` checks next.
    #[cfg(not(feature = "unchecked"))]
    #[inline]
    pub(crate) fn check_result_size(&self, value: Dynamic, pos: Position) -> RhaiResultOf<Dynamic> {
        if !self.has_data_size_limit() {
            return Ok(value);
        }
        self.throw_on_size_only(calc_data_sizes(&value, true)).map_err(|err| err.fill_position(pos))?;
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
