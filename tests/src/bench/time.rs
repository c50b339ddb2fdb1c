//! Time: the serialized time-stamp counter, a calibrated [`Clock`], the
//! thread's CPU time, pinning the measuring thread.

use std::time::{Duration, Instant};

use super::*;

/// A timestamp in ticks: the TSC read as `lfence; rdtsc; lfence` on x86-64
/// (the first fence keeps earlier work from finishing after the read, the
/// second keeps later work from starting before it), nanoseconds since an
/// arbitrary process-wide origin elsewhere. Convert differences with a
/// [`Clock`].
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let (lo, hi): (u32, u32);
        // SAFETY: lfence and rdtsc only read the time-stamp counter into
        // eax:edx; they touch no memory and no other register.
        unsafe {
            std::arch::asm!(
                "lfence",
                "rdtsc",
                "lfence",
                out("eax") lo,
                out("edx") hi,
                options(nomem, nostack, preserves_flags),
            );
        }
        (u64::from(hi) << 32) | u64::from(lo)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// The counter's step: the smallest nonzero difference of two readings
/// taken as close together as the counter can be read (on x86-64 `rdtsc`
/// without the fences of [`ticks`], whose ~20 ns would hide a 10 ns step).
/// AMD Zen's TSC advances by ~24 ticks every 10 ns, so single-call figures
/// come in multiples of ~10 ns there.
fn resolution_ticks() -> f64 {
    let read = || {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: rdtsc only reads the time-stamp counter.
            unsafe { core::arch::x86_64::_rdtsc() }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            ticks()
        }
    };
    (0..10_000)
        .map(|_| {
            let a = read();
            read().wrapping_sub(a)
        })
        .filter(|d| *d > 0 && *d < 1 << 32)
        .min()
        .map_or(1.0, |d| d as f64)
}

/// Converts [`ticks`] to nanoseconds, and knows the cost of reading them.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    ticks_per_ns: f64,
    overhead_ticks: f64,
    resolution_ticks: f64,
}

impl Clock {
    /// Calibrates ticks per nanosecond against [`Instant`] over ~100 ms of
    /// spinning, then measures the timer overhead: the median of many
    /// back-to-back `ticks() - ticks()` differences.
    pub fn calibrate() -> Clock {
        Self::calibrate_for(Duration::from_millis(100))
    }

    /// [`Clock::calibrate`] with an explicit calibration time.
    pub fn calibrate_for(span: Duration) -> Clock {
        let ticks_per_ns = if cfg!(target_arch = "x86_64") {
            // Warm both clocks up, then spin for `span`.
            let _ = (ticks(), Instant::now());
            let (t0, i0) = (ticks(), Instant::now());
            while i0.elapsed() < span {
                std::hint::spin_loop();
            }
            let (t1, i1) = (ticks(), Instant::now());
            (t1 - t0) as f64 / (i1 - i0).as_nanos() as f64
        } else {
            1.0
        };
        let mut deltas: Vec<f64> = (0..10_001)
            .map(|_| {
                let a = ticks();
                let b = ticks();
                (b - a) as f64
            })
            .collect();
        let resolution_ticks = resolution_ticks();
        Clock {
            ticks_per_ns,
            overhead_ticks: median(&mut deltas),
            resolution_ticks,
        }
    }

    /// The smallest step [`ticks`] was seen to take, in nanoseconds: the
    /// granularity of every single-call figure.
    pub fn resolution_ns(&self) -> f64 {
        self.resolution_ticks / self.ticks_per_ns
    }

    /// TSC ticks per nanosecond (1.0 where [`ticks`] are nanoseconds).
    pub fn ticks_per_ns(&self) -> f64 {
        self.ticks_per_ns
    }

    /// Nanoseconds in `ticks` (a difference of two [`ticks`] readings).
    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 / self.ticks_per_ns
    }

    /// What an empty `ticks() .. ticks()` interval measures, in ticks.
    pub fn overhead_ticks(&self) -> f64 {
        self.overhead_ticks
    }

    /// What an empty `ticks() .. ticks()` interval measures, in nanoseconds.
    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ticks / self.ticks_per_ns
    }
}

/// CPU time the calling thread has used so far, in nanoseconds
/// (`CLOCK_THREAD_CPUTIME_ID`; `None` where unavailable). Unlike [`ticks`]
/// it stands still while the thread is preempted, so over a long interval on
/// a loaded machine it tells what the work itself took (the kernel's
/// accounting has microsecond-ish granularity: not for single calls).
pub fn thread_cpu_ns() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a
        // constant every Unix we build for knows.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Minor page faults of this process so far (`getrusage`): first touches of
/// fresh memory, each a trap and a zeroed page. `None` where unavailable.
pub fn minor_page_faults() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: an all-zero rusage is a valid value of the plain-data struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        (rc == 0).then_some(usage.ru_minflt as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Bytes [`pretouch_heap`] writes: well above what 100,000 reexports
/// allocate on either side (12 MB here; ORC 19 touches about 150 MB).
pub const PRETOUCHED_HEAP_BYTES: usize = 256 << 20;

/// Makes the next `bytes` of glibc heap warm: raises the mmap threshold to
/// its 32 MiB maximum and the trim threshold out of reach (`mallopt`), then
/// writes and frees 16 MiB blocks, so later allocations (under 32 MiB) reuse
/// pages that already had their first touch. Used to measure the same work
/// with the first-touch cost of fresh pages taken out (3.3 us a page on a
/// VM whose host reclaims freed guest pages). Returns false where it cannot
/// (not glibc, `mallopt` refused).
pub fn pretouch_heap(bytes: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const BLOCK: usize = 16 << 20;
        // SAFETY: mallopt takes any parameter and value; it returns 0 when
        // it refuses one.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
        };
        if !set {
            return false;
        }
        let blocks: Vec<*mut u8> = (0..bytes.div_ceil(BLOCK))
            // SAFETY: malloc of a non-zero size; checked for null below.
            .map(|_| unsafe { libc::malloc(BLOCK) }.cast::<u8>())
            .collect();
        let ok = blocks.iter().all(|b| !b.is_null());
        for &b in blocks.iter().filter(|b| !b.is_null()) {
            // SAFETY: `b` is a live allocation of BLOCK bytes.
            unsafe { std::ptr::write_bytes(b, 1, BLOCK) };
        }
        for b in blocks {
            // SAFETY: `b` came from malloc above (free(NULL) is a no-op).
            unsafe { libc::free(b.cast()) };
        }
        ok
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = bytes;
        false
    }
}

/// Pins the calling thread to the CPU it is running on (Linux; elsewhere a
/// no-op), so migrations do not add noise. Returns the CPU, if pinned.
/// Threads it starts afterwards and processes it spawns (including
/// [`in_fresh_process`] children) inherit the pinning: a multi-threaded
/// measurement calls [`unpin_current_thread`] first.
pub fn pin_current_thread() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET writes inside `set` for any cpu < CPU_SETSIZE,
        // which sched_getcpu's result is.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is
        // the calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        (rc == 0).then_some(cpu)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Lets the calling thread run on every CPU again (Linux; elsewhere a no-op),
/// undoing a [`pin_current_thread`] it inherited. Returns whether it worked.
pub fn unpin_current_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for cpu in 0..libc::CPU_SETSIZE as usize {
            // SAFETY: CPU_SET writes inside `set` for any cpu < CPU_SETSIZE.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is
        // the calling thread. CPUs that do not exist are ignored.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}
