//! The panic boundary and the checked conversions from C pointers.
//!
//! Every entry point is written as `guard(|| { ...checks...; compute; write outputs })`. The
//! checks turn C pointers into Rust references only after testing them for NULL and alignment;
//! outputs are wrapped in [`Out`] / [`OutBytes`], which are validated first and written last, so
//! that nothing is written unless the whole call succeeds.

use core::ptr::NonNull;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::tolldns_result;

/// What an entry point's body returns: `Ok(())` or the result code to hand back.
pub(crate) type FfiResult = Result<(), tolldns_result>;

/// Runs `body` and converts its outcome, or a panic inside it, into a result code.
///
/// `AssertUnwindSafe` is sound here in the sense that matters to C: after a panic the only
/// state that can be left half-updated is a handle passed to the call, and the documentation
/// tells callers that a handle that returned `TOLLDNS_RESULT_PANIC` may only be freed.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult) -> tolldns_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => tolldns_result::Ok,
        Ok(Err(code)) => code,
        Err(_) => tolldns_result::Panic,
    }
}

/// Runs `body` for a function without a result (`_free`), swallowing a panic so that it never
/// unwinds into C.
pub(crate) fn guard_void(body: impl FnOnce()) {
    // A panic here can only come from a destructor; there is nobody to report it to.
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// Borrows an input buffer. `(NULL, 0)` is the empty buffer; NULL with a non-zero length is
/// `NULL_PARAMETER`.
///
/// # Safety
///
/// If `ptr` is not NULL it must point to `len` initialized elements that stay valid and
/// unmodified for `'a`.
pub(crate) unsafe fn input_slice<'a, T>(
    ptr: *const T,
    len: usize,
) -> Result<&'a [T], tolldns_result> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(tolldns_result::NullParameter)
        };
    }
    if !ptr.is_aligned()
        || len
            .checked_mul(size_of::<T>())
            .is_none_or(|n| n > isize::MAX as usize)
    {
        return Err(tolldns_result::InvalidParameter);
    }
    // SAFETY: non-NULL and aligned (checked above); the caller guarantees `len` valid elements
    // for `'a`; the total size fits `isize` (checked above).
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// Borrows an input buffer whose length must be exactly `N` and returns it as an array.
///
/// # Safety
///
/// As [`input_slice`].
pub(crate) unsafe fn input_array<const N: usize>(
    ptr: *const u8,
    len: usize,
) -> Result<[u8; N], tolldns_result> {
    if ptr.is_null() {
        return Err(tolldns_result::NullParameter);
    }
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { input_slice(ptr, len) }?;
    bytes
        .try_into()
        .map_err(|_| tolldns_result::InvalidParameter)
}

/// Borrows an input structure.
///
/// # Safety
///
/// If `ptr` is not NULL it must point to an initialized `T` that stays valid for `'a`.
pub(crate) unsafe fn input_ref<'a, T>(ptr: *const T) -> Result<&'a T, tolldns_result> {
    if ptr.is_null() {
        return Err(tolldns_result::NullParameter);
    }
    if !ptr.is_aligned() {
        return Err(tolldns_result::InvalidParameter);
    }
    // SAFETY: non-NULL and aligned (checked above); the caller guarantees an initialized `T`.
    Ok(unsafe { &*ptr })
}

/// Borrows a handle for exclusive use (a call that changes it).
///
/// # Safety
///
/// If `ptr` is not NULL it must point to an initialized `T` that stays valid for `'a` and that
/// nothing else accesses during `'a`.
pub(crate) unsafe fn input_mut<'a, T>(ptr: *mut T) -> Result<&'a mut T, tolldns_result> {
    if ptr.is_null() {
        return Err(tolldns_result::NullParameter);
    }
    if !ptr.is_aligned() {
        return Err(tolldns_result::InvalidParameter);
    }
    // SAFETY: non-NULL and aligned (checked above); the caller guarantees an initialized `T`
    // with no other access for `'a`.
    Ok(unsafe { &mut *ptr })
}

/// A checked out-parameter, written at most once, at the end of a successful call.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks an out-pointer for NULL and alignment without writing to it.
    pub(crate) fn new(ptr: *mut T) -> Result<Self, tolldns_result> {
        let ptr = NonNull::new(ptr).ok_or(tolldns_result::NullParameter)?;
        if !ptr.as_ptr().is_aligned() {
            return Err(tolldns_result::InvalidParameter);
        }
        Ok(Self(ptr))
    }

    /// Writes the value.
    ///
    /// # Safety
    ///
    /// The pointer given to [`Out::new`] must be valid for a write of `T`. The previous
    /// contents are overwritten without being dropped (out-types are plain C data).
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-NULL and aligned (checked in `new`); validity for writes is the caller's
        // contract.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// A checked output buffer `(uint8_t *out, size_t out_len)`.
pub(crate) struct OutBytes {
    ptr: *mut u8,
    len: usize,
}

impl OutBytes {
    /// Checks an output buffer for NULL (allowed only when `len` is 0).
    pub(crate) fn new(ptr: *mut u8, len: usize) -> Result<Self, tolldns_result> {
        if ptr.is_null() && len != 0 {
            return Err(tolldns_result::NullParameter);
        }
        if len > isize::MAX as usize {
            return Err(tolldns_result::InvalidParameter);
        }
        Ok(Self { ptr, len })
    }

    /// Checks that `n` bytes fit, before any output is written.
    pub(crate) fn check_fits(&self, n: usize) -> FfiResult {
        if n > self.len {
            Err(tolldns_result::InsufficientSize)
        } else {
            Ok(())
        }
    }

    /// Copies `data` to the start of the buffer.
    ///
    /// # Safety
    ///
    /// The pointer given to [`OutBytes::new`] must be valid for writes of its `len` bytes and
    /// must not overlap `data`.
    pub(crate) unsafe fn write(self, data: &[u8]) -> FfiResult {
        self.check_fits(data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        // SAFETY: `data.len() <= self.len` (checked above), the buffer is non-NULL because its
        // length is non-zero, and it is writable and disjoint from `data` by the caller's
        // contract.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr, data.len()) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_maps_outcomes() {
        assert_eq!(guard(|| Ok(())), tolldns_result::Ok);
        assert_eq!(
            guard(|| Err(tolldns_result::InsufficientSize)),
            tolldns_result::InsufficientSize
        );
        assert_eq!(guard(|| panic!("a bug")), tolldns_result::Panic);
        guard_void(|| panic!("a bug in a destructor"));
    }

    #[test]
    fn input_checks() {
        // SAFETY: NULL is allowed with length 0; the other calls pass a live local slice.
        unsafe {
            assert_eq!(input_slice::<u8>(core::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(
                input_slice::<u8>(core::ptr::null(), 1),
                Err(tolldns_result::NullParameter)
            );
            let data = [1u8, 2, 3];
            assert_eq!(input_slice(data.as_ptr(), 3), Ok(&data[..]));
            assert_eq!(input_array::<3>(data.as_ptr(), 3), Ok(data));
            assert_eq!(
                input_array::<2>(data.as_ptr(), 3),
                Err(tolldns_result::InvalidParameter)
            );
            assert_eq!(
                input_array::<0>(core::ptr::null(), 0),
                Err(tolldns_result::NullParameter)
            );
            let words = [0u64; 2];
            let misaligned = words.as_ptr().cast::<u8>().wrapping_add(1).cast::<u64>();
            assert_eq!(input_ref(misaligned), Err(tolldns_result::InvalidParameter));
            assert_eq!(
                input_ref::<u64>(core::ptr::null()),
                Err(tolldns_result::NullParameter)
            );
            assert_eq!(
                input_mut::<u64>(core::ptr::null_mut()),
                Err(tolldns_result::NullParameter)
            );
            let mut word = 7u64;
            *input_mut(&mut word).unwrap() += 1;
            assert_eq!(word, 8);
        }
    }

    #[test]
    fn outputs_are_checked_before_writing() {
        assert!(Out::<u64>::new(core::ptr::null_mut()).is_err());
        let mut buf = [0u8; 2];
        let out = OutBytes::new(buf.as_mut_ptr(), buf.len()).unwrap();
        assert_eq!(out.check_fits(3), Err(tolldns_result::InsufficientSize));
        // SAFETY: `buf` is a live local buffer of the length given.
        let r = unsafe { out.write(&[1, 2, 3]) };
        assert_eq!(r, Err(tolldns_result::InsufficientSize));
        assert_eq!(buf, [0, 0]);
        assert!(OutBytes::new(core::ptr::null_mut(), 0).is_ok());
        assert!(OutBytes::new(core::ptr::null_mut(), 1).is_err());
    }
}
