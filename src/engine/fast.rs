//! Compiling scalar helpers a second time for CPUs with AVX2, FMA and F16C, picked at run
//! time: `mul_add` becomes one FMA instruction instead of a call to `fmaf`, rounding one
//! `vround`, and loops may vectorise. The arithmetic is the same (Rust never reassociates
//! or fuses floats on its own), so both versions return the same bits.

/// Define `fn name(args) -> ret { body }` with an AVX2+FMA+F16C twin chosen at run time.
macro_rules! fast_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn inner($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma,f16c")]
                unsafe fn fast($($arg: $ty),*) $(-> $ret)? {
                    inner($($arg),*)
                }
                if $crate::engine::kernels::avx2::available() {
                    // SAFETY: the features were detected at run time.
                    return unsafe { fast($($arg),*) };
                }
            }
            inner($($arg),*)
        }
    };
}

pub(crate) use fast_fn;
